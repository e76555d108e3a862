"""redcloud: the lakehouse and analytics pipeline behind 党建红云."""

__version__ = "0.1.0"
