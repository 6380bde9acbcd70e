"""The layers point one way, and compute is reached only through the run.

Read from the source (every import, including those inside functions and under
``TYPE_CHECKING``), so a shortcut added anywhere fails here, not in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ponder"

SPENDERS = ("strategies", "verifiers", "search")
"""The packages that spend compute: they get a run and never a backend."""

FORBIDDEN_IMPORTS = {
    "core": ("ponder.backends", "ponder.budgets", "ponder.runtime", "ponder.verifiers",
             "ponder.search", "ponder.strategies", "ponder.graph", "ponder.server",
             "ponder.experiments"),
    "backends": ("ponder.runtime", "ponder.verifiers", "ponder.search", "ponder.strategies",
                 "ponder.graph", "ponder.server", "ponder.experiments"),
    "budgets": ("ponder.backends", "ponder.runtime", "ponder.verifiers", "ponder.search",
                "ponder.strategies", "ponder.graph", "ponder.server", "ponder.experiments"),
    "runtime": ("ponder.verifiers", "ponder.search", "ponder.strategies", "ponder.graph",
                "ponder.server", "ponder.experiments"),
    "verifiers": ("ponder.backends", "ponder.search", "ponder.strategies", "ponder.graph",
                  "ponder.server", "ponder.experiments"),
    "search": ("ponder.backends", "ponder.strategies", "ponder.graph", "ponder.server",
               "ponder.experiments"),
    "strategies": ("ponder.backends", "ponder.server", "ponder.experiments"),
}
"""Per layer, the packages its modules must not import. Strategies may reach the graph layer:
the strategy registry hands whole-graph builds (sub-strategies, verifiers and step writers at
their paths) to ``ponder.graph``, imported when a build is asked for."""

LEDGER_SPENDING = {"reserve", "try_reserve", "charge", "fit_samples"}
ENGINE_CALLS = {"generate", "stream", "pool"}
ENGINE_HOLDERS = ("backend", "engine", "client")


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def shortcuts(path: Path) -> list[str]:
    """Calls that spend around the run: a ledger reserved or charged by hand, an engine or
    backend called directly."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target, name = ast.unparse(node.func.value), node.func.attr
        by_hand = name in LEDGER_SPENDING and target.endswith("ledger")
        direct = name in ENGINE_CALLS and any(word in target for word in ENGINE_HOLDERS)
        if by_hand or direct:
            found.append(f"line {node.lineno}: {target}.{name}(...)")
    return found


@pytest.mark.parametrize(
    ("layer", "path"),
    [(layer, path) for layer in FORBIDDEN_IMPORTS for path in modules(layer)],
    ids=lambda value: value if isinstance(value, str) else value.relative_to(PACKAGE).as_posix(),
)
def test_a_layer_imports_nothing_above_it(layer: str, path: Path) -> None:
    forbidden = FORBIDDEN_IMPORTS[layer]
    bad = sorted(
        name for name in imported(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )
    assert bad == [], f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize(
    "path",
    [path for layer in SPENDERS for path in modules(layer)],
    ids=lambda path: path.relative_to(PACKAGE).as_posix(),
)
def test_strategies_verifiers_and_search_spend_only_through_the_run(path: Path) -> None:
    assert shortcuts(path) == [], f"{path.relative_to(PACKAGE)} spends around the run"


def test_the_scans_see_a_shortcut(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "from ponder.backends.base import Backend\n"
        "async def run(ctx):\n"
        "    ctx.ledger.reserve(generated_tokens=1)\n"
        "    await ctx.backend.generate(None)\n"
    )
    assert "ponder.backends.base" in imported(sneaky)
    assert shortcuts(sneaky) == [
        "line 3: ctx.ledger.reserve(...)", "line 4: ctx.backend.generate(...)"
    ]
