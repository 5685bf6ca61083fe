"""Renders the official NATS Helm chart into cluster/nats.yaml and single/nats.yaml (committed).

    .venv/bin/python deploy/kubernetes/nats/render.py --chart PATH/TO/nats-io/k8s/helm/charts/nats

PATH is the chart at CHART_VERSION (a checkout of github.com/nats-io/k8s at tag nats-CHART_VERSION, or
`helm pull nats --repo https://nats-io.github.io/k8s/helm/charts/ --version CHART_VERSION --untar`). It
renders with a `helm` binary on PATH, else with the helm-python-sdk wheel (Helm's own library), from
values.yaml (+ values-single.yaml for one server) and the users of
services/consultflow/platform/nats_access.py, then writes the objects in the plain block YAML that
tests/support/manifests.py reads. tests/deploy checks the rendered files against the code's users.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from consultflow.platform.nats_access import permissions, users

CHART_VERSION = "2.14.2"
CHART_REPOSITORY = "https://nats-io.github.io/k8s/helm/charts/"
HERE = Path(__file__).resolve().parent
TOPOLOGIES = {"cluster": ("values.yaml",), "single": ("values.yaml", "values-single.yaml")}
HEADER = """\
# Rendered from the official NATS Helm chart `nats` {version} ({repository}; source
# https://github.com/nats-io/k8s, Apache License 2.0, Copyright The NATS Authors) by render.py with
# {values} and the users of services/consultflow/platform/nats_access.py. Do not edit: change the values
# and render again (render.py says how).
"""


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge key by key, anything else is replaced."""
    result = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def authorization() -> dict[str, Any]:
    """The chart's `config.merge.authorization`: every user, its password variable and its subjects."""
    return {
        "users": [
            {
                "user": user,
                "password": f"<< ${user.upper()}_PASSWORD >>",
                "permissions": {
                    "publish": {"allow": list(permissions(user).publish)},
                    "subscribe": {"allow": list(permissions(user).subscribe)},
                },
            }
            for user in users()
        ]
    }


def values(topology: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in TOPOLOGIES[topology]:
        result = merged(result, yaml.safe_load((HERE / name).read_text()))
    result["config"]["merge"]["authorization"] = authorization()
    return result


def helm_template(chart: Path, chart_values: dict[str, Any]) -> str:
    helm = shutil.which("helm")
    if helm:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            yaml.safe_dump(chart_values, file)
            file.flush()
            command = [helm, "template", "nats", str(chart), "--namespace", "consultflow", "-f", file.name]
            return subprocess.run(command, check=True, capture_output=True, text=True).stdout
    import helm_python

    config = helm_python.Config(namespace="consultflow", storage_driver="memory")
    release = config.install(str(chart), "nats", chart_values, dry_run="client", namespace="consultflow")
    return str(release["manifest"])


# --- The plain block YAML of tests/support/manifests.py ----------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_/$][A-Za-z0-9_./$()-]*")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            lines += _entry(f"{pad}{_scalar(key)}:", item, indent)
    else:
        for item in value:
            if isinstance(item, dict) and item:
                inner = _block(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines += _entry(f"{pad}-", item, indent)
    return lines


def _entry(head: str, item: Any, indent: int) -> list[str]:
    if isinstance(item, dict | list) and item:
        return [head, *_block(item, indent + 2)]
    if isinstance(item, dict | list):
        return [f"{head} {'{}' if isinstance(item, dict) else '[]'}"]
    if isinstance(item, str) and "\n" in item:
        body = item[:-1] if item.endswith("\n") else item
        pad = " " * (indent + 2)
        return [
            f"{head} {'|' if item.endswith(chr(10)) else '|-'}",
            *(pad + line if line else "" for line in body.split("\n")),
        ]
    return [f"{head} {_scalar(item)}"]


def plain_yaml(documents: list[dict[str, Any]]) -> str:
    return "---\n".join("\n".join(_block(document, 0)) + "\n" for document in documents)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chart", type=Path, required=True, help=f"the chart `nats` {CHART_VERSION}")
    args = parser.parse_args(argv)
    found = yaml.safe_load((args.chart / "Chart.yaml").read_text())["version"]
    if found != CHART_VERSION:
        print(f"{args.chart} is chart version {found}, not {CHART_VERSION}", file=sys.stderr)
        return 2
    for topology, value_files in TOPOLOGIES.items():
        documents = [d for d in yaml.safe_load_all(helm_template(args.chart, values(topology))) if d]
        header = HEADER.format(
            version=CHART_VERSION, repository=CHART_REPOSITORY, values=" + ".join(value_files)
        )
        (HERE / topology).mkdir(exist_ok=True)
        (HERE / topology / "nats.yaml").write_text(header + plain_yaml(documents))
        print(f"wrote {topology}/nats.yaml ({len(documents)} objects)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
