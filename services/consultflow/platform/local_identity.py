"""The identity of a system running on one machine: a throwaway CA, one listener certificate for every
component, a local token issuer, and a token per component — what `consultflow up`, the demo and the tests
use instead of cert-manager and an OIDC provider.

Everything lives under `<data dir>/identity/`; the CA and the issuer key are kept between runs (a token
minted yesterday still verifies), the listener certificate and the component tokens are renewed at
every start.
"""

from __future__ import annotations

import json
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from consultflow import CONSOLE
from consultflow.platform import files
from consultflow.platform.identity import LocalIssuer
from consultflow.platform.messaging import NatsCredentials
from consultflow.platform.nats_access import authorization_block, users
from consultflow.platform.security import SecuritySettings
from consultflow.platform.tls import LocalAuthority, TlsFiles

COMPONENT_TOKEN_TTL = timedelta(days=7)
PEOPLE_FILE = Path(__file__).resolve().parents[1] / "cli" / "people.toml"


@dataclass(frozen=True)
class Person:
    """Somebody the local system knows: roles say what they may call, groups which tasks are theirs."""

    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()


def people(path: Path = PEOPLE_FILE) -> dict[str, Person]:
    """The firm's sample people (cli/people.toml), by name."""
    table = tomllib.loads(path.read_text())["people"]
    return {
        name: Person(name, tuple(entry.get("roles", ())), tuple(entry.get("groups", ())))
        for name, entry in table.items()
    }


@dataclass
class LocalIdentity:
    folder: Path
    authority: LocalAuthority = field(init=False)
    issuer: LocalIssuer = field(init=False)
    tls: TlsFiles = field(init=False)

    def __post_init__(self) -> None:
        self.folder = self.folder.resolve()
        self.authority = LocalAuthority(self.folder / "ca")
        self.issuer = LocalIssuer(self.folder / "issuer")
        self.tls = self.authority.issue(self.folder / "tls", "consultflow")

    @classmethod
    def existing(cls, folder: Path) -> LocalIdentity:
        """The identity `consultflow up` made, for the CLI; an error when there is none."""
        if not (folder / "issuer" / "issuer-key.pem").exists():
            raise FileNotFoundError(f"no local identity under {folder}: is `consultflow up` running?")
        identity = cls.__new__(cls)
        identity.folder = folder.resolve()
        identity.authority = LocalAuthority(identity.folder / "ca")
        identity.issuer = LocalIssuer(identity.folder / "issuer")
        identity.tls = TlsFiles.in_folder(identity.folder / "tls")
        return identity

    @property
    def ca(self) -> Path:
        return self.tls.ca

    def token(
        self,
        name: str,
        roles: Iterable[str],
        groups: Iterable[str] = (),
        engagement: str = "",
        ttl: timedelta = timedelta(hours=8),
    ) -> str:
        return self.issuer.mint(name, roles, groups, engagement, ttl)

    def token_of(self, person: str, ttl: timedelta = timedelta(hours=8)) -> str:
        """A token for one of the sample people of cli/people.toml."""
        known = people()
        if person not in known:
            raise ValueError(f"{person!r} is not in {PEOPLE_FILE.name}; give --roles (and --groups) instead")
        entry = known[person]
        return self.token(entry.name, entry.roles, entry.groups, ttl=ttl)

    def component_token_file(self, component: str) -> Path:
        """Mints the component's token (role `component`, its name) into a file only it reads."""
        folder = self.folder / "tokens"
        folder.mkdir(exist_ok=True)
        path = folder / f"{component}.jwt"
        # a replica already running re-reads the file when it changes: it must find a whole token
        files.replace_file(path, self.token(component, ["component"], ttl=COMPONENT_TOKEN_TTL).encode())
        return path

    def environment(self, component: str) -> dict[str, str]:
        """The CONSULTFLOW_* security settings of one component process. The console gets no token of its
        own: it calls the components only as the person signed in."""
        env = {
            "CONSULTFLOW_TLS_DIR": str(self.tls.certificate.parent),
            "CONSULTFLOW_OIDC_ISSUER": self.issuer.issuer,
            "CONSULTFLOW_OIDC_AUDIENCE": self.issuer.audience,
            "CONSULTFLOW_OIDC_JWKS_URL": self.issuer.jwks_url,
            "CONSULTFLOW_OIDC_ALGORITHMS": "ES256",
        }
        if component != CONSOLE:
            env["CONSULTFLOW_TOKEN_FILE"] = str(self.component_token_file(component))
        return env

    def settings(self, component: str, operation_owners: Mapping[str, str] | None = None) -> SecuritySettings:
        """The same settings for a component run in-process (tests)."""
        env = self.environment(component)
        if operation_owners:
            env["CONSULTFLOW_OPERATION_OWNERS"] = ",".join(f"{k}={v}" for k, v in operation_owners.items())
        return SecuritySettings.from_env(env)


@dataclass(frozen=True)
class LocalNatsUsers:
    """Every NATS user of a local system with a fresh password, in `<data dir>/identity/nats/`.

    Kept beside the system's data rather than in a shared identity folder, because the passwords belong
    to the one nats-server that system runs (tests run several systems with one CA and issuer)."""

    folder: Path
    tls: TlsFiles | None = None  # the server's certificate: clients then connect over TLS only

    def password_file(self, user: str) -> Path:
        return self.folder / f"{user}.password"

    @property
    def config(self) -> Path:
        """The server's users (and certificate) as the last `write()` left them."""
        return self.folder / "security.conf"

    def write(self) -> Path:
        """New passwords (one owner-only file each) and the server's `security.conf` (its users, and its
        certificate when `tls` is set); returns that file."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        passwords = {}
        for user in users():
            passwords[user] = secrets.token_urlsafe(32)
            files.replace_file(self.password_file(user), passwords[user].encode())
        block = self.config
        tls = ""
        if self.tls is not None:
            tls = (
                f"tls {{\n  cert_file: {json.dumps(str(self.tls.certificate))}\n"
                f"  key_file: {json.dumps(str(self.tls.key))}\n  timeout: 2\n  handshake_first: true\n}}\n"
            )
        files.replace_file(block, (tls + authorization_block(passwords)).encode())
        return block

    def credentials(self, user: str) -> NatsCredentials:
        return NatsCredentials.from_file(user, self.password_file(user), self.tls.ca if self.tls else None)

    def environment(self, user: str) -> dict[str, str]:
        """CONSULTFLOW_NATS_USER, _PASSWORD_FILE (and _CA_FILE with TLS) for one component process."""
        env = {
            "CONSULTFLOW_NATS_USER": user,
            "CONSULTFLOW_NATS_PASSWORD_FILE": str(self.password_file(user)),
        }
        if self.tls is not None:
            env["CONSULTFLOW_NATS_CA_FILE"] = str(self.tls.ca)
        return env
