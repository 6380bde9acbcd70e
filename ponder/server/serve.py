"""``ponder serve``'s process: the port is bound before anything slow happens, so a port in use
fails at once and clients reach a server that says "starting" (503, Retry-After) instead of
"connection refused" while the engine loads in the background."""

from __future__ import annotations

import errno
import socket
import sys

import uvicorn
from fastapi import FastAPI

from ponder.errors import BadRequestError


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or the error that names them and says why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        why = ("the address is in use (another server?); stop it or choose another --port"
               if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
        raise BadRequestError(f"cannot listen on {host}:{port}: {why}") from None


def serve(app: FastAPI, *, host: str, port: int, grace_s: float, log_level: str) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; in-flight requests get ``grace_s`` to finish."""
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, timeout_graceful_shutdown=grace_s, log_level=log_level)
    print(f"listening on http://{host}:{bound} (engine loading)", file=sys.stderr, flush=True)
    uvicorn.Server(config).run(sockets=[sock])
