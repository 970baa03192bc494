"""Moved to :mod:`monitor.cli.train`; kept so that older imports still work."""

from monitor.cli.train import register

__all__ = ["register"]
