"""`liftwatch-dashboard`: the dashboard's command line.

The dashboard (ingest, store, web pages, alerts) is built in later milestones; until then
this entry point only reports its version, so installs and packaging can be checked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dashboard import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="liftwatch-dashboard",
        description="liftwatch dashboard (ingest, metrics, alerts): not built yet in this release.",
    )
    parser.add_argument("--version", action="version", version=f"liftwatch {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
