"""`docent` — the command line: the product commands (ingest, ask, chat, documents, usage, the
bots) and, in their own module, the gauges (`docent eval …`, `docent bench`).

Heavy imports (torch, Qdrant, Slack, Discord) happen inside commands so `docent --help` is instant.
"""

from connectors.cli.app import app, main

__all__ = ["app", "main"]
