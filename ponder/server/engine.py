"""The server's engine, watched: loaded in the background once the port is open, and started
anew when it dies, a bounded number of times with back-off, so a crash costs the requests in
flight and a few seconds, not the server. /health reads its state:

    starting     the engine is loading                                        503, Retry-After
    ok           requests are served                                          200
    unavailable  it died and a restart waits out its back-off (Retry-After),
                 or it may not start again (restarts used up, a bad config)   503
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from ponder.backends.base import Backend
from ponder.errors import BadRequestError
from ponder.server.errors import ApiError
from ponder.server.settings import ServerSettings

log = logging.getLogger(__name__)

State = Literal["starting", "ok", "unavailable"]
STARTING_RETRY_S = 5
"""Retry-After while the engine loads: its load takes tens of seconds on a CPU."""


class EngineSupervisor:
    """The one backend every request of a server uses, and its lifecycle. ``load()`` builds
    one (the engine pool's); without it the supervisor only serves the backend it was given
    and cannot start another."""

    def __init__(self, settings: ServerSettings, load: Callable[[], Awaitable[Backend]] | None = None,
                 *, backend: Backend | None = None,
                 announce: Callable[[str], None] = log.info) -> None:
        self.settings, self._load, self._announce = settings, load, announce
        self._backend = backend
        self.state: State = "ok" if backend is not None else "starting"
        self.reason = "" if backend is not None else "the engine has not been started"
        self._task: asyncio.Task[None] | None = None
        self._restarts: list[float] = []
        """When each restart in the window was decided (monotonic seconds)."""
        self._restart_at: float | None = None
        self._cause = ""
        self._reaping: asyncio.Task[None] | None = None
        """What ended the last engine, told to every request refused until a new one works."""

    # -- what routes ask ----------------------------------------------------------------
    def backend(self) -> Backend:
        """The working backend, or the 503 that says why there is none and when to retry."""
        self._notice_death()
        if self.state == "ok" and self._backend is not None:
            return self._backend
        raise self.unavailable()

    @property
    def current(self) -> Backend | None:
        """The backend in use, working or not (for /metrics)."""
        return self._backend

    def health(self) -> tuple[State, str, float | None]:
        """(state, why, seconds to wait before asking again)."""
        self._notice_death()
        return self.state, self.reason, self.retry_after()

    def retry_after(self) -> float | None:
        if self.state == "starting":
            return STARTING_RETRY_S
        if self._restart_at is not None:
            return max(1.0, math.ceil(self._restart_at - time.monotonic()) + STARTING_RETRY_S)
        return None

    def unavailable(self, cause: str | None = None) -> ApiError:
        """The 503 a request gets now; ``cause`` is what happened to it, if anything did."""
        cause = cause or self._cause
        if self.state == "starting":
            message = "the engine is starting; retry shortly"
        elif self.state == "ok":  # another engine failed (a judge's): the pool builds it anew
            message = "retry shortly"
        elif self._restart_at is not None or self._task is not None:
            message = "the server is starting a new engine; retry shortly"
        else:  # given up: the reason already says what happened
            message, cause = self.reason, None if cause in self.reason else cause
        return ApiError(503, f"{cause}; {message}" if cause else message, type="server_error",
                        code="engine_unavailable", retry_after=self.retry_after())

    def died(self, backend: Backend, cause: str) -> ApiError:
        """A request saw ``backend`` die: plan a restart (once per engine) and say so."""
        if backend is self._backend and self.state == "ok" and not backend.alive:
            self._lost(cause)
        return self.unavailable(cause)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Load the engine in the background; requests get 503 'starting' meanwhile."""
        if self._load is not None and self._backend is None and self._task is None:
            self._task = asyncio.create_task(self._bring_up(self._load, 0.0))

    async def close(self) -> None:
        """Stop a load or a restart that is under way (the pool's close ends the engines)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._reaping is not None:
            await asyncio.gather(self._reaping, return_exceptions=True)

    def _notice_death(self) -> None:
        """An engine can die with no request running (vLLM notices its core's exit)."""
        if self.state == "ok" and self._backend is not None and not self._backend.alive:
            self._lost("the inference engine stopped unexpectedly")

    def _lost(self, cause: str) -> None:
        log.error("%s", cause)
        dead, self._backend, self._cause = self._backend, None, cause
        if self._load is None:
            self._give_up(f"{cause}; this server was given its engine and cannot start another")
            return
        now = time.monotonic()
        window = self.settings.restart_window_s
        self._restarts = [t for t in self._restarts if now - t < window]
        if len(self._restarts) >= self.settings.max_restarts:
            self._give_up(
                f"{cause}; the engine was restarted {len(self._restarts)} times in the last "
                f"{window:g} s (max_restarts={self.settings.max_restarts}) and is not started "
                f"again: restart the server"
            )
            if dead is not None:  # what is left of it (an orphaned worker) goes now, not at exit
                self._reaping = asyncio.create_task(dead.close())
            return
        delay = min(self.settings.restart_backoff_s * 2 ** len(self._restarts),
                    self.settings.restart_backoff_max_s)
        self._restarts.append(now)
        self.state, self.reason = "unavailable", f"{cause}; restarting in {delay:g} s"
        self._restart_at = now + delay
        self._task = asyncio.create_task(self._bring_up(self._load, delay))

    def _give_up(self, reason: str) -> None:
        self.state, self.reason, self._restart_at, self._task = "unavailable", reason, None, None
        self._announce(f"unavailable: {reason}")

    async def _bring_up(self, load: Callable[[], Awaitable[Backend]], delay: float) -> None:
        await asyncio.sleep(delay)
        self.state, self.reason, self._restart_at = "starting", "the engine is loading", None
        try:
            backend = await load()
        except asyncio.CancelledError:
            raise
        except BadRequestError as exc:  # a bad config: starting again cannot help
            self._give_up(f"the engine cannot start: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - any failure to start is retried, bounded
            self._task = None
            self._lost(f"the engine failed to start ({type(exc).__name__}: {exc})")
            return
        self._backend, self._task, self._cause = backend, None, ""
        self.state, self.reason = "ok", ""
        self._announce("ready")
