"""The processes an in-process engine runs on: vLLM's engine core (a spawned child) and the
workers it spawns in turn. vLLM stops them on an orderly shutdown, but when the core itself is
killed its worker is left orphaned (re-parented to init, holding memory and cores), so the
backend notes the whole tree while it is alive and ends whatever of it outlives the engine.

``psutil.Process`` remembers each process's start time, so a PID the system has since handed
to another program is never signalled.

A core that is killed cannot unlink its shared-memory queues either; the multiprocessing
resource tracker it shares with this process would unlink them at exit with a "leaked
shared_memory" warning. The segments the engine's processes map are noted too, and those
still there once every process has ended are unlinked and struck from the tracker.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from multiprocessing import resource_tracker
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

SHM_DIR = "/dev/shm/"
SHM_PREFIX = f"{SHM_DIR}psm_"
"""Python's ``SharedMemory`` names, the kind the resource tracker reports as leaked."""


class EngineProcesses:
    """The engine core processes with ``pids`` and, as noted, their descendants."""

    def __init__(self, pids: Iterable[int]) -> None:
        self._known: dict[int, psutil.Process] = {}
        self._segments: set[str] = set()
        """Names (under /dev/shm) of the shared memory the processes map."""
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self._known[pid] = psutil.Process(pid)
        self.note_descendants()

    def note_descendants(self) -> None:
        """Add the live descendants of every known process (workers start after the core)
        and the shared memory they all map."""
        for process in list(self._known.values()):
            with contextlib.suppress(psutil.Error):
                for child in process.children(recursive=True):
                    self._known.setdefault(child.pid, child)
        for process in self.alive():
            with contextlib.suppress(psutil.Error):
                self._segments.update(Path(m.path).name for m in process.memory_maps()
                                      if m.path.startswith(SHM_PREFIX))

    def alive(self) -> list[psutil.Process]:
        return [p for p in self._known.values() if _running(p)]

    def end(self, timeout_s: float = 3.0) -> list[int]:
        """SIGTERM what is left, SIGKILL what is still there ``timeout_s`` later; wait for all.
        Returns the PIDs that had to be ended."""
        self.note_descendants()
        left = self.alive()
        if not left:
            self._unlink_leftover_segments()
            return []
        log.info("ending engine processes left behind: %s", [p.pid for p in left])
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, stubborn = psutil.wait_procs(left, timeout=timeout_s)
        for process in stubborn:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(stubborn, timeout=timeout_s)
        self._unlink_leftover_segments()
        return [p.pid for p in left]

    def _unlink_leftover_segments(self) -> None:
        """Shared memory a killed process could not unlink (only once none of them runs)."""
        if self.alive():
            return
        for name in sorted(self._segments):
            path = Path(SHM_DIR, name)
            if path.exists():
                log.info("unlinking shared memory %s left by the engine", path)
                with contextlib.suppress(OSError):
                    path.unlink()
                with contextlib.suppress(Exception):  # the tracker may not know it
                    resource_tracker.unregister(f"/{name}", "shared_memory")
        self._segments.clear()


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
