"""The `pmm` command line: parses arguments and calls wiring. Nothing else lives here."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("pmm: no subcommands yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
