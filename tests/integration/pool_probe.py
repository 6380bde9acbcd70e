"""Run by test_engine_pool.py in a process of its own (so ``ponder.shutdown()`` there empties a
pool no other test uses, and the only child processes are the ones ponder started).

``python pool_probe.py URL SERVED_NAME MODEL_FOLDER SOLVES`` solves SOLVES problems, each its
own ``solve`` call (a fresh run) with a scripted generator and an LLM judge on the vLLM server
at URL, then one on the in-process engine with the same judge, then shuts down; it counts the
HTTP clients and tokenizers built, and prints what it saw as one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import openai
import psutil
import transformers

import ponder
from ponder.backends.pool import engines
from ponder.backends.scripted import ScriptedBackend

clients: list[openai.AsyncOpenAI] = []
tokenizer_loads: list[str] = []


class CountedClient(openai.AsyncOpenAI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        clients.append(self)


def _counting(load: Any) -> Any:
    def counted(name: Any, *args: Any, **kwargs: Any) -> Any:
        tokenizer_loads.append(str(name))
        return load(name, *args, **kwargs)

    return counted


def _children_after(seconds: float) -> list[str]:
    """The command lines of this process's descendants still running after waiting up to
    ``seconds`` for them to end; multiprocessing's resource tracker, which lives as long as
    this process whatever ponder does, is not counted."""
    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for child in psutil.Process().children(recursive=True):
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(" ".join(child.cmdline()))
            except psutil.NoSuchProcess:
                pass
        alive = [line for line in alive if "resource_tracker" not in line]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def main(url: str, served: str, folder: str, solves: int) -> dict[str, Any]:
    openai.AsyncOpenAI = CountedClient  # what the OpenAI backend constructs
    auto = transformers.AutoTokenizer
    auto.from_pretrained = _counting(auto.from_pretrained)

    judge = {"kind": "openai", "base_url": url, "model": served, "tokenizer": folder,
             "request_seeds": False}
    strategy = {"name": "best_of_n", "n": 1, "sampling": {"max_tokens": 8},
                "verifier": {"name": "llm_judge", "backend": judge}}
    scored = 0
    for i in range(solves):
        generator = ScriptedBackend.from_script([f"The answer is {i + 1}."])
        result = ponder.solve(f"What is {i} + 1?", strategy=strategy, backend=generator)
        scored += result.candidates[0].score is not None
        assert result.usage.verifier_calls == 1, result.usage
    after_judging = {"clients": len(clients), "tokenizer_loads": list(tokenizer_loads)}

    engine_result = ponder.solve("What is 2 + 2?", strategy=strategy, backend="embedded")
    children_running = _children_after(0)
    pooled = len(engines)
    ponder.shutdown()
    return {
        "scored": scored,
        "after_judging": after_judging,
        "clients": len(clients),
        "engine_scored": engine_result.candidates[0].score is not None,
        "pooled_before_shutdown": pooled,
        "children_before_shutdown": children_running,
        "children_after_shutdown": _children_after(30),
        "clients_closed": [client.is_closed() for client in clients],
        "pooled_after_shutdown": len(engines),
    }


if __name__ == "__main__":
    url, served, folder, solves = sys.argv[1:5]
    print(json.dumps(main(url, served, folder, int(solves))))
