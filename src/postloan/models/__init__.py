"""The models wing: what is learned from the book, and how it is kept and explained.

- :mod:`~postloan.models.training`: the three models (default risk, churn,
  satisfaction): config, fit, out-of-time evaluation;
- :mod:`~postloan.models.bundle`: a champion's self-contained bundle (booster,
  calibrator, feature spec, expectations); :mod:`~postloan.models.store` owns the bundle
  folder on disk and the champion pointer;
- :mod:`~postloan.models.registry`: MLflow runs, the registry, aliases and the
  promotion gates;
- :mod:`~postloan.models.calibration`, :mod:`~postloan.models.evaluation`,
  :mod:`~postloan.models.estimation` (performance without labels);
- :mod:`~postloan.models.treeshap`, :mod:`~postloan.models.explain`: SHAP values and
  reason codes; :mod:`~postloan.models.linear`, :mod:`~postloan.models.scorecard`;
- :mod:`~postloan.models.uplift`: what a contact does, learned from randomised contacts.

Imports: :mod:`postloan.data` and the shared modules; never decisions, operations,
simulation, reporting or scale.
"""
