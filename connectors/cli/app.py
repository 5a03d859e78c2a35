"""The `docent` Typer app: the shared apps from `common`, with every command module registered."""

from __future__ import annotations

import sys

from connectors.cli import documents, asking, service, caps, gaps, gauges  # noqa: F401, I001  (they register commands, in help order)
from connectors.cli.common import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
