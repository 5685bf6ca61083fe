"""What every console route shares: the signed-in session, the CSRF check, bounded JSON bodies, and
errors as `{"error": {code, message, field_violations}}`."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from consultflow.console.backends import ApiError, bad_request, from_rpc
from consultflow.console.sessions import COOKIE, Session, SessionStore

MAX_BODY_BYTES = 4 * 1024 * 1024  # a deployment's diagrams; everything else is far smaller
MAX_JSON_DEPTH = 32  # variables are records of a few levels; deeper is an attack on the parsers behind
BODY_SECONDS = 60.0  # a body trickled slower than this is refused: a slow client holds nothing for long
INT32_MAX = 2**31 - 1  # page sizes, versions and limits are int32 fields of the protobuf messages
CSRF_HEADER = "x-csrf-token"


def store_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


def session_of(request: Request) -> Session:
    """The caller's session, or 401: the browser then signs in again."""
    session = store_of(request).get(request.cookies.get(COOKIE, ""))
    if session is None:
        raise ApiError(401, "UNAUTHENTICATED", "not signed in (or the session has expired)")
    return session


def check_csrf(request: Request, session: Session) -> None:
    """A POST must carry the session's CSRF token in a header, which another site's form cannot set."""
    given = request.headers.get(CSRF_HEADER, "").encode("utf-8", "replace")
    if not secrets.compare_digest(given, session.csrf_token.encode()):
        raise ApiError(403, "PERMISSION_DENIED", "missing or wrong X-CSRF-Token header")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is `{}`); 400 or 413 for anything else."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "RESOURCE_EXHAUSTED", f"the body exceeds {MAX_BODY_BYTES} bytes")
    raw = b""
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_BODY_BYTES:
                    raise ApiError(413, "RESOURCE_EXHAUSTED", f"the body exceeds {MAX_BODY_BYTES} bytes")
    except ClientDisconnect as error:  # nobody is left to answer; no traceback for a client's going
        raise bad_request("body", "the client went away before sending it whole") from error
    except TimeoutError as error:
        raise ApiError(
            408,
            "DEADLINE_EXCEEDED",
            f"the body did not arrive within {BODY_SECONDS:.0f} s",
            [("body", "too slow")],
        ) from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise bad_request("body", f"is not UTF-8: {error}") from error
    if not text.strip():
        return {}
    try:
        body = json.loads(text, parse_constant=_not_json)
    except RecursionError as error:
        raise bad_request("body", f"nests deeper than {MAX_JSON_DEPTH} levels") from error
    except ValueError as error:
        raise bad_request("body", f"is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    _check_plain(body)
    return body


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python reads them, JSON has no such numbers and the components would refuse them."""
    raise ValueError(f"{constant} is no JSON number")


def _check_plain(body: dict[str, Any]) -> None:
    """Refuses nesting deeper than MAX_JSON_DEPTH and strings no UTF-8 can carry (lone surrogates, which
    JSON's \\u escapes can spell): both would fail later, deep in a component, as a crash."""
    waiting: list[tuple[Any, int]] = [(body, 1)]
    while waiting:
        value, depth = waiting.pop()
        if depth > MAX_JSON_DEPTH:
            raise bad_request("body", f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            waiting += [(key, depth) for key in value]
            waiting += [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list):
            waiting += [(item, depth + 1) for item in value]
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise bad_request("body", "holds a lone surrogate: no Unicode text") from error


def text_field(body: dict[str, Any], name: str, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise bad_request(name, "must be a string")
    if required and not value:
        raise bad_request(name, "is required")
    return value


def object_field(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise bad_request(name, "must be a JSON object")
    return value


def int_param(request: Request, name: str, default: int = 0) -> int:
    text = request.query_params.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError as error:
        raise bad_request(name, f"{text!r} is not a whole number") from error
    if not 0 <= value <= INT32_MAX:
        raise bad_request(name, f"{value} is not between 0 and {INT32_MAX}")
    return value


def bool_param(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "").lower()
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise bad_request(name, f"{text!r} is not true or false")


def message_json(message: Message) -> dict[str, Any]:
    """A protobuf message as the API's JSON: snake_case names, enums as names, int64 as strings; empty
    lists and zero values included, so the front end never tests for a missing key."""
    result: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return result


def api_error_response(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(), status_code=error.status)


def rpc_error_response(request: Request, error: Exception) -> Response:
    assert isinstance(error, grpc.aio.AioRpcError)
    return api_error_response(request, from_rpc(error))
