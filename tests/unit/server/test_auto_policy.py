"""'auto' through the endpoint (the policy itself: tests/unit/strategies/test_auto.py), the
profiles a server refuses at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from server_helpers import answers, chat, client

from ponder.cli import main
from ponder.errors import BadRequestError
from ponder.server import ServerSettings, create_app
from tests.unit.strategies.test_auto import PROFILE


async def test_auto_through_the_endpoint_says_what_and_why(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(PROFILE.model_dump(mode="json")))
    async with client(answers("12"), profiles=path) as http:
        body = (await http.post("/v1/chat/completions", json=chat(
            strategy="auto", budget={"generated_tokens": 1000}, trace=True))).json()
    auto = body["ponder"]["auto"]
    assert auto["difficulty"] == "easy" and auto["strategy"] == {"name": "self_consistency", "n": 1}
    assert "best trade" in auto["reason"] and auto["expected_tokens"] == 0
    # n=1 samples nothing more: the probe's 4 chains (24 tokens each) are its vote
    assert body["usage"]["completion_tokens"] == 4 * 24
    assert len(body["ponder"]["trace"]["candidates"]) == 4


def test_the_server_refuses_at_start_up_profiles_made_for_another_model(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**PROFILE.model_dump(mode="json"), "model": "qwen3-8b"}))
    backend = answers("12")
    backend.model = "embedded"
    with pytest.raises(BadRequestError, match="made for model 'qwen3-8b', not 'embedded'"):
        create_app(ServerSettings(profiles=path), backend=backend)
    create_app(ServerSettings(profiles=path, force_profile=True), backend=backend)


def test_ponder_serve_refuses_them_before_it_listens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**PROFILE.model_dump(mode="json"), "model": "qwen3-8b"}))
    assert main(["serve", "backend=embedded", "--port", "0", "--profiles", str(path)]) == 2
    err = capsys.readouterr().err
    assert "made for model 'qwen3-8b', not 'embedded'" in err and "listening on" not in err
