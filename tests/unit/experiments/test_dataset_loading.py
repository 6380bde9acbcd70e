"""Datasets through Hugging Face ``datasets``: every file format, field mapping, shuffling,
and a clear error for each kind of bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ponder.errors import BadRequestError
from ponder.experiments.datasets import load_problems

ROWS = [
    {"problem": "What is 2 + 2?", "solution": "4", "uid": "a"},
    {"problem": "What is 3 * 3?", "solution": "9", "uid": "b"},
    {"problem": "Name a colour.", "solution": None, "uid": "c"},
]
MAPPING = {"question": "problem", "answer": "solution", "id": "uid"}


def write(path: Path, rows: list[dict]) -> Path:
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        import datasets

        table = datasets.Dataset.from_list(rows)
        table.to_parquet(str(path)) if suffix == ".parquet" else table.to_csv(str(path), index=False)
    return path


def file_config(path: Path, **extra: object) -> dict:
    return {"source": "file", "path": str(path), "fields": MAPPING, **extra}


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv"])
def test_every_format_maps_to_the_same_problems(tmp_path: Path, suffix: str) -> None:
    problems = load_problems(file_config(write(tmp_path / f"data{suffix}", ROWS)))
    assert [(p.id, p.prompt, p.reference) for p in problems] == [
        ("a", "What is 2 + 2?", "4"), ("b", "What is 3 * 3?", "9"), ("c", "Name a colour.", None),
    ]


def test_a_record_without_a_reference_is_kept_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        problems = load_problems(file_config(write(tmp_path / "d.jsonl", ROWS)))
    assert problems[2].reference is None
    assert "1 of 3 records" in caplog.text and "graded unknown" in caplog.text


def test_ids_default_to_the_row_number_and_numbers_become_text(tmp_path: Path) -> None:
    rows = [{"question": "What is 1 + 1?", "answer": 2}, {"question": "What is 0.5 * 3?", "answer": 1.5}]
    problems = load_problems({"source": "file", "path": str(write(tmp_path / "n.jsonl", rows))})
    assert [(p.id, p.reference) for p in problems] == [("0", "2"), ("1", "1.5")]


def test_shuffle_is_seeded_and_limit_takes_the_first(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(30)]
    path = write(tmp_path / "many.jsonl", rows)
    one = load_problems({"source": "file", "path": str(path), "shuffle": True, "seed": 4, "limit": 5})
    two = load_problems({"source": "file", "path": str(path), "shuffle": True, "seed": 4, "limit": 5})
    plain = load_problems({"source": "file", "path": str(path), "limit": 5})
    assert [p.id for p in one] == [p.id for p in two] != [p.id for p in plain]
    assert [p.id for p in plain] == ["0", "1", "2", "3", "4"]
    assert all(p.reference == p.id for p in one)  # ids keep the original row number


def test_answer_pattern_pulls_the_reference_out_of_a_solution(tmp_path: Path) -> None:
    rows = [{"question": "q1", "answer": "3 + 4 = 7\n#### 7"}, {"question": "q2", "answer": "so\n#### 1,200"},
            {"question": "q3", "answer": "no marker"}]
    problems = load_problems(
        {"source": "file", "path": str(write(tmp_path / "g.jsonl", rows)), "answer_pattern": r"####\s*(.+)$"}
    )
    assert [p.reference for p in problems] == ["7", "1,200", None]


def test_generated_arithmetic_has_references_and_stable_ids() -> None:
    problems = load_problems({"source": "arithmetic", "size": 3, "difficulty": 2, "seed": 1})
    assert [p.id for p in problems] == [f"arithmetic-d2-s1-{i}" for i in range(3)]
    assert all(p.reference is not None and p.prompt.startswith("What is ") for p in problems)


BAD = [
    ("missing-file", lambda d: file_config(d / "nope.jsonl"), r"dataset.path: no file at .*nope.jsonl"),
    ("unknown-suffix", lambda d: file_config(write(d / "x.jsonl", ROWS).rename(d / "x.txt")),
     r"cannot read .txt; use one of .jsonl, .json, .parquet, .csv"),
    ("question-column-missing", lambda d: {**file_config(write(d / "x.jsonl", ROWS)), "fields": {"question": "q"}},
     r"dataset.fields.question: no column 'q' in .*; its columns are: problem, solution, uid"),
    ("answer-column-missing", lambda d: {**file_config(write(d / "x.jsonl", ROWS)),
                                         "fields": {"question": "problem", "answer": "ans"}},
     r"dataset.fields.answer: no column 'ans'"),
    ("empty-question", lambda d: file_config(write(d / "x.jsonl", [*ROWS, {"problem": " ", "solution": "1", "uid": "e"}])),
     r"dataset record 3 of .*: no question in column 'problem'"),
    ("duplicate-id", lambda d: file_config(write(d / "x.jsonl", [*ROWS, {**ROWS[0]}])),
     r"dataset.fields.id: id 'a' appears twice"),
    ("pattern-matches-nothing", lambda d: file_config(write(d / "x.jsonl", ROWS), answer_pattern=r"####\s*(\d+)"),
     r"dataset.answer_pattern: .* matches none of the 3 answers"),
    ("pattern-without-group", lambda d: file_config(d / "x.jsonl", answer_pattern="####"),
     r"dataset.answer_pattern: needs a group"),
    ("not-json", lambda d: file_config(d / "bad.jsonl"), r"dataset: could not read .*bad.jsonl as json"),
    ("empty-file", lambda d: file_config(d / "empty.jsonl"), r"could not read|has no records"),
    ("unknown-source", lambda d: {"source": "s3", "path": "x"}, r"unknown dataset source 's3'; choose one of"),
    ("unknown-key", lambda d: {**file_config(d / "x.jsonl"), "split": "test"}, r"dataset.split: unknown parameter"),
    ("difficulty-too-high", lambda d: {"source": "arithmetic", "difficulty": 99}, r"dataset.difficulty: .*less than or equal to 10"),
]


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_is_one_clear_error(tmp_path: Path, make, message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "answer": \n')
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(BadRequestError, match=message):
        load_problems(make(tmp_path))


def test_a_hub_dataset_that_cannot_be_reached_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no network: fail at once
    with pytest.raises(BadRequestError, match=r"could not load 'nobody/nothing' \(split 'test'\) from the Hugging Face hub"):
        load_problems({"source": "hub", "path": "nobody/nothing", "split": "test"})
