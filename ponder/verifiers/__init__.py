"""Scoring and checking answers. Importing this package registers the built-in verifiers.

``mean_logprob`` is ``certainty.self_certainty`` under another name: ``self_certainty`` here
is the module holding the ``SelfCertainty`` verifier.
"""

from ponder.verifiers import code, cot_pot, judge, learned, prm, reference, self_certainty
from ponder.verifiers import self_eval
from ponder.verifiers.answers import AnswerExtractor
from ponder.verifiers.base import Score, Verifier, verifiers
from ponder.verifiers.certainty import certainty_score
from ponder.verifiers.certainty import self_certainty as mean_logprob
from ponder.verifiers.code import CodeTests
from ponder.verifiers.cot_pot import CoTPoT
from ponder.verifiers.equivalence import (
    answers_equivalent,
    canonical_answer_key,
    group_answers,
    normalize_answer,
)
from ponder.verifiers.grading import Grade, exact_match, grade
from ponder.verifiers.judge import LLMJudge, StepJudge
from ponder.verifiers.learned import LearnedVerifier
from ponder.verifiers.prm import ProcessRewardModel
from ponder.verifiers.process import ProcessVerifier
from ponder.verifiers.reference import ReferenceAnswer
from ponder.verifiers.self_certainty import SelfCertainty
from ponder.verifiers.self_eval import SelfEvaluation
from ponder.verifiers.vote import VoteResult, majority_vote

__all__ = [
    "AnswerExtractor",
    "CoTPoT",
    "CodeTests",
    "Grade",
    "LLMJudge",
    "LearnedVerifier",
    "ProcessRewardModel",
    "ProcessVerifier",
    "ReferenceAnswer",
    "Score",
    "SelfCertainty",
    "SelfEvaluation",
    "StepJudge",
    "Verifier",
    "VoteResult",
    "answers_equivalent",
    "canonical_answer_key",
    "certainty_score",
    "exact_match",
    "grade",
    "group_answers",
    "majority_vote",
    "mean_logprob",
    "normalize_answer",
    "self_certainty",
    "self_eval",
    "verifiers",
]
