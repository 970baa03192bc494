"""Moved to :mod:`monitor.cli.history` (and ``compare_stored`` to :mod:`monitor.cli.compare`).

Kept so that older imports (``from monitor import cli_history``) still work.
"""

from monitor.cli._options import HomeOption, JsonOption
from monitor.cli.compare import compare_stored
from monitor.cli.history import *  # noqa: F403
from monitor.cli.history import register

__all__ = ["HomeOption", "JsonOption", "compare_stored", "register"]
