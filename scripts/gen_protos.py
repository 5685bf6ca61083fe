"""Generates Python code for every proto under protos/ into a package tree (default services/).

`make protos` runs it in place; tests/unit/test_generated_code.py runs it into a temporary folder and
fails when the committed code differs. The codegen versions are pinned in pyproject.toml's dev extra.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> list[Path]:
    """Writes *_pb2.py, *_pb2.pyi, *_pb2_grpc.py (+ .pyi) and package __init__.py files under `out`."""
    files = sorted(PROTOS.rglob("*.proto"))
    include = str(resources.files("grpc_tools") / "_proto")
    plugins = Path(sys.executable).parent  # mypy-protobuf installs its plugins beside the interpreter
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(f) for f in files),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    api = out / "consultflow" / "api"
    for folder in [api, *(p for p in api.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from protos/ by scripts/gen_protos.py; do not edit."""\n')
    return sorted(p for p in api.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "services")
    out = parser.parse_args().out
    written = generate(out)
    print(f"generated {len(written)} files under {out / 'consultflow' / 'api'}", file=sys.stderr)


if __name__ == "__main__":
    main()
