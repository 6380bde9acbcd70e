"""A ``Result`` in OpenAI's shapes: chat.completion, text_completion and their stream chunks.

The selected candidate's text is split by the strategy's thinking format: the thinking goes
to ``reasoning_content``, the answer section to ``content``. A chain that never reached its
answer marker is all thinking; ``content`` is then the answer the strategy extracted (or
empty). A free-form answer (``ponder.verifiers.free_form``) is the chosen text itself, so
``content`` is that text and ``reasoning_content`` only a delimited thinking section (r1,
qwen3). ``usage`` is the honest cost of the whole strategy run (every sample, cancelled ones
included), with ponder's breakdown under ``usage.ponder``.
"""

from __future__ import annotations

from typing import Any

from ponder.core.result import Result
from ponder.core.thinking import ThinkingFormat
from ponder.verifiers.free_form import split_free_form


def split_text(result: Result, thinking: ThinkingFormat) -> tuple[str, str]:
    """(reasoning_content, content) of the selected candidate."""
    best = result.best
    if best is None:
        return "", ""
    if result.details.get("answers") == "free_form":
        return split_free_form(best.text, thinking)
    reasoning, answer = thinking.split(best.text)
    if thinking.think_start and answer.startswith(thinking.think_end):
        answer = answer[len(thinking.think_end):]  # a tag closes thinking; it is not the answer
    answer = answer.strip() or (result.answer or "")
    return reasoning.strip(), answer


def finish_reason(result: Result) -> str:
    """'length' when no answer was selected or the selected chain ran out of tokens."""
    best = result.best
    return "length" if best is None or best.finish_reason == "length" else "stop"


def usage_block(result: Result) -> dict[str, Any]:
    usage = result.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.generated_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.thinking_tokens},
        "ponder": {
            "cached_prompt_tokens": usage.cached_prompt_tokens,
            "cancelled_tokens": usage.cancelled_tokens,
            "thinking_tokens": usage.thinking_tokens,
            "model_calls": usage.model_calls,
            "verifier_calls": usage.verifier_calls,
            "wall_seconds": round(usage.wall_seconds, 3),
            "budget_exhausted": result.budget_exhausted,
            "exhausted_by": result.exhausted_by,
        },
    }


def ponder_block(result: Result, decision: dict[str, Any] | None, trace: bool) -> dict[str, Any]:
    """What ponder adds beside the OpenAI fields: the answer, the rule that chose it (where
    the strategy says), 'auto''s choice, the trace."""
    block: dict[str, Any] = {"strategy": result.strategy, "answer": result.answer}
    if "chosen_by" in result.details:
        block["chosen_by"] = result.details["chosen_by"]
    if decision is not None:
        block["auto"] = decision
    if trace:
        block["trace"] = {
            "strategy": result.strategy,
            "selected_index": result.selected_index,
            "details": result.details,
            "candidates": [
                {"index": c.index, "answer": c.answer, "score": c.score, "tokens": c.num_tokens,
                 "finish_reason": c.finish_reason}
                for c in result.candidates
            ],
        }
    return block


def chat_completion(result: Result, thinking: ThinkingFormat, *, id: str, created: int, model: str,
                    extras: dict[str, Any]) -> dict[str, Any]:
    reasoning, content = split_text(result, thinking)
    message = {"role": "assistant", "content": content, "reasoning_content": reasoning}
    return {
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(result),
                     "logprobs": None}],
        "usage": usage_block(result), "ponder": extras,
    }


def text_completion(result: Result, thinking: ThinkingFormat, *, id: str, created: int, model: str,
                    extras: dict[str, Any]) -> dict[str, Any]:
    best = result.best
    return {
        "id": id, "object": "text_completion", "created": created, "model": model,
        "choices": [{"index": 0, "text": best.text if best else "", "finish_reason": finish_reason(result),
                     "logprobs": None}],
        "usage": usage_block(result), "ponder": extras,
    }
