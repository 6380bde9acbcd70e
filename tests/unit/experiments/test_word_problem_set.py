"""The packaged word problems: the committed file is exactly what the generator writes, and
every problem is a whole-number question with a unique id."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ponder.experiments.datasets import load_problems
from ponder.experiments.word_problems import DATA_FILE, TEMPLATES, write


def test_the_committed_file_is_the_generators_output(tmp_path: Path) -> None:
    fresh = tmp_path / "word_problems.jsonl"
    write(fresh)
    assert fresh.read_bytes() == DATA_FILE.read_bytes()


def test_a_few_hundred_problems_from_many_templates() -> None:
    rows = [json.loads(line) for line in DATA_FILE.read_text().splitlines()]
    assert 200 <= len(rows) <= 300
    assert len(TEMPLATES) >= 30
    per_template = Counter(row["template"] for row in rows)
    assert set(per_template) == set(TEMPLATES)
    assert len({row["question"] for row in rows}) == len(rows)
    assert all(row["answer"].isdigit() and int(row["answer"]) > 0 for row in rows)


def test_the_word_problems_config_loads_them_with_their_ids() -> None:
    problems = load_problems({"source": "packaged", "path": "word_problems.jsonl", "fields": {"id": "id"}})
    assert len(problems) == 250
    assert problems[0].id == "wp-000" and problems[0].reference is not None
