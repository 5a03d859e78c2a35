"""Structured logging: JSON lines in production, Rich in a terminal; PII and secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
import time

from bot.settings import Settings

# Attributes every LogRecord has; anything else came in through `extra=` and belongs in the event.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        event.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_text:  # set (and redacted) by RedactingFilter
            event["exc"] = record.exc_text
        elif record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def configure_logging(settings: Settings) -> None:
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "pretty" if sys.stderr.isatty() else "json"
    if fmt == "pretty":
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    try:
        from bot.guards.pii import RedactingFilter

        handler.addFilter(RedactingFilter())
    except ImportError:  # pragma: no cover - guards are part of the package
        pass
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in (
        "httpx", "httpcore", "urllib3", "sentence_transformers", "transformers", "discord", "slack_bolt",
        "filelock", "alembic",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
