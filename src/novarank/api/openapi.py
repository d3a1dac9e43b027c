"""The published OpenAPI document: FastAPI's, plus the bounds the served release and the
settings impose, so that what the document allows the service accepts (and the rest it
rejects with a documented 4xx).

Some rules are only known at startup: `k` goes up to `feed_window`, a variant override or
a switched-off variant must be one of the release's variants. They are written into the
document here instead of being checked only in code.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from novarank.online.discovery import HISTORY_LIMIT
from novarank.online.service import RankingService


def _bound(param: dict[str, Any], service: RankingService) -> None:
    name, schema = param["name"].lower(), param.setdefault("schema", {})
    if name == "k":
        schema.update(minimum=1, maximum=service.settings.feed_window)
    elif name == "limit":
        schema.update(minimum=1, maximum=HISTORY_LIMIT)
    elif name in ("user_id", "item_id") and param.get("in") == "path":
        # the hot feed route reads its path by hand; the rule is the same everywhere
        schema.setdefault("minLength", 1)
        schema.setdefault("maxLength", 256)
    elif name == "x-variant-override":
        schema.clear()
        schema.update(type="string", enum=sorted(service.rec.ranker.variants))


def published(app: FastAPI, service: RankingService) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    for ops in doc["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                _bound(param, service)
    toggles = doc.get("components", {}).get("schemas", {}).get("TogglesIn")
    if toggles is not None:
        variants = toggles["properties"]["variants_off"]
        variants["anyOf"] = [{"type": "array", "items": {
            "type": "string", "enum": sorted(service.rec.ranker.variants)}}, {"type": "null"}]
    return doc


def install(app: FastAPI) -> None:
    """Serve `published` at /openapi.json (built once, after the service has started)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = published(app, app.state.service)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
