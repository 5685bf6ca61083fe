"""The tests' own local identity (a CA, a token issuer) and channels that carry a person's token.

Tests of domain behaviour call as `root` (role admin); tests of who may do what call as the firm's
sample people (services/consultflow/cli/people.toml) or with explicit roles."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable
from pathlib import Path

import grpc

from consultflow.platform.identity import Caller
from consultflow.platform.local_identity import LocalIdentity
from consultflow.platform.security import secure_aio_channel, secure_channel


@functools.cache
def local_identity() -> LocalIdentity:
    return LocalIdentity(Path(tempfile.mkdtemp(prefix="consultflow-identity-")))


def token(
    as_: str = "root", roles: Iterable[str] | None = None, groups: Iterable[str] = (), engagement: str = ""
) -> str:
    identity = local_identity()
    if roles is None:
        return identity.token_of(as_)
    return identity.token(as_, roles, groups, engagement)


def signed_channel(address: str, as_: str = "root", **claims: object) -> grpc.Channel:
    """A blocking TLS channel to `address`, every call signed in as `as_`."""
    return secure_channel(address, local_identity().ca, token(as_, **claims))  # type: ignore[arg-type]


def signed_aio_channel(address: str, as_: str = "root") -> grpc.aio.Channel:
    return secure_aio_channel(address, local_identity().ca, token(as_))


def anonymous_channel(address: str) -> grpc.Channel:
    """TLS without any token: what a caller who has no credentials gets."""
    return secure_channel(address, local_identity().ca)


def person(name: str, *groups: str) -> Caller:
    """One of the firm's staff, in `groups`, as the orchestrator's use cases see a caller."""
    return Caller(name, roles=frozenset({"staff"}), groups=frozenset(groups))


TESTER = Caller("tester", roles=frozenset({"admin"}))
"""The caller of in-process tests that drive a process without testing who may (an admin)."""
