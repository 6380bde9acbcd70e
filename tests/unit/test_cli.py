"""The command line rejects bad input with one clear line and exit status 2, before any
engine starts (these run in well under a second)."""

from __future__ import annotations

import pytest

from ponder.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "hi", "strategy=nonesuch"], "Could not find 'strategy/nonesuch'"),
        (["solve", "hi", "strategy.n=0"], "strategy.n: Input should be greater than or equal to 1"),
        (["solve", "hi", "strategy.nn=2"], "Key 'nn' is not in struct"),
        (["solve", "hi", "budget.generated_tokens=-5"], "budget.generated_tokens"),
        (["solve", ""], "problem.prompt: must not be empty or only whitespace"),
        (["solve", " \n\t "], "problem.prompt: must not be empty or only whitespace"),
        (["solve", "hi", "backend=openai"], "backend.model: missing; give it (backend.model=...)"),
        (["solve", "hi", "backend.model=/no/such/model"], "model path '/no/such/model' does not exist"),
        (["solve", "hi", "backend.dtype=3", "backend.max_num_seqs=0"], "backend.max_num_seqs"),
    ],
    ids=["unknown-strategy", "zero-n", "unknown-key", "negative-budget", "empty-prompt",
         "whitespace-prompt", "openai-without-model",
         "missing-model-path", "bad-backend-setting"],
)
def test_bad_input_is_one_clear_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # one line, nothing else


def test_models_lists_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert capsys.readouterr().out.startswith("embedded\t")


def test_a_server_that_does_not_answer_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["solve", "hi", "backend=openai", "backend.base_url=http://127.0.0.1:9/v1",
            "backend.model=smollm2", "backend.tokenizer=embedded", "backend.max_retries=0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no OpenAI-compatible server answers at http://127.0.0.1:9/v1" in err
    assert "Traceback" not in err
