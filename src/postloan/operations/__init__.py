"""The operations wing: running postloan month after month and watching it.

- :mod:`~postloan.operations.cycle`: the monthly cycle (gate, score, decide, write,
  materialise, monitor, retrain, report) and its ledger ``postloan_runs``;
- :mod:`~postloan.operations.monitoring`: PSI/CSI, score drift, estimated and realised
  performance, the monitor's verdict;
- :mod:`~postloan.operations.stress`: macro stress scenarios through the decisions.

Imports: :mod:`postloan.data`, :mod:`postloan.models`, :mod:`postloan.decisions`,
:mod:`postloan.scale` and the shared modules.
"""
