"""vLLM v1 logits processors that ponder registers at engine start (``VllmConfig``).

``BudgetForcingProcessor`` runs ``ponder.core.forcing.ChainRule`` for every request whose
``SamplingParams.extra_args`` carry ``FORCING_KEY``, so budget forcing needs no stop-and-
resubmit round trip. vLLM builds one instance per engine and hands it every request: rows
without the key cost a dict lookup when they join the batch and nothing per step (``apply``
returns at once while no row uses the rule).

How vLLM drives it (vllm/v1/sample/logits_processor): ``update_state`` gets the batch's
added, removed and moved rows before each step, with a live reference to each request's
output token list; ``apply`` gets the step's raw logits (before temperature and penalties),
one row per request, and may edit them in place. The processor changes greedy choices, so
``is_argmax_invariant`` is False. The rule's state is derived from the output list in
``apply`` (where vLLM guarantees it is current).

The redirect draw uses the row's temperature over the full distribution (top-p ignored) and
the processor's own generator, seeded from the engine seed: per-request seeds do not reach
logits processors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from pydantic import ValidationError
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from ponder.core.forcing import FORCING_KEY, ChainRule, Force, ForcingArgs, Redirect

if TYPE_CHECKING:
    from vllm import SamplingParams
    from vllm.config import VllmConfig

_GREEDY_BELOW = 1e-5
"""vLLM samples greedily below this temperature."""


def forcing_args(params: SamplingParams) -> ForcingArgs | None:
    """The request's budget-forcing args, None when it does not ask for budget forcing.
    Invalid args raise ``ValueError`` (vLLM turns that into a refused request)."""
    raw: Any = (params.extra_args or {}).get(FORCING_KEY)
    if raw is None:
        return None
    try:
        return ForcingArgs.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"extra_args[{FORCING_KEY!r}] is invalid: {exc}") from None


class _Row:
    """One forced request in the batch: its rule and its live output token list."""

    __slots__ = ("output", "rule", "temperature")

    def __init__(self, rule: ChainRule, output: list[int], temperature: float) -> None:
        self.rule, self.output, self.temperature = rule, output, temperature


class BudgetForcingProcessor(LogitsProcessor):
    """Suppresses or forces the end of thinking inside the engine (see module docstring)."""

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, _Row] = {}
        self.generator = torch.Generator().manual_seed(vllm_config.model_config.seed or 0)

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        forcing_args(sampling_params)

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, _new_row)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        forced: dict[int, int] = {}
        redirects: list[tuple[int, _Row, Redirect]] = []
        for index, row in self.rows.items():
            decision = row.rule.decide(row.output)
            if isinstance(decision, Force):
                forced[index] = decision.token
            elif isinstance(decision, Redirect):
                redirects.append((index, row, decision))
        banned_rows: list[int] = []
        banned_tokens: list[int] = []
        for (index, row, decision), end in zip(redirects, self._would_end(logits, redirects)):
            if end is None:
                banned_rows += [index] * len(decision.ends)
                banned_tokens += decision.ends
            else:
                forced[index] = row.rule.redirect(len(row.output), end).token
        if banned_rows:
            logits[banned_rows, banned_tokens] = float("-inf")
        if forced:
            rows = list(forced)
            logits[rows] = float("-inf")
            logits[rows, list(forced.values())] = 0.0
        return logits

    def _would_end(
        self, logits: torch.Tensor, redirects: list[tuple[int, _Row, Redirect]]
    ) -> list[int | None]:
        """For each redirect row, the end token the model samples there (None when it would
        continue), drawn as the sampler would, for all rows at once: greedy rows take the
        argmax; the others one draw over the ends' share of the softmax at their temperature."""
        if not redirects:
            return []
        rows = [index for index, _, _ in redirects]
        width = max(len(decision.ends) for _, _, decision in redirects)
        ends = torch.tensor([d.ends + d.ends[-1:] * (width - len(d.ends)) for _, _, d in redirects])
        valid = torch.tensor([[i < len(d.ends) for i in range(width)] for _, _, d in redirects])
        greedy = torch.tensor([row.temperature < _GREEDY_BELOW for _, row, _ in redirects])
        temperature = torch.tensor([row.temperature for _, row, _ in redirects])
        scaled = logits[rows] / torch.where(greedy, 1.0, temperature)[:, None]
        probs = torch.exp(scaled.gather(1, ends) - torch.logsumexp(scaled, dim=1, keepdim=True))
        top = torch.argmax(scaled, dim=1, keepdim=True)
        probs = torch.where(greedy[:, None], (ends == top).float(), probs) * valid
        draws = torch.where(greedy, 0.5, torch.rand(len(rows), generator=self.generator))
        hits = (probs.cumsum(dim=1) <= draws[:, None]).sum(dim=1).tolist()
        return [
            decision.ends[hit] if hit < len(decision.ends) else None
            for (_, _, decision), hit in zip(redirects, hits)
        ]


def _new_row(params: SamplingParams, _prompt: list[int] | None, output: list[int]) -> _Row | None:
    args = forcing_args(params)
    if args is None:
        return None
    rule = ChainRule(args, tuple(sorted(params.all_stop_token_ids)))
    return _Row(rule, output, params.temperature)
