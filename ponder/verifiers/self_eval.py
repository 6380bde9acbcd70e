"""Self-evaluation (Manvi et al., "Adaptive Inference-Time Compute: LLMs Can Predict if They
Can Do Better, Even Mid-Generation"): the model that wrote a chain is asked, right after it,
whether it would do better if it started over, and its answer is read from the top logprobs
of the one token it replies with: the score is P(No) / (P(Yes) + P(No)).

The question continues the chain's own token ids (the problem's prompt, the chain, then the
question), so the engine's prefix cache serves all but the few question tokens, and it reads
an unfinished chain as well as a finished one: self-evaluation can prune chains mid-way and
score the steps of a search. The prompt is rendered with ``system_prompt``, which must be
the one the chains were sampled with for the prefix to be theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import Field, model_validator

from ponder.core.generation import GenerationState, SamplingParams
from ponder.core.problem import DEFAULT_SYSTEM_PROMPT, Problem
from ponder.core.result import Candidate
from ponder.errors import BadRequestError, BudgetExhaustedError
from ponder.runtime import Run
from ponder.verifiers.base import Score, Verifier, verifiers
from ponder.verifiers.judge_scoring import TOP_LOGPROBS, yes_no_score

_ASK = SamplingParams(max_tokens=1, logprobs=TOP_LOGPROBS)
"""One token is the answer; only its logprobs matter, so the sampled token does not."""


@verifiers.register("self_eval")
class SelfEvaluation(Verifier):
    """Score = the model's own P(No) that it would do better starting over, given the chain."""

    question: str = Field(
        "\n\nWould you do better if you started over? Yes or No.\nAnswer:", min_length=1,
        description="Appended to the chain as text; the model's next token is its answer, so "
        "end where that word starts (after 'Answer:', ' No' is one token on most tokenizers).",
    )
    yes_word: str = Field(
        "Yes", min_length=1,
        description="The answer meaning the chain should be started over; one token.",
    )
    no_word: str = Field(
        "No", min_length=1, description="The answer meaning the chain is good; one token."
    )
    system_prompt: str | None = Field(
        DEFAULT_SYSTEM_PROMPT,
        description="The system turn the chains were sampled with (a strategy's system_prompt), "
        "so the question continues their exact prompt.",
    )

    @model_validator(mode="after")
    def _words_differ(self) -> SelfEvaluation:
        if self.yes_word.strip().lower() == self.no_word.strip().lower():
            raise ValueError(
                f"yes_word and no_word must be different words, got {self.yes_word!r} and "
                f"{self.no_word!r}"
            )
        return self

    async def _score(
        self, problem: Problem, candidates: Sequence[Candidate], ctx: Run
    ) -> list[Score]:
        self._check_words(ctx)
        prompt, question = ctx.render(problem, self.system_prompt), ctx.encode(self.question)
        asked = [[*prompt, *self._chain_ids(c, ctx), *question] for c in candidates]
        try:
            with ctx.require(
                prompt_tokens=sum(len(ids) for ids in asked),
                generated_tokens=len(asked),
                calls="none",  # the verifier calls are charged by the base class
            ) as spending:
                states = await asyncio.gather(*(spending.generate(ids, _ASK) for ids in asked))
        except BudgetExhaustedError as exc:  # the calls fit, their tokens did not
            return [Score(None, f"not self-evaluated: {exc}")] * len(candidates)
        return [self._answer(state, ctx) for state in states]

    def _check_words(self, ctx: Run) -> None:
        """Refuse answer words the model's tokenizer splits: one token's logprobs cannot
        read them."""
        split = {
            field: len(ids)
            for field in ("yes_word", "no_word")
            if len(ids := ctx.encode(getattr(self, field))) != 1
        }
        if split:
            found = ", ".join(
                f"{field}={getattr(self, field)!r} is {count} tokens"
                for field, count in split.items()
            )
            raise BadRequestError(
                f"self_eval: {found} for this model's tokenizer; each answer word must be one "
                "token (its answer is read from one token's logprobs)"
            )

    @staticmethod
    def _chain_ids(candidate: Candidate, ctx: Run) -> list[int]:
        """The chain's own ids (its text encoded only when they are unknown), without a
        closing end-of-sequence token: the question continues the chain, not a new turn."""
        ids = list(candidate.token_ids) or ctx.encode(candidate.text)
        eos = set(ctx.eos_token_ids)
        while ids and ids[-1] in eos:
            ids.pop()
        return ids

    def _answer(self, state: GenerationState, ctx: Run) -> Score:
        top = state.completions[0].top_logprobs
        if not top:
            cut = " (the budget's time ran out)" if state.timed_out else ""
            return Score(None, f"the model returned no token logprobs{cut}")
        # yes_no_score reads P(yes); the chain is good when the model would not start over.
        start_over = yes_no_score(
            top[0], lambda token: ctx.decode([token]), yes=self.yes_word, no=self.no_word
        )
        if start_over.value is None:
            return start_over
        return Score(1.0 - start_over.value)
