"""The README's one-file strategy runs as written (in its own process, so its registration
does not change the registry other tests see)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_one_file_strategy_runs_on_the_scripted_backend() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        import shortest_answer
        from ponder.backends.scripted import ScriptedBackend
        from ponder.budgets import Budget, Ledger
        from ponder.core.problem import Problem
        from ponder.runtime import Run
        from ponder.strategies import strategies

        strategy = strategies.build({"name": "shortest_answer", "n": 3})
        backend = ScriptedBackend.from_script(
            ["It is 5. Answer: 5", "Answer: 4", "Long thinking with no number at all"]
        )
        run = Run(backend, Ledger(Budget(generated_tokens=1000)))
        result = asyncio.run(strategy.run(Problem(prompt="2 + 2?"), run))
        print(result.answer, len(result.candidates), result.usage.generated_tokens,
              backend.usage.generated_tokens, result.budget_exhausted)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=EXAMPLES, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    answer, candidates, generated, engine_generated, cut = done.stdout.split()
    assert (answer, candidates, cut) == ("4", "3", "False")
    assert generated == engine_generated != "0"
