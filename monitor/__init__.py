"""monitor: change detection for conservation monitoring of paintings."""

__version__ = "0.1.0"
