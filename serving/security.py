"""HTTP guard in front of every endpoint: bearer tokens, JSON only, bounded bodies.

An ASGI middleware (added with ``Service.add_asgi_middleware``), so a request is
refused before BentoML parses its body: an unauthenticated caller never learns what a
valid body looks like, and a pickle or multipart body never reaches a deserializer.
Health probes and the OpenAPI document stay open (probes carry no token, and neither
holds customer data). ``/metrics`` does not: its counters and latency histograms per
endpoint tell an outsider how much the lender scores and when, so a Prometheus scraper
sends a bearer token like any caller (see serving/README.md).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from serving.config import ServingConfig, token_digest

log = logging.getLogger("postloan.serving")

PUBLIC_PATHS = frozenset({"/", "/livez", "/readyz", "/healthz", "/docs.json",
                          "/schema.json"})
PUBLIC_PREFIXES = ("/static_content/", "/assets/")
BYTES_PER_CUSTOMER = 16_384  # a snapshot is ~2 KB of JSON; generous for pretty-printing
BODY_OVERHEAD = 65_536


async def send_json(send: Callable, status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] = ()) -> None:
    raw = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(raw)).encode()), *headers]})
    await send({"type": "http.response.body", "body": raw})


def is_authorised(header: str | None, config: ServingConfig) -> bool:
    """Whether an ``Authorization`` header carries one of the configured tokens.

    Compares SHA-256 digests with :func:`hmac.compare_digest` against every token, so
    the time taken says nothing about how much of a token was right.
    """
    if config.insecure_local:
        return True
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    digest = token_digest(token.strip())
    ok = False
    for d in config.token_digests:
        ok |= hmac.compare_digest(d, digest)
    return ok


class GuardMiddleware:
    """Refuse unauthenticated (401), non-JSON (415) and oversized (413) requests.

    Args:
        app: the wrapped ASGI app.
        get_config: returns the running service's :class:`ServingConfig` (read on
            each request, so the config loaded at start-up is the only source).
    """

    def __init__(self, app: Any, get_config: Callable[[], ServingConfig]) -> None:
        self.app = app
        self.get_config = get_config

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        try:
            config = self.get_config()
        except Exception:  # no service instance: start-up has not finished
            return await send_json(send, 503, {"error": "service is starting"})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if not is_authorised(headers.get("authorization"), config):
            log.warning("401 on %s %s: missing or invalid bearer token", scope.get("method"),
                        path)
            return await send_json(send, 401, {"error": "missing or invalid bearer token: "
                                                "send 'Authorization: Bearer <token>'"},
                                    [(b"www-authenticate", b'Bearer realm="postloan"')])
        if scope.get("method") == "POST":
            media = headers.get("content-type", "application/json").split(";")[0].strip()
            if media.lower() != "application/json":
                log.warning("415 on %s: content type %.60s", path, media)
                return await send_json(send, 415, {"error": f"unsupported content type "
                                                    f"{media[:60]!r}: send application/json"})
            limit = BODY_OVERHEAD + BYTES_PER_CUSTOMER * config.max_batch
            too_big = {"error": f"request body over {limit} bytes: split the batch"}
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                log.warning("413 on %s: body of %.20s bytes", path, length)
                return await send_json(send, 413, too_big)
            if length is None:  # chunked: read it here, bounded, then hand it on
                chunks, size, more = [], 0, True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None  # the client went away
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    more = message.get("more_body", False)
                    if size > limit:
                        log.warning("413 on %s: chunked body over %d bytes", path, limit)
                        return await send_json(send, 413, too_big)
                receive = _replay(b"".join(chunks), receive)
        return await self.app(scope, receive, send)


def _replay(body: bytes, receive: Callable) -> Callable:
    """A ``receive`` that yields `body` once, then defers to the real one."""
    sent = False

    async def inner() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return inner
