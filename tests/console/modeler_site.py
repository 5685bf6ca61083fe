"""A page holding only the console's modeler (console/src/modeler, mounted by
console/test/modeler/harness.js), bundled with the repository's esbuild and served by a tiny static server
whose /api answers are canned: the definitions are the files of bpmn/, the operation catalogue a fixed sample.
It tests the modeler page and its properties panel in a real browser, not the console server or the
orchestrator (tests/e2e do)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from lxml import etree

from tests.bpmn.modeler_tools import node_and_modules
from tests.support.catalogue import BPMN_DIR, NS, ROOT

HARNESS = ROOT / "console" / "test" / "modeler"
EDITABLE = ROOT / "console" / "src" / "modeler" / "editable.json"

# A sample of the catalogue GET /api/operations serves (the real one comes from the five services).
CATALOGUE: dict[str, Any] = {
    "operations": [
        {
            "name": "crm.record_requirements",
            "service": "crm",
            "summary": "Store a new version of the preliminary requirements document",
            "inputs": [
                {"name": n, "type": "string", "required": n != "background"}
                for n in (
                    "engagement_id",
                    "inquiry_id",
                    "communication_mode",
                    "needs",
                    "background",
                    "goals",
                    "expected_results",
                )
            ],
            "outputs": [{"name": "requirements_version", "type": "integer"}],
            "errors": [{"code": "engagement_closed", "description": "the engagement has ended"}],
        },
        {
            "name": "crm.record_requirements_revision",
            "service": "crm",
            "summary": "The same inputs as record_requirements, a revision",
            "inputs": [
                {"name": n, "type": "string", "required": True}
                for n in (
                    "engagement_id",
                    "inquiry_id",
                    "communication_mode",
                    "needs",
                    "background",
                    "goals",
                    "expected_results",
                )
            ],
            "outputs": [],
            "errors": [],
        },
        {
            "name": "crm.note_contact",
            "service": "crm",
            "summary": "Record a contact with the client",
            "inputs": [
                {"name": "engagement_id", "type": "string", "required": True},
                {"name": "channel", "type": "string", "required": True, "values": ["phone", "email"]},
            ],
            "outputs": [],
            "errors": [],
        },
    ]
}


# The files of the processes a process calls, which GetDefinition returns after the process's own.
CALLED = {"engagement": ("intake.bpmn", "implementation.bpmn", "delivery_acceptance.bpmn", "follow_up.bpmn")}


def process_id(path: Path) -> str:
    root = etree.parse(str(path)).getroot()
    process = root.find("bpmn:process[@isExecutable='true']", NS)
    assert process is not None, path
    return str(process.get("id"))


REVISED = ("記錄需求文檔 Record the requirements", "形成初步需求文檔 Record the preliminary requirements")


def content(definition: dict[str, Any]) -> str:
    """A version's file: bpmn/'s for version 1; intake's version 2 renames one task."""
    text = (BPMN_DIR / str(definition["resource_name"])).read_text(encoding="utf-8")
    return text.replace(REVISED[1], REVISED[0]) if definition["version"] == 2 else text


def definitions() -> list[dict[str, Any]]:
    """GET /api/definitions as the console serves it: one version per file of bpmn/, and a version 2 of
    intake."""
    rows = []
    for path in sorted(BPMN_DIR.glob("*.bpmn")):
        pid = process_id(path)
        rows.append(
            {
                "definition_id": f"{pid}:1",
                "process_id": pid,
                "version": 1,
                "name": pid,
                "resource_name": path.name,
                "deployed_at": "2026-01-01T00:00:00Z",
                "deployed_by": "",
                "note": "",
                "differs_from_repository": pid == "intake",
            }
        )
        if pid == "intake":
            rows.append({**rows[-1], "definition_id": "intake:2", "version": 2, "note": "renamed a task"})
    return rows


@dataclass
class Site:
    """The served page's address and what the page POSTed."""

    url: str
    posted: list[tuple[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # what POST /api/deployments/validate finds


def _handler(site: Site, folder: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value: Any, status: int = 200) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            if path == "/api/operations":
                return self._json(CATALOGUE)
            if path == "/api/definitions":
                wanted = parse_qs(url.query).get("process_id", [""])[0]
                rows = [d for d in definitions() if not wanted or d["process_id"] == wanted]
                if parse_qs(url.query).get("latest_only") == ["true"]:
                    rows = [d for d in rows if d["definition_id"] != "intake:1"]
                return self._json({"definitions": rows})
            if path.startswith("/api/definitions/"):
                wanted_id = path.removeprefix("/api/definitions/")
                found = [d for d in definitions() if d["definition_id"] == wanted_id]
                if not found:
                    return self._json({"error": {"code": "NOT_FOUND", "message": wanted_id}}, 404)
                resources = [{"name": found[0]["resource_name"], "content": content(found[0])}]
                for called in CALLED.get(found[0]["process_id"], ()):
                    resources.append(
                        {"name": called, "content": (BPMN_DIR / called).read_text(encoding="utf-8")}
                    )
                for dmn in sorted(BPMN_DIR.glob("*.dmn")):
                    resources.append({"name": dmn.name, "content": dmn.read_text(encoding="utf-8")})
                return self._json({"definition": found[0], "resources": resources})
            name = "index.html" if path in ("/", "") else path.lstrip("/")
            file = folder / name
            if not file.is_file() or folder not in file.resolve().parents:
                return self._send(404, b"not found", "text/plain")
            kinds = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
            return self._send(200, file.read_bytes(), kinds.get(file.suffix, "application/octet-stream"))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            site.posted.append((self.path, body))
            if self.path == "/api/deployments/validate":
                return self._json({"problems": site.problems, "unchanged": []})
            if self.path == "/api/deployments":
                return self._json({"deployment_id": "d1", "definitions": [], "unchanged": []})
            return self._json({"error": {"code": "NOT_FOUND", "message": self.path}}, 404)

    return Handler


def build(folder: Path) -> Path:
    """Bundles the harness (and so the modeler) with the repository's esbuild into `folder`."""
    node, modules = node_and_modules()
    esbuild = modules / ".bin" / "esbuild"
    assert esbuild.exists(), f"{esbuild} missing: run `npm ci`"
    quiet = ["--log-level=warning"]
    loaders = [f"--loader:.{ext}=file" for ext in ("eot", "svg", "ttf", "woff", "woff2")]
    subprocess.run(
        [str(esbuild), str(HARNESS / "harness.js"), "--bundle", f"--outdir={folder}", *quiet, *loaders],
        check=True,
        cwd=ROOT,
        env={"PATH": str(Path(node).parent), "NODE_PATH": str(modules)},
    )
    shutil.copy(HARNESS / "index.html", folder / "index.html")
    return folder


@contextmanager
def serve(folder: Path) -> Iterator[Site]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    site = Site(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(site, folder.resolve())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
