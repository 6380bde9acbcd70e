"""The run: what a strategy or verifier is given, and its only way to reach compute."""

from ponder.runtime.run import Run, Spending

__all__ = ["Run", "Spending"]
