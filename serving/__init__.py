"""The BentoML service: request/response models and endpoints over the postloan library.

Start it with ``python -m serving`` (pre-flight checks, then ``bentoml serve``) or
``bentoml serve serving.service:PostloanService``; see ``serving/README.md``.
"""
