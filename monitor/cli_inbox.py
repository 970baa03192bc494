"""Moved to :mod:`monitor.cli.inbox`; kept so that older imports still work."""

from monitor.cli.inbox import *  # noqa: F403
from monitor.cli.inbox import register

__all__ = ["register"]
