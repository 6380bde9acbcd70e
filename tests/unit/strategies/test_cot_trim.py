"""CoT trimming on the scripted backend (one character = one token): probe exits fire only
after W agreeing certain probes, each judge pattern injects its closing prompt, chains that
never close their thinking are made to answer, budgets hold, usage adds up, bad input fails."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
from pydantic import ValidationError

from ponder.backends.scripted import ScriptedBackend, ScriptedSample
from ponder.budgets import Budget, Ledger
from ponder.config import compose
from ponder.core.generation import GenerationRequest
from ponder.core.problem import Problem
from ponder.core.result import Result
from ponder.errors import BadRequestError
from ponder.runtime import Run
from ponder.strategies import CoTTrim, SamplingConfig, strategies
from ponder.strategies.base import DEFAULT_SYSTEM_PROMPT
from ponder.strategies.cot_judge import PATTERNS, ThoughtJudge
from ponder.strategies.cot_probe import ProbeExit

PROBLEM = Problem(prompt="What is 2 + 2?")
YES, NO = "\u2713", "\u2717"
"""One-character verdict tokens that read as the words a real tokenizer has as one token."""
ANSWER_PROMPT = "\nAnswer:"
PROBE = ProbeExit(interval=10, window=2, max_tokens=8)
LONG = SamplingConfig(max_tokens=400)


class TrimBackend(ScriptedBackend):
    """Scripted, answering each request by its kind: a chain (the bare chat prompt: the next
    scripted chain), a judge question (``verdict(prompt)``), a probe (``probe(thinking so
    far)``, told apart by its ``max_tokens``), or an answer after the thinking was cut."""

    WORDS = {YES: " Yes", NO: "No"}

    def __init__(
        self,
        chains: list[ScriptedSample],
        *,
        probe: Callable[[str], str] = lambda thinking: "",
        verdict: Callable[[str], str] = lambda prompt: NO,
        answer: str = " 4",
        answer_prompt: str = ANSWER_PROMPT,
    ) -> None:
        super().__init__(self._reply)
        self.chat = self.decode(self.render(PROBLEM, DEFAULT_SYSTEM_PROMPT))
        self.chains, self.probe, self.verdict, self.answer = list(chains), probe, verdict, answer
        self.answer_prompt = answer_prompt
        self.kinds: list[str] = []

    def _reply(self, request: GenerationRequest, sample: int, call: int) -> ScriptedSample:
        prompt = self.decode(request.prompt_token_ids)
        if "Latest thought:" in prompt:
            return self._kind("judge", ScriptedSample(self.verdict(prompt), logprobs=[-0.1]))
        rest = prompt.removeprefix(self.chat)
        if not rest:
            return self._kind("chain", self.chains.pop(0))
        if request.params.max_tokens == PROBE.max_tokens and rest.endswith(self.answer_prompt):
            thinking = rest[: -len(self.answer_prompt)]
            return self._kind("probe", ScriptedSample(self.probe(thinking)))
        return self._kind("answer", ScriptedSample(self.answer))

    def _kind(self, kind: str, sample: ScriptedSample) -> ScriptedSample:
        self.kinds.append(kind)
        return sample

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(self.WORDS.get(chr(t), chr(t)) for t in token_ids)

    def prompts(self, kind: str) -> list[str]:
        """The prompts of one kind of request, after the chat prompt."""
        return [
            self.decode(r.prompt_token_ids).removeprefix(self.chat)
            for r, k in zip(self.requests, self.kinds)
            if k == kind
        ]


def thinking_chain(text: str, delay: float = 0.001) -> ScriptedSample:
    return ScriptedSample(text, delay=delay)


async def run(
    backend: TrimBackend, budget: Budget | None = None, **fields: object
) -> Result:
    fields = {"n": 1, "sampling": LONG, "probe": None, "judge": None, **fields}
    ctx = Run(backend=backend, ledger=Ledger(budget or Budget()), rng=random.Random(0))
    return await CoTTrim(**fields).run(PROBLEM, ctx)


def probes_by_step(answers: dict[int, str]) -> Callable[[str], str]:
    """Probe replies by step: the probe after ``step * 10`` thinking tokens says answers[step]."""
    return lambda thinking: answers.get(len(thinking) // PROBE.interval, "")


# -- probe-based early exit -------------------------------------------------------------------
FILLER = "thinking " * 30 + "Answer: 9"  # 270 characters of thinking, then its own answer


@pytest.mark.parametrize(
    ("window", "answers", "exit_step", "answer"),
    [
        (2, {1: " 7", 2: " 7"}, 2, "7"),
        (2, {1: " 7", 2: " 7 Wait", 3: " 7", 4: " 7"}, 4, "7"),
        (2, {1: " 7", 2: " 8", 3: " 8"}, 3, "8"),
        (2, {1: "", 2: "", 3: " 5", 4: " 5"}, 4, "5"),
        (2, {1: " 0.5", 2: " 1/2"}, 2, "1/2"),
        (3, {1: " 8", 2: " 8", 3: " 9", 4: " 9", 5: " 9"}, 5, "9"),
    ],
    ids=["two-agree", "a-hedge-is-not-certain", "disagreement-restarts", "no-answer-is-not-certain",
         "equivalent-answers-agree", "window-of-three"],
)
async def test_the_probe_exit_fires_only_after_w_agreeing_certain_probes(
    window: int, answers: dict[int, str], exit_step: int, answer: str
) -> None:
    backend = TrimBackend([thinking_chain(FILLER)], probe=probes_by_step(answers))
    result = await run(backend, probe=PROBE.model_copy(update={"window": window}))

    cut = exit_step * PROBE.interval
    assert result.details["ended_by"] == ["probe"] and result.details["probe_exits"] == 1
    assert result.details["kept_tokens"] == [cut]
    steps = [tokens for tokens, _, _ in result.details["probe_answers"][0]]
    assert steps[:exit_step] == [PROBE.interval * s for s in range(1, exit_step + 1)]
    best = result.best
    assert best is not None and result.answer == answer
    assert best.text == FILLER[:cut] + ANSWER_PROMPT + answers[exit_step]
    assert "answer" not in backend.kinds  # the probe's finished reply is the answer
    assert result.usage.cancelled_tokens > 0  # the chain was aborted in the engine
    assert result.details["streamed_tokens"][0] < len(FILLER)


async def test_probes_that_never_agree_leave_the_chain_to_answer_itself() -> None:
    text = "thinking " * 6 + "Answer: 9"  # its thinking closes with the 61st token
    backend = TrimBackend([thinking_chain(text, 0.0005)], probe=lambda t: f" {len(t)}")
    result = await run(backend, probe=PROBE)
    assert result.details["ended_by"] == ["answered"] and result.answer == "9"
    assert result.details["streamed_tokens"] == [len(text)]
    assert result.best is not None and result.best.text == text
    assert backend.prompts("probe") == [text[:t] + ANSWER_PROMPT for t in range(10, 61, 10)]
    assert result.details["probes"] == 6


async def test_a_probe_cut_short_is_continued_into_the_answer() -> None:
    backend = TrimBackend(
        [thinking_chain(FILLER)], probe=lambda thinking: " 6 because it is so", answer=" and so on"
    )
    result = await run(backend, probe=PROBE, answer_max_tokens=20)
    reply = " 6 because it is so"[: PROBE.max_tokens]
    assert result.details["kept_tokens"] == [20]
    (answer_prompt,) = backend.prompts("answer")
    assert answer_prompt == FILLER[:20] + ANSWER_PROMPT + reply  # continues the probe's ids
    assert backend.requests[backend.kinds.index("answer")].params.max_tokens == 20 - len(reply)
    assert result.best is not None
    assert result.best.text == FILLER[:20] + ANSWER_PROMPT + reply + " and so on"
    assert result.answer == "6"


async def test_probes_read_the_answer_in_the_models_own_format() -> None:
    chain = "<think>\n" + "Let me see. " * 20 + "</think>\n\n\\boxed{4}"
    backend = TrimBackend(
        [thinking_chain(chain)],
        probe=lambda thinking: "It is 4" if len(thinking) >= 20 else "Hmm.",
        answer_prompt="\n</think>\n\n",
    )
    result = await run(backend, probe=PROBE, thinking="r1")
    assert result.details["ended_by"] == ["probe"] and result.details["kept_tokens"] == [30]
    assert result.best is not None and result.best.text == chain[:30] + "\n</think>\n\nIt is 4"
    assert result.answer == "4" and result.best.thinking_tokens == 31  # the cut and its "\n"


# -- verifier-based trimming ------------------------------------------------------------------
THOUGHTS = ["Add 2 and 2.", "That gives 4.", "Let me check: 2 + 2 = 4.", "Checking once more.",
            "Still 4.", "Fine."]
REASONING = "\n\n".join(THOUGHTS) + "\n\nAnswer: 4"


def yes_for(pattern: str, *latest: str) -> Callable[[str], str]:
    """The judge says yes to ``pattern``'s question about the given latest thoughts."""
    question = getattr(ThoughtJudge(), pattern).question

    def verdict(prompt: str) -> str:
        hit = question in prompt and any(f"Latest thought:\n{t}\n" in prompt for t in latest)
        return YES if hit else NO

    return verdict


@pytest.mark.parametrize("pattern", PATTERNS)
async def test_each_detected_pattern_injects_its_closing_prompt(pattern: str) -> None:
    backend = TrimBackend(
        [thinking_chain(REASONING, 0.002)], verdict=yes_for(pattern, THOUGHTS[2]), answer=" 4"
    )
    judge = ThoughtJudge(underthinking={"patience": 1})
    result = await run(backend, judge=judge)

    closing = getattr(judge, pattern).closing_prompt
    kept = REASONING[: REASONING.index(THOUGHTS[2]) + len(THOUGHTS[2])]
    assert result.details["ended_by"] == [pattern]
    assert result.details["trims"] == {p: int(p == pattern) for p in PATTERNS}
    assert backend.prompts("answer") == [kept + closing + ANSWER_PROMPT]
    assert result.best is not None and result.best.text == kept + closing + ANSWER_PROMPT + " 4"
    assert result.details["kept_tokens"] == [len(kept)]
    assert result.answer == "4"


async def test_the_judge_asks_about_each_thought_after_the_first() -> None:
    backend = TrimBackend([thinking_chain(REASONING, 0.0005)])
    result = await run(backend, judge=ThoughtJudge())
    assert result.details["ended_by"] == ["answered"]
    questions = backend.prompts("judge")
    assert len(questions) == 3 * (len(THOUGHTS) - 1) == result.details["judge_calls"]
    assert result.usage.verifier_calls == len(questions)
    second = [q for q in questions if "Latest thought:\nThat gives 4.\n" in q]
    assert len(second) == 3
    assert "Problem: What is 2 + 2?\n\nEarlier reasoning:\nAdd 2 and 2.\n\n" in second[0]
    assert all(q.endswith("Reply with Yes or No.\nassistant: Answer:") for q in questions)


async def test_a_word_for_word_repeat_trims_without_asking_the_judge() -> None:
    text = "Add 2 and 2.\n\nIt is 4.\n\nIt   is 4.\n\n" + "More words. " * 10 + "Answer: 4"
    backend = TrimBackend([thinking_chain(text)])
    result = await run(backend, judge=ThoughtJudge())
    assert result.details["ended_by"] == ["repetition"]
    assert result.details["kept_tokens"] == [len("Add 2 and 2.\n\nIt is 4.\n\nIt   is 4.")]
    asked_about = [q for q in backend.prompts("judge") if "Latest thought:\nIt" in q]
    assert len(asked_about) == 3  # the first "It is 4." only


async def test_underthinking_trims_only_after_its_patience() -> None:
    backend = TrimBackend(
        [thinking_chain(REASONING, 0.002)], verdict=yes_for("underthinking", *THOUGHTS)
    )
    result = await run(backend, judge=ThoughtJudge(underthinking={"patience": 3}))
    kept = REASONING[: REASONING.index(THOUGHTS[3]) + len(THOUGHTS[3])]
    assert result.details["ended_by"] == ["underthinking"]
    assert result.details["kept_tokens"] == [len(kept)]  # the third switch: thoughts 1, 2, 3


@pytest.mark.parametrize(
    ("verdict", "threshold", "ended_by"),
    [(YES, 1.0, "overthinking"), (NO, 0.1, "answered"), (NO, 0.0, "overthinking"),
     ("?", 0.0, "answered")],
    ids=["yes-reaches-1", "no-below", "no-reaches-0", "no-verdict-never-counts"],
)
async def test_a_thought_shows_a_pattern_when_its_score_reaches_the_threshold(
    verdict: str, threshold: float, ended_by: str
) -> None:
    backend = TrimBackend([thinking_chain(REASONING, 0.001)], verdict=lambda prompt: verdict)
    judge = ThoughtJudge(overthinking={"threshold": threshold}, underthinking=None, repetition=None)
    result = await run(backend, judge=judge)
    assert result.details["ended_by"] == [ended_by]


async def test_judge_questions_of_chains_at_the_same_thought_go_out_together() -> None:
    chains = [thinking_chain(REASONING, 0.0), thinking_chain(REASONING, 0.0)]
    result = await run(TrimBackend(chains), n=2, judge=ThoughtJudge())
    per_chain = 3 * (len(THOUGHTS) - 1)
    assert result.details["judge_calls"] == 2 * per_chain
    assert result.details["judge_batches"] == len(THOUGHTS) - 1


async def test_one_chain_in_one_trimmed_chain_out() -> None:
    backend = TrimBackend([thinking_chain(REASONING, 0.002)], verdict=yes_for("overthinking",
                                                                             THOUGHTS[1]))
    ctx = Run(backend=backend, ledger=Ledger(Budget()), rng=random.Random(0))
    trimmer = CoTTrim(sampling=LONG, probe=None, judge=ThoughtJudge()).trimmer()
    chain = await trimmer.trim(PROBLEM, backend.render(PROBLEM, DEFAULT_SYSTEM_PROMPT), ctx)
    assert chain is not None and chain.ended_by == "overthinking"
    assert chain.text.startswith("Add 2 and 2.\n\nThat gives 4.\n\nI have reached the answer")
    assert chain.seen == {"overthinking": 1}
    assert ctx.ledger.spent.verifier_calls == 3  # its own judge batches, drained before it returns


# -- chains that never close their thinking ---------------------------------------------------
async def test_a_chain_that_stops_without_closing_its_thinking_is_made_to_answer() -> None:
    backend = TrimBackend([thinking_chain("x" * 50)], answer=" 5")
    result = await run(backend)
    assert result.details["ended_by"] == ["unclosed"]
    assert backend.prompts("answer") == ["x" * 50 + ANSWER_PROMPT]
    assert result.answer == "5" and result.best is not None
    assert result.best.thinking_tokens == 50 + len(ANSWER_PROMPT) - len("Answer:")


@pytest.mark.parametrize(
    ("fields", "kept"),
    [({"max_thinking_tokens": 30}, 30), ({"sampling": SamplingConfig(max_tokens=40)}, 40)],
    ids=["thinking-limit", "chain-length"],
)
async def test_thinking_that_runs_to_its_limit_is_closed(fields: dict, kept: int) -> None:
    backend = TrimBackend([thinking_chain("x" * 100)], answer=" 5")
    result = await run(backend, **fields)
    assert result.details["ended_by"] == ["thinking_limit"]
    assert result.details["kept_tokens"] == [kept]
    assert backend.prompts("answer") == ["x" * kept + ANSWER_PROMPT]
    assert result.usage.thinking_tokens == result.details["streamed_tokens"][0] >= kept


# -- voting, usage, budgets -------------------------------------------------------------------
async def test_the_chains_vote() -> None:
    chains = [thinking_chain(f"so it is {a}.\n\nAnswer: {a}", 0.0) for a in (5, 4, 4)]
    result = await run(TrimBackend(chains), n=3)
    assert result.answer == "4" and result.details["votes"] == {"5": 1, "4": 2}
    assert [c.thinking_tokens for c in result.candidates] == [len("so it is 5.\n\n")] * 3


async def test_usage_adds_up_with_probes_and_the_judge() -> None:
    reasoning = "\n\n".join(THOUGHTS) + "\n\n" + "and so on " * 20 + "Answer: 4"
    backend = TrimBackend(
        [thinking_chain(reasoning), thinking_chain(FILLER)],
        probe=lambda thinking: " 4" if thinking.startswith("thinking") else "",
        verdict=yes_for("overthinking", "Still 4."),
    )
    result = await run(backend, n=2, probe=PROBE, judge=ThoughtJudge())
    assert result.details["ended_by"] == ["overthinking", "probe"]
    usage, engine = result.usage, backend.usage
    assert usage.generated_tokens == engine.generated_tokens
    assert usage.prompt_tokens == engine.prompt_tokens
    assert usage.cancelled_tokens == engine.cancelled_tokens > 0
    assert usage.model_calls + usage.verifier_calls == engine.model_calls == len(backend.requests)
    assert usage.verifier_calls == backend.kinds.count("judge") == result.details["judge_calls"]
    assert result.details["probes"] == backend.kinds.count("probe")
    assert usage.thinking_tokens == sum(result.details["streamed_tokens"])  # no "Answer:" yet
    verdicts = backend.kinds.count("judge")  # one token each
    assert sum(result.details["chain_tokens"]) + verdicts == usage.generated_tokens


async def test_only_the_chains_the_budget_holds_run() -> None:
    chains = [thinking_chain("so 4.\n\nAnswer: 4", 0.0)] * 3
    budget = Budget(generated_tokens=2 * (100 + 20) + 10)
    backend = TrimBackend(chains)
    result = await run(backend, budget, n=3, sampling=SamplingConfig(max_tokens=100),
                       answer_max_tokens=20)
    assert backend.kinds == ["chain", "chain"]
    assert len(result.candidates) == 2 and result.answer == "4"
    assert result.budget_exhausted and result.exhausted_by == "generated_tokens"


async def test_a_budget_below_one_chain_runs_one_shorter_chain() -> None:
    backend = TrimBackend([thinking_chain("x" * 200)], answer=" 5")
    result = await run(backend, Budget(generated_tokens=60), answer_max_tokens=20)
    assert backend.requests[0].params.max_tokens == 40
    assert result.details["ended_by"] == ["thinking_limit"] and result.answer == "5"
    assert result.usage.generated_tokens <= 60 and result.budget_exhausted


async def test_probes_the_budget_cannot_hold_are_skipped_and_the_chain_goes_on() -> None:
    backend = TrimBackend([thinking_chain(FILLER, 0.0)], probe=lambda thinking: " 9")
    held = LONG.max_tokens + 64  # the chain and its answer: nothing left for a probe's 8 tokens
    result = await run(backend, Budget(generated_tokens=held + 4), probe=PROBE)
    assert backend.kinds == ["chain"] and result.details["probes"] == 0
    assert result.details["ended_by"] == ["answered"] and result.answer == "9"


async def test_the_clock_ends_a_chain_without_forcing_an_answer() -> None:
    backend = TrimBackend([thinking_chain("x" * 200, 0.01)])
    result = await run(backend, Budget(seconds=0.2))
    assert result.details["ended_by"] == ["clock"]
    assert backend.kinds == ["chain"]
    assert result.budget_exhausted and result.exhausted_by == "seconds"
    assert 0 < result.usage.cancelled_tokens < 200


# -- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ProbeExit(window=1), "window\n  Input should be greater than or equal to 2"),
        (lambda: ProbeExit(window=0), "window\n  Input should be greater than or equal to 2"),
        (lambda: ProbeExit(interval=0), "interval\n  Input should be greater than or equal to 1"),
        (lambda: ThoughtJudge(overthinking={"threshold": 1.5}),
         "overthinking.threshold\n  Input should be less than or equal to 1"),
        (lambda: ThoughtJudge(repetition={"threshold": -0.1}),
         "repetition.threshold\n  Input should be greater than or equal to 0"),
        (lambda: ThoughtJudge(underthinking={"patience": 0}),
         "underthinking.patience\n  Input should be greater than or equal to 1"),
        (lambda: ThoughtJudge(overthinking=None, underthinking=None, repetition=None),
         "judge needs at least one of overthinking, underthinking, repetition"),
        (lambda: ThoughtJudge(template="{problem} {thought} {question}"),
         "missing the placeholder {thoughts}"),
        (lambda: CoTTrim(max_thinking_tokens=300), "max_thinking_tokens must be <= "
         "sampling.max_tokens \\(a chain's request ends there\\), got 300 > 256"),
        (lambda: CoTTrim(n=0), "n\n  Input should be greater than or equal to 1"),
    ],
    ids=["window-1", "window-0", "interval-0", "threshold-above-1", "threshold-below-0",
         "patience-0", "no-pattern", "template", "thinking-beyond-chain", "n-0"],
)
def test_bad_settings_fail_naming_the_field(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_the_config_builds_the_class_defaults_and_takes_overrides() -> None:
    config = compose(["strategy=cot_trim"])["strategy"]
    assert strategies.build(config) == CoTTrim()
    tuned = compose(["strategy=cot_trim", "strategy.probe.window=4", "strategy.judge=null"])
    built = strategies.build(tuned["strategy"])
    assert built.probe is not None and built.probe.window == 4 and built.judge is None
    with pytest.raises(BadRequestError, match=r"strategy.probe.window: Input should be greater "
                       r"than or equal to 2 \(got 1\)"):
        strategies.build(compose(["strategy=cot_trim", "strategy.probe.window=1"])["strategy"])
