"""What a killed engine core leaves behind, with real processes shaped like vLLM's: a spawned
core that maps a shared-memory queue and spawns a worker. Killing the core orphans the worker
and strands the segment; ``EngineProcesses.end`` ends the one and unlinks the other."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing import shared_memory
from pathlib import Path

import psutil

from ponder.backends.engine_processes import SHM_DIR, EngineProcesses


def _worker() -> None:
    time.sleep(120)


def _core(ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    segment = shared_memory.SharedMemory(create=True, size=4096)
    worker = multiprocessing.get_context("spawn").Process(target=_worker, daemon=False)
    worker.start()
    ready.put((segment.name, worker.pid))
    time.sleep(120)


def test_a_killed_cores_worker_is_ended_and_its_shared_memory_unlinked() -> None:
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Queue()
    core = spawn.Process(target=_core, args=(ready,))
    core.start()
    segment, worker_pid = ready.get(timeout=60)
    worker = psutil.Process(worker_pid)
    processes = EngineProcesses([core.pid])
    assert {p.pid for p in processes.alive()} == {core.pid, worker_pid}

    core.kill()
    core.join()
    assert worker.is_running() and Path(SHM_DIR, segment).exists()  # orphaned, stranded

    assert processes.end(timeout_s=2) == [worker_pid]
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    assert not Path(SHM_DIR, segment).exists()
    assert processes.end() == []  # idempotent
