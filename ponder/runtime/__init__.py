"""The run: what a strategy or verifier is given, and its only way to reach compute."""

from ponder.runtime.run import MODEL_KINDS, Calls, ModelSpec, Run, Spending, charged

__all__ = ["MODEL_KINDS", "Calls", "ModelSpec", "Run", "Spending", "charged"]
