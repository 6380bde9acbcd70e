"""Errors in OpenAI's format (``{"error": {"message", "type", "param", "code"}}``), so the
official client raises its usual exception classes (BadRequestError, AuthenticationError ...).

Every failure the server knows about is mapped here, in one place: ponder's own exception
tree, FastAPI's validation errors (malformed JSON, wrong types) and HTTP errors. Nothing a
caller sends turns into a 500.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from ponder.core.registry import describe_validation_error
from ponder.errors import BackendDeadError, BackendError, BadRequestError, UnknownNameError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal with its HTTP status and OpenAI error type."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error",
        param: str | None = None, code: str | None = None, retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.retry_after = retry_after
        """Seconds after which a retry may succeed (the Retry-After header), if known."""

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        if self.retry_after is not None:
            headers = {**(headers or {}), "Retry-After": str(math.ceil(self.retry_after))}
        return JSONResponse({"error": body}, status_code=self.status, headers=headers)


def bad_request(exc: BadRequestError, param: str | None) -> ApiError:
    """ponder's BadRequestError as a 400 (unknown names carry their own code). A message that
    names a field under ``param`` ("strategy.n: ...") makes that field the param."""
    code = "unknown_name" if isinstance(exc, UnknownNameError) else None
    message = str(exc)
    named = message.split(":", 1)[0]
    if param and named.startswith(f"{param}.") and " " not in named:
        param = named
    return ApiError(400, message, param=param, code=code)


def from_backend(exc: BackendError) -> ApiError:
    if isinstance(exc, BackendDeadError):  # one the server's supervisor did not see (a judge's)
        return ApiError(503, f"the engine is unavailable: {exc}", type="server_error")
    return ApiError(502, f"the engine failed this request: {exc}", type="server_error")


def _validation(exc: RequestValidationError) -> ApiError:
    """FastAPI's list of problems as one message; the first problem's field is ``param``."""
    parts, params = [], []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p != "body" and not _union_branch(str(p))]
        where = ".".join(loc) or "body"
        if error.get("type") == "json_invalid":
            where = "body"  # its loc is a character position
        params.append(where)
        if error.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}".rstrip(": "))
        elif error.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field")
        else:
            parts.append(f"{where}: {error.get('msg')}")
    return ApiError(400, "; ".join(parts), param=params[0] if params else None)


def to_api_error(exc: BaseException) -> ApiError:
    """Any failure as the refusal the caller sees; unknown ones are a 500 that says little."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation(exc)
    if isinstance(exc, BadRequestError):
        return bad_request(exc, None)
    if isinstance(exc, ValidationError):  # settings that pass alone but not together (n with greedy)
        return ApiError(400, describe_validation_error("strategy", exc), param="strategy")
    if isinstance(exc, BackendError):
        log.warning("engine error: %s", exc)
        return from_backend(exc)
    if isinstance(exc, HTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return ApiError(exc.status_code, str(exc.detail), type=kind)
    log.error("internal error", exc_info=exc)
    return ApiError(500, f"internal error ({type(exc).__name__}); the server keeps serving",
                    type="server_error")


def _union_branch(part: str) -> bool:
    """Pydantic names the branch of a union in the location ('str', 'list[TextPart]'); the
    caller knows the field, not our types."""
    return part in ("str", "int", "float", "bool", "dict", "list") or "[" in part


def install(app: FastAPI) -> None:
    """Route every failure to an OpenAI-format response."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        error = to_api_error(exc)
        return error.response({"WWW-Authenticate": "Bearer"} if error.status == 401 else None)

    for kind in (ApiError, RequestValidationError, BadRequestError, ValidationError, BackendError,
                 HTTPException, Exception):
        app.add_exception_handler(kind, handle)
