"""Server-side sessions: the browser holds only an opaque random id; the person's token stays here.

The store is one process's memory, bounded (the oldest session goes when it is full) and expiring. Several
console replicas therefore need sticky sessions at the Ingress (or a shared store, not built): a request
that reaches another replica finds no session and is asked to sign in again (docs/console.md).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from consultflow.platform.identity import Caller

COOKIE = "consultflow_session"
MAX_SESSIONS_PER_PERSON = 16  # browsers and devices of one person; past it their own oldest session goes


@dataclass(frozen=True)
class Session:
    """Who is signed in, the token the console calls the components with, and the CSRF token."""

    caller: Caller
    token: str
    csrf_token: str
    expires_at: float  # time.time()

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


class SessionStore:
    """Opaque id → Session, at most `capacity` of them and MAX_SESSIONS_PER_PERSON of one person's."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, caller: Caller, token: str, expires_at: float) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(caller, token, secrets.token_urlsafe(32), expires_at)
        with self._lock:
            self._drop_expired()
            # one person signing in again and again (a script looping through the provider) pushes out
            # only their own sessions, never everybody else's
            theirs = [k for k, s in self._sessions.items() if s.caller.name == caller.name]
            for old in theirs[: max(0, len(theirs) - MAX_SESSIONS_PER_PERSON + 1)]:
                del self._sessions[old]
            while len(self._sessions) >= self._capacity:
                self._sessions.popitem(last=False)
            self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expired():
                del self._sessions[session_id]
                return None
            return session

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _drop_expired(self) -> None:
        now = time.time()
        for session_id in [k for k, s in self._sessions.items() if s.expired(now)]:
            del self._sessions[session_id]
