"""Logging: readable text by default, JSON lines (with run id and stage) for machines."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

run_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="")
stage_var: contextvars.ContextVar[str] = contextvars.ContextVar("stage", default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "run_id": run_id_var.get(),
            "stage": stage_var.get(),
            "message": record.getMessage(),
        }
        for key in ("event", "rows_in", "rows_out", "quarantined", "seconds", "files"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(*, fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "s3fs", "aiobotocore", "fsspec", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
