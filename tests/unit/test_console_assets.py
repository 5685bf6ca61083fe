"""The console's built front end (services/consultflow/console/static) matches its sources, so `make up`
serves it without Node.js. The bundle records a hash of its inputs in static/inputs.sha256; recomputing it
here tells a stale bundle from a fresh one without building (the bytes of a bundle are not compared).

The algorithm is the one console/build.mjs documents (keep both in step): the inputs are
package-lock.json, console/index.html, console/build.mjs and every file under console/src; their paths
relative to the repository root with "/" separators, sorted by their UTF-8 bytes; SHA-256 over, for each
path in that order, path + NUL + the decimal byte length of its content + NUL + the content."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from tests.support.catalogue import ROOT

STATIC = ROOT / "services" / "consultflow" / "console" / "static"
REBUILD = "run `make console-assets` (needs Node.js and `npm ci`) and commit its output"


def input_paths() -> list[str]:
    """The build's inputs as repository-relative POSIX paths, in the hash's order."""
    paths = ["package-lock.json", "console/index.html", "console/build.mjs"]
    paths += [p.relative_to(ROOT).as_posix() for p in (ROOT / "console" / "src").rglob("*") if p.is_file()]
    return sorted(paths, key=lambda path: path.encode())


def inputs_hash() -> str:
    digest = hashlib.sha256()
    for path in input_paths():
        content = (ROOT / path).read_bytes()
        digest.update(f"{path}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def test_the_bundle_was_built_from_the_current_sources() -> None:
    recorded = STATIC / "inputs.sha256"
    assert recorded.is_file(), f"{recorded.relative_to(ROOT)} is missing: {REBUILD}"
    assert recorded.read_text().strip() == inputs_hash(), (
        f"the console's sources, build.mjs or package-lock.json changed since the bundle was built: {REBUILD}"
    )


def test_the_bundle_is_complete() -> None:
    missing = [name for name in ("index.html", "console.js", "console.css") if not (STATIC / name).is_file()]
    assert not missing, f"static/ lacks {missing}: {REBUILD}"


def test_no_source_maps_are_shipped() -> None:
    maps = sorted(p.name for p in STATIC.rglob("*.map")) if STATIC.is_dir() else []
    assert not maps, f"source maps must not ship with the console: {maps}"
    for script in STATIC.glob("*.js") if STATIC.is_dir() else []:
        assert "sourceMappingURL" not in script.read_text(encoding="utf-8"), f"{script.name} points at a map"


def test_the_licences_of_the_bundled_packages_ship_with_it() -> None:
    licences = STATIC / "LICENSES.txt"
    assert licences.is_file(), f"{licences.relative_to(ROOT)} is missing: {REBUILD}"
    text = licences.read_text(encoding="utf-8")
    assert "\nbpmn-js " in text, "LICENSES.txt does not name bpmn-js"
    # bpmn.io's licence asks to keep its watermark; the text that says so ships with the bundle
    assert "watermark" in text


def test_python_and_the_build_script_hash_alike() -> None:
    """The hash here and console/build.mjs's agree (else a fresh bundle would look stale, or worse)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the build script's own hash cannot be computed")
    if not (ROOT / "node_modules" / "esbuild" / "package.json").is_file():
        pytest.fail(f"node_modules lacks esbuild: run `npm ci` in {ROOT}")
    script = "import('./console/build.mjs').then((m) => console.log(m.inputsHash()))"
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == inputs_hash()
