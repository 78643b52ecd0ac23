"""postloan: post-loan management (贷后管理) models, early warning and prioritisation.

The library in wings, each importing only the ones below it (docs/architecture.md):

- :mod:`postloan.data`: the book, from a lender's source to point-in-time features;
- :mod:`postloan.models`: training, bundles, registry, explanations, uplift;
- :mod:`postloan.decisions`: the one scoring core and the one decision per customer;
- :mod:`postloan.scale`, :mod:`postloan.simulation`: partitions and engines; the
  simulator and the policy replay;
- :mod:`postloan.operations`: the monthly cycle, monitoring, stress;
- :mod:`postloan.reporting`: packs, pages and figures for reviewers.

Shared by all: :mod:`postloan.errors`, :mod:`postloan.settings`,
:mod:`postloan.config_files`, :mod:`postloan.glossary`.
"""

__version__ = "0.1.0"
