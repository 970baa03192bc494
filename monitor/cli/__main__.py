"""``python -m monitor.cli``: the command line."""

from monitor.cli import main

main()
