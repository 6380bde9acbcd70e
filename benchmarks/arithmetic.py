"""Problems shared by the benchmarks: a dozen one-step arithmetic questions with their
answers, and ponder's shipped word problems (longer, several steps each)."""

from ponder.core.problem import Problem

QUESTIONS = [
    ("What is 17 + 25?", "42"),
    ("What is 9 times 7?", "63"),
    ("Tom has 12 apples and gives away 5. How many are left?", "7"),
    ("What is 100 minus 37?", "63"),
    ("A box holds 6 eggs. How many eggs are in 4 boxes?", "24"),
    ("What is 48 divided by 6?", "8"),
    ("Anna is 8 years old. How old will she be in 15 years?", "23"),
    ("What is 6 times 2?", "12"),
    ("What is 3 + 4?", "7"),
    ("A train travels 60 km per hour for 3 hours. How far does it go?", "180"),
    ("What is 10 + 10?", "20"),
    ("What is half of 84?", "42"),
]


def problems(count: int) -> list[Problem]:
    return [Problem(prompt=q, reference=a) for q, a in QUESTIONS[:count]]


def word_problems(count: int) -> list[Problem]:
    """The first ``count`` of the word problems that ship with ponder."""
    from ponder.experiments.datasets import load_problems

    return load_problems({"source": "packaged", "name": "word_problems", "path": "word_problems.jsonl", "limit": count})
