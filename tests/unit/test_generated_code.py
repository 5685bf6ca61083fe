"""The committed code under services/consultflow/api is exactly what `make protos` generates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_protos"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_current(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)
    committed_root = ROOT / "services"
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in generated}
    committed = {
        p.relative_to(committed_root): p.read_bytes()
        for p in (committed_root / "consultflow" / "api").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(fresh) == sorted(committed), "files differ: run `make protos` and commit"
    stale = [str(path) for path, content in fresh.items() if committed[path] != content]
    assert not stale, f"regenerating changes {stale}: run `make protos` and commit"
