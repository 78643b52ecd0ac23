"""postloan: post-loan management (贷后管理) models, early warning and prioritisation."""

__version__ = "0.1.0"
