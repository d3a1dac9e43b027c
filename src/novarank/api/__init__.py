"""HTTP layer: FastAPI app factory and one router per resource; thin by design."""

from novarank.api.app import create_app

__all__ = ["create_app"]
