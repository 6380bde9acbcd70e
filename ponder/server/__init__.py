"""The budget-aware OpenAI-compatible endpoint (``ponder serve``); see ``app.create_app``."""

from ponder.server.app import create_app
from ponder.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
