"""Drawing strategy graphs: the indented tree, the PNG, and ``ponder graph`` (no engine)."""

from __future__ import annotations

import pytest

from ponder.cli import main
from ponder.graph import discover, draw_png, render_tree
from ponder.strategies import BeamSearch, BestOfN, SelfConsistency, ShortMK

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_tree_shows_roles_names_and_changed_settings() -> None:
    strategy = BestOfN(n=3, verifier="llm_judge", sampler=SelfConsistency(n=2, sampler=ShortMK(k=4)))
    assert render_tree(discover(strategy)) == "\n".join([
        "best_of_n (strategy) n=3",
        "├─ sampler: self_consistency (strategy) n=2",
        "│  └─ sampler: short_mk (strategy) k=4",
        "└─ verifier: llm_judge (verifier)",
    ])


def test_nested_settings_are_shown_by_their_dotted_key() -> None:
    tree = render_tree(discover(BeamSearch(sampling={"max_tokens": 64}, step_generator="sample")))
    assert tree.splitlines()[0] == "beam (strategy) sampling.max_tokens=64"
    assert tree.splitlines()[-1] == "└─ step_generator: sample (step generator)"


def test_draw_png_writes_a_picture(tmp_path) -> None:
    out = draw_png(discover(SelfConsistency(sampler=ShortMK())), tmp_path / "deep" / "g.png")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_ponder_graph_prints_the_tree_and_writes_the_png(tmp_path, capsys) -> None:
    out = tmp_path / "sc.png"
    assert main(["graph", "sc_over_short_mk", "strategy.sampler.k=6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "self_consistency (strategy) n=4\n└─ sampler: short_mk (strategy) k=6 m=2" in printed
    assert f"wrote {out}" in printed
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_ponder_graph_reads_a_yaml_file(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("name: best_of_n\nverifier: llm_judge\nsampler: budget_forcing\n")
    assert main(["graph", "mine.yaml", "n=2"]) == 0
    assert "best_of_n (strategy) n=2" in capsys.readouterr().out
    assert (tmp_path / "mine.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["graph", "beam", "verifier@strategy.verifier=reference_answer"],
         "strategy.verifier: reference_answer scores only finished answers"),
        (["graph", "no_such_strategy"], "bad override"),
    ],
    ids=["invalid-graph", "unknown-config"],
)
def test_ponder_graph_refuses_bad_graphs_with_exit_code_2(tmp_path, capsys, argv, message) -> None:
    assert main([*argv, "--out", str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
