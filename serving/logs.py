"""Short logs and the audit trail.

BentoML 1.4 logs every rejected request (a pydantic validation error, a 415) with a
full traceback, and a failed start-up three times over. A filter on its loggers turns
those records into one line that names the path, the number of errors and the field
paths with their error types: never the body, never a value. The audit trail is one
JSON line per decision: model versions, input hash, scores, reasons, the decision;
no snapshot values, so no personal data.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postloan.errors import PostloanError

AUDIT_LOGGER = "postloan.audit"

# Loggers whose records carry request tracebacks or start-up failures.
_NOISY = ("bentoml._internal.server.http_app", "bentoml.serve", "uvicorn.error")


class ServiceStartError(PostloanError):
    """The service refuses to start (configuration or champions); the message says why."""


def _loc(err: dict) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "(body)"


class ShortErrors(logging.Filter):
    """Rewrite request-error and start-up records into one line without the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            errs = exc.errors(include_url=False, include_context=False, include_input=False)
            where = ", ".join(f"{_loc(e)} ({e['type']})" for e in errs[:5])
            more = f" and {len(errs) - 5} more" if len(errs) > 5 else ""
            path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            self._rewrite(record, logging.WARNING,
                          f"400 on {path}: {len(errs)} validation error(s): {where}{more}")
        elif isinstance(exc, ServiceStartError):
            self._rewrite(record, logging.ERROR, f"start-up refused: {exc}")
        elif exc is None and "ServiceStartError" in str(record.msg):
            # uvicorn's copy of the lifespan traceback: already said above.
            self._rewrite(record, logging.ERROR, "start-up refused (reason above)")
        return True

    @staticmethod
    def _rewrite(record: logging.LogRecord, level: int, msg: str) -> None:
        record.msg, record.args = msg, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = level, logging.getLevelName(level)


def install_short_errors() -> None:
    """Attach :class:`ShortErrors` to BentoML's and uvicorn's noisy loggers (idempotent)."""
    for name in _NOISY:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ShortErrors) for f in logger.filters):
            logger.addFilter(ShortErrors())


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def audit_logger(path: Path | None) -> logging.Logger:
    """The audit logger: JSON lines to `path` (appended), or to stderr when None."""
    logger = logging.getLogger(AUDIT_LOGGER)
    for h in list(logger.handlers):
        if getattr(h, "_postloan_audit", False):
            logger.removeHandler(h)
            h.close()
    handler: logging.Handler = (logging.StreamHandler(sys.stderr) if path is None
                                else logging.FileHandler(path, encoding="utf-8"))
    handler._postloan_audit = True  # type: ignore[attr-defined]
    handler.setFormatter(_JsonLines())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the trail has its own sink, not the console log
    return logger


def audit_record(endpoint: str, request_id: str, customer_id: int, input_hash: str,
                 versions: dict[str, str], scores: dict[str, float],
                 reasons: dict[str, Any] | None, decision: dict[str, Any]) -> str:
    """One decision as a JSON line a reviewer can replay.

    Args:
        endpoint: the endpoint that decided.
        request_id: one id per request, shared by its customers.
        customer_id: the lender's surrogate key (no name, phone or national id).
        input_hash: :func:`serving.schemas.input_hash` of the snapshot.
        versions: model -> registered version.
        scores: probability column -> value.
        reasons: model -> ``{"up": [[feature, contribution], ...], "down": [...]}``.
        decision: grade, warning level, segment, action and the like.
    """
    return json.dumps({
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "endpoint": endpoint, "request_id": request_id, "customer_id": customer_id,
        "input_hash": input_hash, "model_versions": versions, "scores": scores,
        "reasons": reasons, "decision": decision,
    }, separators=(",", ":"), default=str)
