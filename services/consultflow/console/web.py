"""What every console route shares: the signed-in session, the CSRF check, bounded JSON bodies, and
errors as `{"error": {code, message, field_violations}}`."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from consultflow.console.backends import ApiError, bad_request, from_rpc
from consultflow.console.sessions import COOKIE, Session, SessionStore

MAX_BODY_BYTES = 4 * 1024 * 1024  # a deployment's diagrams; everything else is far smaller
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
    if request.headers.get(CSRF_HEADER, "") != session.csrf_token:
        raise ApiError(403, "PERMISSION_DENIED", "missing or wrong X-CSRF-Token header")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is `{}`); 400 or 413 for anything else."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "RESOURCE_EXHAUSTED", f"the body exceeds {MAX_BODY_BYTES} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, "RESOURCE_EXHAUSTED", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request("body", f"is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    return body


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
        return int(text)
    except ValueError as error:
        raise bad_request(name, f"{text!r} is not a whole number") from error


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
