"""Runnable pipelines: read and write files, own MLflow runs, compose library steps."""
