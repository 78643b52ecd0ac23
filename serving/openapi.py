"""The OpenAPI document at ``/docs.json``: BentoML's, completed and corrected.

BentoML 1.4 builds the document from the API methods alone, so on its own it:

- leaves out ``GET /metadata`` (a Starlette route mounted beside the API methods);
- does not know the guard in front of the endpoints (``serving/security.py``): bearer
  authentication (401), JSON only (415), bounded bodies (413), nor the 422 the service
  sends when the library refuses a well-formed request;
- declares the 400 body's ``detail`` a string, while it sends pydantic's list of errors.

:func:`openapi_document` patches these into the generated document, and
:class:`OpenAPIMiddleware` serves it in place of BentoML's, so clients and fuzzers
(schemathesis in tests/serving/test_reliability.py) see the contract the service keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from serving.security import PUBLIC_PATHS, send_json

_ERROR = {"type": "object", "required": ["error"],
          "properties": {"error": {"type": "string"}}}
_GUARD_RESPONSES = {
    "401": "missing or invalid bearer token",
    "413": "request body over the limit (POSTLOAN_MAX_BATCH customers)",
    "415": "content type other than application/json",
    "422": "well-formed request the library refuses (the message says why)",
    "404": "/explain by customer_id: the id is not in the online snapshot store",
}
_METADATA = {
    "type": "object",
    "required": ["service", "api_version", "models", "feature_spec", "snapshot_fields",
                 "strategy", "limits", "auth"],
    "properties": {
        "service": {"type": "string"},
        "api_version": {"type": "string"},
        "models": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["registered_name", "version", "run_id", "label", "score_column",
                         "source", "alias", "oot_metrics"],
            "properties": {
                "registered_name": {"type": "string"},
                "version": {"type": "string"},
                "run_id": {"type": "string", "nullable": True},
                "label": {"type": "string"},
                "family": {"type": "string", "enum": ["lightgbm", "logistic"]},
                "score_column": {"type": "string"},
                "source": {"type": "string"},
                "alias": {"type": "string", "nullable": True},
                "champion": {"type": "boolean", "nullable": True},
                "oot_metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            }}},
        "feature_spec": {"type": "object"},
        "snapshot_fields": {"type": "array", "items": {"type": "string"}},
        "strategy": {"type": "object"},
        "limits": {"type": "object", "required": ["max_batch"],
                   "properties": {"max_batch": {"type": "integer"}}},
        "auth": {"type": "string"},
    },
}


def _json_response(description: str, ref: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def openapi_document(service: Any) -> dict:
    """BentoML's OpenAPI document for `service`, with /metadata, auth and true errors.

    Args:
        service: the BentoML service (``serving.service.PostloanService``).
    """
    spec = service.openapi_spec.asdict()
    schemas = spec["components"]["schemas"]
    schemas["InvalidArgument"]["properties"]["detail"] = {
        "type": "array", "title": "Error Detail",
        "items": {"type": "object", "required": ["loc", "msg", "type"],
                  "properties": {"loc": {"type": "array", "items": {}},
                                 "msg": {"type": "string"}, "type": {"type": "string"}}}}
    schemas["Error"] = _ERROR
    schemas["Metadata"] = _METADATA
    spec["components"]["securitySchemes"] = {"bearerAuth": {"type": "http",
                                                            "scheme": "bearer"}}
    spec["paths"]["/metadata"] = {"get": {
        "tags": ["Service APIs"], "operationId": "postloan__metadata",
        "description": "Models (names, versions, aliases, run ids), feature spec and the "
                       "strategy thresholds in force.",
        "responses": {"200": _json_response("OK", "Metadata")}}}
    for path, item in spec["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        for method, op in item.items():
            op["security"] = [{"bearerAuth": []}]
            for code, text in _GUARD_RESPONSES.items():
                if method == "post" or code == "401":
                    op["responses"].setdefault(code, _json_response(text, "Error"))
    return spec


class OpenAPIMiddleware:
    """Serve :func:`openapi_document` at ``GET /docs.json`` (built on first request).

    Args:
        app: the wrapped ASGI app.
        service: the BentoML service the document describes.
    """

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        self.service = service
        self._doc: dict | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] == "http" and scope.get("path") == "/docs.json"
                and scope.get("method") == "GET"):
            if self._doc is None:
                self._doc = openapi_document(self.service)
            return await send_json(send, 200, self._doc)
        return await self.app(scope, receive, send)
