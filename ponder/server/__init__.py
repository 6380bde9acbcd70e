"""The budget-aware OpenAI-compatible endpoint (``ponder serve``); see ``app.create_app``.

The app is imported on first use, so importing ``ponder.server.settings`` does not load it.
"""

from typing import Any

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from ponder.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from ponder.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'ponder.server' has no attribute {name!r}")
