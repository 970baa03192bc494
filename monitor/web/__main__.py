"""``python -m monitor.web [--home DIR] [--host 127.0.0.1] [--port 8000]``: serve the viewer.

The same as ``monitor serve`` once the CLI is wired; kept so the viewer runs
without it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitor.errors import MonitorError
from monitor.web import serve


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve until interrupted; 1 after a one-line error."""
    parser = argparse.ArgumentParser(prog="python -m monitor.web", description=__doc__)
    parser.add_argument("--home", type=Path, default=None, help="data home (MONITOR_HOME)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    args = parser.parse_args(argv)
    try:
        serve(args.home, args.host, args.port)
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
