"""One-time sign-in links for a local system: the link carries only a short ticket; the person's token
waits in a folder beside the system's data until the console takes it, once.

Why not put the token in the link: a link ends up in shell history, a browser's history and on screen; a
leaked token would be a bearer token for hours. A ticket is useless to the components (its audience is the
console's), expires in minutes, and is worth nothing once used, because its token file is gone. No
framework here: the CLI deposits, the console redeems (docs/security.md, "Console sign-in").
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from consultflow.platform.errors import Unauthenticated
from consultflow.platform.identity import CONSOLE_TICKET_TTL, LocalIssuer, TokenVerifier

_TICKET_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def deposit(
    folder: Path,
    issuer: LocalIssuer,
    name: str,
    roles: Iterable[str],
    groups: Iterable[str] = (),
    session_ttl: timedelta = timedelta(hours=8),
) -> str:
    """Leaves the person's token for the console and returns the one-time ticket for the link."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # a folder that existed open to others is closed: nobody else lists or swaps tickets
    _prune(folder)
    ticket_id = secrets.token_urlsafe(24)
    token = issuer.mint(name, roles, groups, ttl=session_ttl)
    descriptor = os.open(folder / f"{ticket_id}.jwt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token)
    return issuer.mint_console_ticket(name, ticket_id)


def _prune(folder: Path) -> None:
    """Tokens whose tickets have expired unused are deleted: nobody can redeem them any more."""
    cutoff = time.time() - 2 * CONSOLE_TICKET_TTL.total_seconds()
    for stale in folder.glob("*.jwt"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except FileNotFoundError:
            continue


@dataclass(frozen=True)
class Redeemed:
    name: str
    token: str


def redeem(folder: Path, verifier: TokenVerifier, ticket: str) -> Redeemed:
    """The token a valid, unused ticket stands for; Unauthenticated for anything else (forged, expired,
    not a ticket, used before)."""
    claims = verifier.verified_claims(ticket)
    ticket_id = str(claims.get("jti", ""))
    if claims.get("console_ticket") is not True or not _TICKET_ID.fullmatch(ticket_id):
        raise Unauthenticated("this is not a console sign-in ticket")
    waiting = folder / f"{ticket_id}.jwt"
    taken = folder / f"{ticket_id}.{secrets.token_hex(8)}.taken"
    try:
        waiting.rename(taken)  # atomic: of two requests with one ticket, only one gets the token
    except FileNotFoundError as error:
        raise Unauthenticated("this sign-in link has been used already (or was never issued here)") from error
    try:
        token = taken.read_text().strip()
    finally:
        taken.unlink()
    return Redeemed(name=str(claims.get("sub", "")), token=token)
