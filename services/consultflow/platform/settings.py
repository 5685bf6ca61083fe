"""Settings from environment variables: the one place that names and documents them.

`docs/configuration.md` is generated from `SETTINGS` (`python -m consultflow.platform.settings`), and a
test fails when the two disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from consultflow.platform.limits import Limits
from consultflow.platform.logging import DEFAULT_REDACT_FIELDS
from consultflow.platform.messaging import NatsCredentials
from consultflow.platform.security import SecurityNotConfigured, SecuritySettings


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default and what it does."""

    name: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("CONSULTFLOW_DATA_DIR", ".consultflow", "Folder for SQLite files, the NATS store and run files."),
    Setting(
        "CONSULTFLOW_DATABASE_URL",
        "",
        "SQLAlchemy URL of this component's database. Empty: `sqlite:///<data dir>/<component>.db`. "
        "`CONSULTFLOW_<COMPONENT>_DATABASE_URL` (e.g. `CONSULTFLOW_CRM_DATABASE_URL`) overrides it per "
        "component. PostgreSQL: `postgresql+psycopg://user@host/db`; several components may share one "
        "database with a schema each (`?options=-csearch_path%3Dcrm`).",
    ),
    Setting(
        "CONSULTFLOW_DATABASE_URL_FILE",
        "",
        "A file holding the database URL (a mounted Secret, so the password is in no environment "
        "variable), read at start when neither database URL variable is set.",
    ),
    Setting("CONSULTFLOW_NATS_URL", "nats://127.0.0.1:4222", "NATS server(s), comma separated."),
    Setting(
        "CONSULTFLOW_NATS_USER",
        "",
        "This component's NATS user (its name; the server grants it only its own subjects, "
        "docs/security.md). Empty: connect without credentials, which only an open server (tests) accepts; "
        "refused when `CONSULTFLOW_PRODUCTION` is on.",
    ),
    Setting(
        "CONSULTFLOW_NATS_PASSWORD_FILE",
        "",
        "File holding the NATS user's password (a mounted Secret on Kubernetes; `consultflow up` writes "
        "`<data dir>/identity/nats/<user>.password`).",
    ),
    Setting(
        "CONSULTFLOW_NATS_CA_FILE",
        "",
        "CA certificate the NATS server's certificate must chain to; set: connect over TLS only "
        "(`consultflow up` sets its local CA). Empty: plaintext.",
    ),
    Setting(
        "CONSULTFLOW_GRPC_ADDRESS",
        "127.0.0.1:0",
        "Where this component's gRPC server listens (`host:port`; port 0 picks a free one).",
    ),
    Setting(
        "CONSULTFLOW_<COMPONENT>_ADDRESS",
        "",
        "Where another component listens, e.g. `CONSULTFLOW_ORCHESTRATOR_ADDRESS=127.0.0.1:50051`, "
        "`CONSULTFLOW_CRM_ADDRESS`; several replicas as a comma-separated list of IPv4 `host:port` "
        "(called round robin, skipping dead ones).",
    ),
    Setting(
        "CONSULTFLOW_MIGRATE_AT_START",
        "true",
        "Upgrade the component's schema when it starts. Production turns this off and runs "
        "`python -m consultflow.platform.migrate COMPONENT` once per release instead (deploy/README.md).",
    ),
    Setting(
        "CONSULTFLOW_NATS_STREAM_REPLICAS",
        "1",
        "Replicas of the JOBS and STATUS streams: 1 for one NATS server, 3 for a three-server cluster.",
    ),
    Setting("CONSULTFLOW_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR."),
    Setting("CONSULTFLOW_LOG_FORMAT", "json", "`json` (one object per line) or `text`."),
    Setting(
        "CONSULTFLOW_LOG_REDACT_FIELDS",
        ",".join(DEFAULT_REDACT_FIELDS),
        "Comma-separated parts of variable names whose values are logged as `[redacted]` (variables are "
        "logged at DEBUG only; e-mail addresses and phone numbers are masked in every log line).",
    ),
    Setting(
        "CONSULTFLOW_BPMN_DIR",
        "",
        "Diagrams the orchestrator deploys at start and the decision tables services read. "
        "Empty: the repository's `bpmn/`.",
    ),
    Setting(
        "CONSULTFLOW_DEPLOY_AT_START",
        "new",
        "Orchestrator only: what it deploys from CONSULTFLOW_BPMN_DIR at start. `new`: only processes never "
        "deployed, so a deploy made from the console is never undone by a restart (a latest version that "
        "differs from the folder is logged and shown as differing from the repository); `changed`: also "
        "every process whose files changed (a release that ships its diagrams, flows that edit bpmn/); "
        "`off`: nothing, a release step deploys (Kubernetes: the Job deploy-diagrams), so a rolling "
        "update never makes an older pod's diagrams the latest version.",
    ),
    Setting(
        "CONSULTFLOW_TIME_SCALE",
        "1",
        "Orchestrator only: multiplies every timer duration and cycle (0.001 turns a day into 86 s). "
        "For demos and tests; diagrams stay as analysts wrote them.",
    ),
    Setting(
        "CONSULTFLOW_JOB_TIMEOUT_SECONDS", "60", "How long a worker may hold a job before it is redelivered."
    ),
    Setting(
        "CONSULTFLOW_TIMER_OVERRIDES",
        "",
        "Orchestrator only: a TOML file whose `[timers]` table gives chosen timers (by element id) another "
        'duration or cycle, e.g. `maintenance_period = "PT30S"` for a demo; they win over the time scale.',
    ),
    Setting("CONSULTFLOW_WORKER_CONCURRENCY", "8", "Jobs a worker process handles at once."),
    Setting(
        "CONSULTFLOW_PROCESSED_JOBS_TTL_HOURS",
        "168",
        "Services: how long the record of a job carried out is kept (it makes a redelivered job answer "
        "with the first result instead of acting again); older ones are deleted in batches, 0 keeps "
        "them forever. Keep it far longer than any redelivery: a job's hold (`max_job_hold_seconds`), "
        "ten job deadlines, and the longest outage of a service whose queued jobs you would still run.",
    ),
    Setting("CONSULTFLOW_DB_THREADS", "4", "Threads that run blocking database work (gRPC handlers, jobs)."),
    Setting(
        "CONSULTFLOW_INSTANCE_CACHE_SIZE",
        "1000",
        "Orchestrator only: live workflow objects kept in memory (least recently used are dropped).",
    ),
    Setting(
        "CONSULTFLOW_CLAIM_PARTITIONS",
        "16",
        "Partitions of background work (timers, overdue jobs, buffered messages, outbox rows) that the "
        "replicas of a component share by lease, each owning about partitions/replicas "
        "(docs/scale-out.md). More replicas than partitions leave the extra ones idle in the background.",
    ),
    Setting(
        "CONSULTFLOW_CLAIM_LEASE_SECONDS",
        "6",
        "How long a partition lease lasts unless renewed (renewed every third of it): a replica that "
        "dies without releasing hands its partitions over within about this time.",
    ),
    Setting(
        "CONSULTFLOW_CLAIM_SHARED_SQLITE",
        "false",
        "Allow a second replica on one SQLite database (development and tests). Off: a replica refuses "
        "to start while another live one renews leases on its SQLite file; scale out on PostgreSQL.",
    ),
    Setting(
        "CONSULTFLOW_TLS_DIR",
        "",
        "Required. Folder with `tls.crt`, `tls.key` and `ca.crt` of this component's gRPC listener (the "
        "shape of a Kubernetes TLS Secret); a renewed certificate is picked up without a restart. "
        "`consultflow up` makes a local CA.",
    ),
    Setting(
        "CONSULTFLOW_CA_FILE",
        "",
        "CA to trust when calling other components. Empty: `ca.crt` of the TLS dir.",
    ),
    Setting(
        "CONSULTFLOW_OIDC_ISSUER",
        "",
        "Required. The token issuer every caller's bearer token must come from (`iss`). `consultflow up` "
        "runs a local issuer, `consultflow-local`, which production settings refuse.",
    ),
    Setting("CONSULTFLOW_OIDC_AUDIENCE", "consultflow", "The audience (`aud`) tokens must be issued for."),
    Setting(
        "CONSULTFLOW_OIDC_JWKS_URL",
        "",
        "Where the issuer publishes its keys (JWKS): `https://…` or `file://…`. Fetched again when a token "
        "names an unknown key (rotation).",
    ),
    Setting(
        "CONSULTFLOW_OIDC_ALGORITHMS",
        "RS256,ES256",
        "Token algorithms accepted; asymmetric ones only (HS* and `none` are refused at start).",
    ),
    Setting(
        "CONSULTFLOW_OIDC_NAME_CLAIM",
        "preferred_username",
        "Claim holding the person's name; a dotted path reaches into nested claims. Also "
        "`CONSULTFLOW_OIDC_ROLES_CLAIM` (`roles`, e.g. `realm_access.roles` for Keycloak), "
        "`CONSULTFLOW_OIDC_GROUPS_CLAIM` (`groups`) and `CONSULTFLOW_OIDC_ENGAGEMENT_CLAIM` (`engagement`).",
    ),
    Setting(
        "CONSULTFLOW_PRODUCTION",
        "false",
        "Production safeguards: the local token issuer is refused.",
    ),
    Setting(
        "CONSULTFLOW_COMPONENT_ISSUER",
        "",
        "Kubernetes: the cluster's service-account token issuer (e.g. `https://kubernetes.default.svc."
        "cluster.local`), trusted for components' own tokens beside the people's issuer; a token from it "
        "names the component by its service account. Its keys: `CONSULTFLOW_COMPONENT_JWKS_URL`.",
    ),
    Setting(
        "CONSULTFLOW_COMPONENT_JWKS_URL",
        "",
        "Where the cluster publishes its service-account signing keys (the API server's /openid/v1/jwks).",
    ),
    Setting(
        "CONSULTFLOW_COMPONENT_JWKS_CA",
        "",
        "The CA that signs the API server's certificate, for fetching those keys (`kube-root-ca.crt`).",
    ),
    Setting(
        "CONSULTFLOW_TOKEN_FILE",
        "",
        "This component's own bearer token for calls to other components, re-read when it changes "
        "(a Kubernetes projected service-account token; minted by `consultflow up` locally). The CLI "
        "sends it when `$CONSULTFLOW_TOKEN` is empty (the Kubernetes release Job's analyst token).",
    ),
    Setting(
        "CONSULTFLOW_HEALTH_ADDRESS",
        "",
        "A plaintext listener serving only `grpc.health.v1`, for kubelet gRPC probes (they cannot speak "
        "TLS). Empty: none.",
    ),
    Setting(
        "CONSULTFLOW_METRICS_PORT",
        "0",
        "Port of this component's Prometheus `/metrics` listener (plain HTTP; docs/operations.md lists the "
        'metrics). 0: off. `consultflow up` gives each component one (`endpoints.json`, `"metrics"`).',
    ),
    Setting(
        "CONSULTFLOW_METRICS_ADDRESS",
        "127.0.0.1",
        "Interface the metrics listener binds (`0.0.0.0` in a pod, for Prometheus to scrape).",
    ),
    Setting(
        "CONSULTFLOW_OTLP_ENDPOINT",
        "",
        "OpenTelemetry collector receiving this component's traces over OTLP/gRPC (e.g. "
        "`http://otel-collector:4317`). Empty: no export (trace ids still reach the logs and the messages).",
    ),
    Setting(
        "CONSULTFLOW_TRACE_FILE",
        "",
        "A file this component appends its finished spans to, one JSON object per line (local runs, the "
        "documentation's examples). Empty: none.",
    ),
    Setting(
        "CONSULTFLOW_OPERATION_OWNERS",
        "",
        "Outside job workers: `name=prefix|prefix,…` maps a caller's name to the operations whose jobs it "
        "may complete (e.g. `billing-worker=billing.`). The five services own `<service>.` already.",
    ),
    Setting(
        "CONSULTFLOW_LIMIT_<NAME>",
        "",
        "Orchestrator only: the limits that keep one diagram or instance from stopping the engine, e.g. "
        "`CONSULTFLOW_LIMIT_SCRIPT_CPU_MS=1000`; every name, default and what happens when it is hit is in "
        "docs/limits.md (`services/consultflow/platform/limits.py`).",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_LISTEN",
        "127.0.0.1:8080",
        "Console only: where its HTTP server listens (`host:port`). Plain HTTP: TLS ends at the Ingress "
        "(docs/console.md).",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_PUBLIC_URL",
        "",
        "Console only: the URL people open (e.g. `https://console.example.com`); the OIDC redirect URI is "
        "`<it>/callback`. An `https://` URL makes the session cookie `Secure`. Empty: `http://<listen>`; "
        "refused when `CONSULTFLOW_PRODUCTION` is on and the URL is not https.",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_SESSION_HOURS",
        "8",
        "Console only: how long a sign-in lasts (never longer than the person's token).",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_MAX_SESSIONS",
        "10000",
        "Console only: sessions kept in memory; the oldest is dropped when full (sessions live in one "
        "process: several replicas need sticky sessions, docs/console.md).",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_TICKET_DIR",
        "",
        "Console only: the folder where `consultflow console` leaves the token a one-time sign-in link "
        "stands for (local systems; `consultflow up` sets it). Empty: sign-in links are refused.",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_OIDC_CLIENT_ID",
        "",
        "Console only: its OIDC client id at `CONSULTFLOW_OIDC_ISSUER` (authorization-code flow with "
        "PKCE). Empty: `/login` is off. The secret: `CONSULTFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE`.",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE",
        "",
        "Console only: file holding the OIDC client secret (a mounted Secret). Empty: a public client "
        "(PKCE only).",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_OIDC_SCOPES",
        "openid profile",
        "Console only: the scopes it asks the OIDC provider for.",
    ),
    Setting(
        "CONSULTFLOW_CONSOLE_OIDC_CA",
        "",
        "Console only: the CA of the OIDC provider's HTTPS server, when not a public one.",
    ),
)


def setting(name: str) -> str:
    """A setting's value from the environment, or its default (`SETTINGS` must list it)."""
    return _env(name)


def _env(name: str) -> str:
    default = next(s.default for s in SETTINGS if s.name == name)
    return os.environ.get(name, default)


def _read_file(path: str) -> str:
    """The stripped contents of `path`; empty when no path is given."""
    return Path(path).read_text(encoding="utf-8").strip() if path else ""


def _security() -> SecuritySettings | None:
    try:
        return SecuritySettings.from_env()
    except SecurityNotConfigured:
        return None


def _nats_credentials() -> NatsCredentials | None:
    user = _env("CONSULTFLOW_NATS_USER")
    password_file = _env("CONSULTFLOW_NATS_PASSWORD_FILE")
    ca = _env("CONSULTFLOW_NATS_CA_FILE")
    if user and password_file:
        return NatsCredentials.from_file(user, Path(password_file), Path(ca) if ca else None)
    if user or password_file:
        raise RuntimeError("CONSULTFLOW_NATS_USER and CONSULTFLOW_NATS_PASSWORD_FILE go together")
    if _env("CONSULTFLOW_PRODUCTION").strip().lower() in ("1", "true", "yes"):
        raise RuntimeError("CONSULTFLOW_PRODUCTION is on: NATS credentials are required")
    return None


def repository_root() -> Path:
    """The checkout this package runs from (services/consultflow/platform/ is three levels down)."""
    return Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Settings:
    """What one component reads from its environment at start."""

    component: str
    data_dir: Path
    database_url: str
    nats_url: str
    nats_credentials: NatsCredentials | None
    grpc_address: str
    migrate_at_start: bool
    stream_replicas: int
    log_level: str
    log_format: str
    bpmn_dir: Path
    time_scale: float
    timer_overrides: str
    job_timeout_seconds: float
    worker_concurrency: int
    db_threads: int
    instance_cache_size: int
    limits: Limits
    security: SecuritySettings | None = None  # None: not configured, and the component refuses to start
    log_redact_fields: tuple[str, ...] = DEFAULT_REDACT_FIELDS
    deploy_at_start: str = "new"  # orchestrator: "new", "changed" or "off" (CONSULTFLOW_DEPLOY_AT_START)
    processed_jobs_ttl_hours: float = 168.0  # services: 0 keeps processed_jobs forever
    claim_partitions: int = 16
    claim_lease_seconds: float = 6.0
    claim_shared_sqlite: bool = False

    @classmethod
    def from_env(cls, component: str) -> Settings:
        data_dir = Path(_env("CONSULTFLOW_DATA_DIR"))
        database_url = (
            os.environ.get(f"CONSULTFLOW_{component.upper()}_DATABASE_URL")
            or _env("CONSULTFLOW_DATABASE_URL")
            or _read_file(_env("CONSULTFLOW_DATABASE_URL_FILE"))
            or f"sqlite:///{data_dir / (component + '.db')}"
        )
        bpmn_dir = _env("CONSULTFLOW_BPMN_DIR")
        return cls(
            component=component,
            data_dir=data_dir,
            database_url=database_url,
            nats_url=_env("CONSULTFLOW_NATS_URL"),
            nats_credentials=_nats_credentials(),
            grpc_address=_env("CONSULTFLOW_GRPC_ADDRESS"),
            migrate_at_start=_env("CONSULTFLOW_MIGRATE_AT_START").strip().lower() in ("1", "true", "yes"),
            stream_replicas=int(_env("CONSULTFLOW_NATS_STREAM_REPLICAS")),
            log_level=_env("CONSULTFLOW_LOG_LEVEL").upper(),
            log_format=_env("CONSULTFLOW_LOG_FORMAT"),
            bpmn_dir=Path(bpmn_dir) if bpmn_dir else repository_root() / "bpmn",
            time_scale=float(_env("CONSULTFLOW_TIME_SCALE")),
            timer_overrides=_env("CONSULTFLOW_TIMER_OVERRIDES"),
            job_timeout_seconds=float(_env("CONSULTFLOW_JOB_TIMEOUT_SECONDS")),
            worker_concurrency=int(_env("CONSULTFLOW_WORKER_CONCURRENCY")),
            db_threads=int(_env("CONSULTFLOW_DB_THREADS")),
            instance_cache_size=int(_env("CONSULTFLOW_INSTANCE_CACHE_SIZE")),
            limits=Limits.from_env(),
            security=_security(),
            log_redact_fields=tuple(
                f.strip() for f in _env("CONSULTFLOW_LOG_REDACT_FIELDS").split(",") if f.strip()
            ),
            deploy_at_start=_env("CONSULTFLOW_DEPLOY_AT_START").strip().lower(),
            processed_jobs_ttl_hours=float(_env("CONSULTFLOW_PROCESSED_JOBS_TTL_HOURS")),
            claim_partitions=int(_env("CONSULTFLOW_CLAIM_PARTITIONS")),
            claim_lease_seconds=float(_env("CONSULTFLOW_CLAIM_LEASE_SECONDS")),
            claim_shared_sqlite=_env("CONSULTFLOW_CLAIM_SHARED_SQLITE").strip().lower()
            in ("1", "true", "yes"),
        )

    def address_of(self, component: str) -> str:
        """Where another component listens; raises if the environment does not say."""
        address = os.environ.get(f"CONSULTFLOW_{component.upper()}_ADDRESS", "")
        if not address:
            raise RuntimeError(f"CONSULTFLOW_{component.upper()}_ADDRESS is not set")
        return address


def configuration_markdown() -> str:
    """The body of docs/configuration.md."""
    lines = [
        "# Configuration",
        "",
        "Every consultflow process reads these environment variables at start (generated from",
        "`services/consultflow/platform/settings.py`; regenerate with",
        "`python -m consultflow.platform.settings > docs/configuration.md`).",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(configuration_markdown(), end="")
