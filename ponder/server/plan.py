"""From a validated request to what runs: the problem, the strategy (or 'auto'), the budget.

``reasoning_effort`` is a preset of both: the strategy for requests that name none, and the
generated-token budget for requests that set none. The OpenAI sampling fields (temperature,
top_p, max_tokens) go into the strategy's ``sampling`` settings; a strategy without them
refuses them rather than ignoring them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ponder.budgets import Budget
from ponder.core.problem import Problem
from ponder.core.registry import describe_validation_error
from ponder.errors import BadRequestError
from ponder.server.errors import ApiError, bad_request
from ponder.server.limits import capped_budget
from ponder.server.schemas import ChatCompletionRequest, CompletionRequest
from ponder.server.settings import ServerSettings
from ponder.strategies import Strategy, strategies

AUTO = "auto"

EFFORT_PRESETS: dict[str, tuple[dict[str, Any], int]] = {
    "low": ({"name": "self_consistency", "n": 1}, 512),
    "medium": ({"name": "self_consistency", "n": 4}, 2048),
    "high": ({"name": "self_consistency", "n": 16}, 8192),
}
"""effort -> (strategy config, generated-token budget)."""


@dataclass(frozen=True)
class Plan:
    problem: Problem
    strategy: Strategy | None
    """None means 'auto': the policy chooses once it has seen the request."""
    budget: Budget
    seed: int
    sampling: Mapping[str, Any]
    """The caller's sampling fields, for the strategy 'auto' picks."""


def make_plan(request: ChatCompletionRequest | CompletionRequest, settings: ServerSettings) -> Plan:
    if request.model != settings.model_name:
        raise ApiError(404, f"model {request.model!r} does not exist; this server serves "
                       f"{settings.model_name!r}", type="not_found_error", param="model",
                       code="model_not_found")
    preset, effort_tokens = EFFORT_PRESETS.get(request.reasoning_effort or "", (None, None))
    spec = request.strategy or preset or settings.default_strategy
    budget = capped_budget(request.budget, settings.caps, effort_tokens)
    problem = _problem(request)
    strategy = None if _name_of(spec) == AUTO else build_strategy(spec, request.sampling_overrides)
    return Plan(problem, strategy, budget, request.seed or 0, request.sampling_overrides)


def _problem(request: ChatCompletionRequest | CompletionRequest) -> Problem:
    field = "messages" if isinstance(request, ChatCompletionRequest) else "prompt"
    try:
        if isinstance(request, ChatCompletionRequest):
            return Problem(messages=tuple(m.to_message() for m in request.messages))
        return Problem(prompt=request.prompt)
    except ValidationError as exc:  # a chat without a user turn, a blank prompt
        raise ApiError(400, describe_validation_error("request", exc), param=field) from None


def build_strategy(spec: str | Mapping[str, Any], sampling: Mapping[str, Any]) -> Strategy:
    """The validated strategy graph; errors are 400s naming the field (``strategy.n`` ...)."""
    refuse_instantiation(spec, "strategy")
    config = {"name": spec} if isinstance(spec, str) else dict(spec)
    try:
        if sampling:
            name = str(config.get("name", ""))
            if "sampling" not in strategies.get(name).model_fields:
                field = next(iter(sampling))
                raise ApiError(400, f"{field}: strategy {name!r} has no sampling settings to "
                               "apply it to; leave it out", param=field)
            given = config.get("sampling") or {}
            if isinstance(given, Mapping):  # anything else fails validation below, by name
                config["sampling"] = {**given, **sampling}
        return strategies.build(config)
    except BadRequestError as exc:
        raise bad_request(exc, "strategy") from None


def refuse_instantiation(value: Any, path: str) -> None:
    """Refuse Hydra's instantiation keys (``_target_``, ``_args_`` ...) anywhere in a request's
    strategy: ``strategies.build`` honours them, and over HTTP they would let any caller run
    any Python callable in the server. Requests name parts by their registry names."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}"
            if isinstance(key, str) and len(key) > 2 and key.startswith("_") and key.endswith("_"):
                raise ApiError(400, f"{where}: Hydra instantiation keys are not accepted over HTTP "
                               "(they would run arbitrary code); name strategies and their parts "
                               "by registry name", param=where, code="instantiation_refused")
            refuse_instantiation(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_instantiation(item, f"{path}.{index}")


def _name_of(spec: str | Mapping[str, Any]) -> str | None:
    return spec if isinstance(spec, str) else spec.get("name")
