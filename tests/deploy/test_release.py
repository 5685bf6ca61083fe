"""deploy/: what a production release runs is fixed and checked: images by digest, locked and hashed Python
dependencies, diagrams deployed once by a release step (never by whichever orchestrator starts), no secret
in an environment variable, and checkov clean with no skip annotation outside the dev overlay."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.main import main as cli_main
from consultflow.orchestrator.app import build
from tests.deploy.test_manifests import DEPLOY, KUBERNETES, KUSTOMIZATIONS, ROOT, container_of, rendered
from tests.support.bpmn_builder import bpmn
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import local_identity, signed_channel, token
from tests.support.manifests import containers, find, load_file, pod_templates

LOCK = ROOT / "requirements.lock"
CHECKOV = os.environ.get("CONSULTFLOW_CHECKOV") or shutil.which("checkov")
SKIP_ANNOTATION = re.compile(r"checkov\.io/skip")

# --- Checkov and its honest equivalents ----------------------------------------------------------------


def test_no_checkov_skip_annotation_outside_the_dev_overlay() -> None:
    """The base, migrations, diagrams and production pass every check as written; only dev may excuse
    itself (tags of a local build)."""
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        if path.is_relative_to(KUBERNETES / "overlays" / "dev"):
            continue
        assert not SKIP_ANNOTATION.search(path.read_text()), path.relative_to(KUBERNETES)
    for kustomization in KUSTOMIZATIONS:
        if kustomization == "overlays/dev":
            continue
        for obj in rendered(kustomization):
            annotations = obj["metadata"].get("annotations") or {}
            assert not [a for a in annotations if SKIP_ANNOTATION.match(a)], (kustomization, obj["kind"])


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_secret_reaches_a_container_through_its_environment(kustomization: str) -> None:
    """Secrets are mounted files (checkov CKV_K8S_35): the environment shows in /proc and crash dumps."""
    for container in containers(rendered(kustomization)):
        for env in container.get("env", []):
            assert "secretKeyRef" not in env.get("valueFrom", {}), (kustomization, env["name"])
        for source in container.get("envFrom", []):
            assert "secretRef" not in source, (kustomization, container["name"])


@pytest.mark.skipif(not CHECKOV, reason="checkov is not installed (deploy/README.md: `make checkov`)")
def test_checkov_passes_every_render_with_no_skips_outside_dev(tmp_path: Path) -> None:
    """checkov's Kubernetes checks on what each kustomization renders, in one run (about 15 s)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML (a dev dependency) writes the renders")
    for kustomization in KUSTOMIZATIONS:
        folder = tmp_path / kustomization.replace("/", "_")
        folder.mkdir()
        (folder / "rendered.yaml").write_text(yaml.safe_dump_all(rendered(kustomization), sort_keys=False))
    result = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    results = (report[0] if isinstance(report, list) else report)["results"]
    failed = [(c["file_path"], c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert not failed
    skipped = {(c["file_path"].split("/")[1], c["check_id"]) for c in results["skipped_checks"]}
    assert {folder for folder, _ in skipped} <= {"overlays_dev"}, skipped
    assert len(results["passed_checks"]) > 1000, "checkov found the manifests"


# --- Images and dependencies --------------------------------------------------------------------------


def test_the_lock_pins_every_runtime_dependency_with_hashes_and_nothing_of_the_dev_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=[A-Za-z])", LOCK.read_text()):
        head = entry.split(" \\", 1)[0].split(";", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        name, _, version = head.partition("==")
        assert version, f"{head}: every line pins one version"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{name} has no hash"
        pins[canonicalize_name(name)] = version
    for dependency in map(Requirement, project["dependencies"]):
        version = pins.get(canonicalize_name(dependency.name))
        assert version is not None, f"{dependency.name} is not locked: run `make lock`"
        assert dependency.specifier.contains(version, prereleases=True), (
            f"{dependency.name}=={version} is outside pyproject's {dependency.specifier}: run `make lock`"
        )
    dev = {canonicalize_name(Requirement(d).name) for d in project["optional-dependencies"]["dev"]}
    assert not dev & set(pins) - {canonicalize_name(Requirement(d).name) for d in project["dependencies"]}
    assert "setuptools" in pins, "the build backend, for the install with --no-build-isolation"


def test_the_image_installs_exactly_the_locked_files_then_the_project_without_dependencies() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    runs = re.findall(r"pip install ([^\n\\]*)", dockerfile)
    assert len(runs) == 2, runs
    locked, project = runs
    assert "--require-hashes" in locked and "-r requirements.lock" in locked
    assert "--no-deps" in project and "--no-index" in project and project.rstrip().endswith(".")
    assert dockerfile.index("COPY requirements.lock") < dockerfile.index("--require-hashes")


# --- Diagrams deployed by a release step ---------------------------------------------------------------

WORK = bpmn("work", '<startEvent id="s"/><endEvent id="e"/>', "s -> e")


def test_production_orchestrators_deploy_nothing_at_start_and_one_job_deploys_the_images_diagrams() -> None:
    config = find(rendered("overlays/production"), "ConfigMap", "consultflow-config")["data"]
    assert config["CONSULTFLOW_DEPLOY_AT_START"] == "off"
    objects = rendered("overlays/production/diagrams")
    container = container_of(objects, "Job", "deploy-diagrams")
    assert container["command"][:4] == ["python", "-m", "consultflow.cli.main", "deploy"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(rf"^COPY bpmn {re.escape(container['command'][4])}$", dockerfile, re.MULTILINE)
    env = {e["name"]: e for e in container["env"]}
    token_file = env["CONSULTFLOW_TOKEN_FILE"]["value"]
    mount = next(m for m in container["volumeMounts"] if token_file.startswith(m["mountPath"] + "/"))
    volumes = {
        v["name"]: v for v in find(objects, "Job", "deploy-diagrams")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes[mount["name"]]["secret"]["secretName"] == "consultflow-release-token"
    holders = [
        w["metadata"]["name"]
        for kustomization in KUSTOMIZATIONS
        for w, t in pod_templates(rendered(kustomization))
        if any(
            v.get("secret", {}).get("secretName") == "consultflow-release-token" for v in t["spec"]["volumes"]
        )
    ]
    assert set(holders) == {"deploy-diagrams"}, "only the release step holds the analyst token"


def deploy_job_argv(folder: Path) -> list[str]:
    """The release Job's command line with the image's diagram folder replaced by `folder`."""
    command = container_of(rendered("overlays/production/diagrams"), "Job", "deploy-diagrams")["command"]
    return [str(folder) if part == "/app/bpmn" else part for part in command[3:]]


def consultflow(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        cli_main(argv)
    return int(exited.value.code or 0), capsys.readouterr().out


def test_a_rolling_update_never_flips_the_latest_version(
    tmp_path: Path,
    nats_url: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """New pods start with `off`; the Job deploys the release's diagrams once (again: unchanged); an older
    pod that restarts afterwards, with other diagrams in its image, changes nothing."""
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    (new / "work.bpmn").write_bytes(WORK.replace(b'id="e"/>', b'id="e" name="done"/>'))
    (old / "work.bpmn").write_bytes(WORK)
    settings = component_settings("orchestrator", tmp_path, nats_url, database_url, deploy_at_start="off")
    orchestrator = ComponentThread(replace(settings, bpmn_dir=new), build).start()
    stub = pb_grpc.OrchestratorServiceStub(signed_channel(orchestrator.address))
    assert list(stub.ListDefinitions(pb.ListDefinitionsRequest()).definitions) == []

    (tmp_path / "release-token").write_text(token("release-pipeline", roles=["analyst"]) + "\n")
    monkeypatch.delenv("CONSULTFLOW_TOKEN", raising=False)
    monkeypatch.setenv("CONSULTFLOW_TOKEN_FILE", str(tmp_path / "release-token"))
    monkeypatch.setenv("CONSULTFLOW_ORCHESTRATOR_ADDRESS", orchestrator.address)
    monkeypatch.setenv("CONSULTFLOW_CA_FILE", str(local_identity().ca))
    code, printed = consultflow(capsys, deploy_job_argv(new))
    assert code == 0 and "deployed work:1" in printed
    code, printed = consultflow(capsys, deploy_job_argv(new))
    assert code == 0 and "unchanged work" in printed, "running the Job again deploys nothing new"

    orchestrator.stop()
    older = ComponentThread(replace(settings, bpmn_dir=old), build).start()
    stub = pb_grpc.OrchestratorServiceStub(signed_channel(older.address))
    definitions = stub.ListDefinitions(pb.ListDefinitionsRequest(process_id="work")).definitions
    assert [(d.version, d.deployed_by) for d in definitions] == [(1, "release-pipeline")]
    assert (
        stub.GetDefinition(pb.GetDefinitionRequest(definition_id="work:1")).resources[0].content
        == (new / "work.bpmn").read_bytes()
    )
    older.stop()


def test_the_release_steps_are_described_where_an_operator_looks() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for step in ("overlays/production/migrations", "overlays/production/diagrams", "make lock"):
        assert step in readme, step
    assert load_file(KUBERNETES / "diagrams" / "kustomization.yaml")[0]["resources"] == ["job.yaml"]
