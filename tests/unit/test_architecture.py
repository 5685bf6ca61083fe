"""The shape a newcomer relies on: no import cycles, plain domain modules, short modules, typed servicers.

These read the source (and, for the domain, import it in a fresh interpreter), so a change that breaks
the template fails here with the module named, not in a review.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import consultflow

PACKAGE = Path(consultflow.__file__).parent
GENERATED = ("api", "migrations")
FRAMEWORKS = ("sqlalchemy", "grpc", "alembic", "google")
"""Top-level packages a domain module must not pull in (google: protobuf and its generated code)."""
MAX_LINES = 900
"""A hand-written module longer than this has two jobs; split it along its chapters."""


def hand_written() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not any(part in GENERATED for part in path.relative_to(PACKAGE).parts):
            yield path


def module_name(path: Path) -> str:
    parts = ["consultflow", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Our modules `path` imports anywhere in its body (type-checking imports included)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("consultflow.") and name != module_name(path):
                found.add(name)
    return found


def test_no_import_cycle() -> None:
    modules = {module_name(p): p for p in hand_written()}
    graph = {name: imported_modules(path, set(modules)) - {"consultflow"} for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("service", consultflow.SERVICES)
def test_a_domain_module_imports_no_framework(service: str) -> None:
    probe = (
        f"import sys, consultflow.{service}.domain\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r} or m in {FRAMEWORKS!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", f"{service}/domain.py pulls in {result.stdout.strip()}"


def test_no_hand_written_module_is_too_long() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in hand_written()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_servicer_methods_return_the_reply_type_not_any() -> None:
    untyped: list[str] = []
    servicers: list[str] = []
    for path in hand_written():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or not any(
                ast.unparse(base).endswith("Servicer") for base in node.bases
            ):
                continue
            servicers.append(node.name)
            for method in node.body:
                if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef) and method.name[0].isupper():
                    returns = ast.unparse(method.returns) if method.returns else "(none)"
                    if "Any" in returns or returns == "(none)":
                        untyped.append(
                            f"{path.relative_to(PACKAGE)}:{method.lineno} {method.name} -> {returns}"
                        )
    assert len(servicers) >= len(consultflow.COMPONENTS), f"found only the servicers {servicers}"
    assert not untyped, "servicer methods without a reply type:\n" + "\n".join(untyped)


def test_nats_clients_open_only_through_messaging() -> None:
    """`messaging.open_client` authenticates and routes the client's errors to our log; a module calling
    nats.connect itself gets nats.py's default, which prints a traceback at ERROR when a TLS close races
    the server (a CLI reading `| head -1` did)."""
    opener = PACKAGE / "platform" / "messaging.py"
    elsewhere: list[str] = []
    for path in hand_written():
        if path == opener:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nats_names = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in ("nats", "nats.aio.client")
            for alias in node.names
            if alias.name in ("connect", "Client", "NATS")
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (
                ast.unparse(node.func) == "nats.connect"
                or (isinstance(node.func, ast.Name) and node.func.id in nats_names)
            ):
                elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not elsewhere, f"NATS clients opened outside messaging.open_client: {elsewhere}"
