"""Reads deploy/kubernetes without PyYAML or kustomize: a strict YAML subset and the Kustomize features used.

PyYAML is not a project dependency, so the manifests are written in the plain block style this loader
reads (mappings, sequences, plain and quoted scalars, `|`/`|-` literal blocks, `[]`/`{}` and flat flow
sequences); anything else is refused with the line it is on rather than guessed. Where PyYAML is
installed, a test checks that both read every file alike. The renderer implements the Kustomize features
the kustomizations use (resources, components, namespace, images, replicas, JSON 6902 patches, a
secretGenerator without name hashes) and refuses any other field, so a kustomization that grows a new
feature fails the tests until the renderer learns it.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

Manifest = dict[str, Any]

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?([0-9]*\.[0-9]+|[0-9]+\.)([eE][-+]?[0-9]+)?")
_AMBIGUOUS = {"yes", "no", "on", "off", "y", "n"}  # booleans in YAML 1.1, strings in 1.2: quote them


class ManifestError(ValueError):
    """A YAML construct or Kustomize feature outside what this module reads."""


def load_documents(text: str, source: str = "<string>") -> list[Any]:
    """Every document of a YAML stream (empty documents are dropped)."""
    documents: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.rstrip() == "---":
            documents.append([])
        else:
            documents[-1].append(line)
    result = []
    for index, lines in enumerate(documents):
        # Only the last document can end without a line break (it matters to a final literal block).
        final_newline = index + 1 < len(documents) or text.endswith("\n")
        value = _Parser(lines, source, final_newline).parse()
        if value is not None:
            result.append(value)
    return result


class _Parser:
    def __init__(self, lines: list[str], source: str, final_newline: bool = True) -> None:
        self.lines = list(lines)
        self.source = source
        self.final_newline = final_newline
        self.i = 0

    def fail(self, message: str) -> ManifestError:
        return ManifestError(f"{self.source}:{self.i + 1}: {message}")

    def parse(self) -> Any:
        if not self._skip():
            return None
        value = self._block(0)
        if self._skip():
            raise self.fail("unexpected content after the document")
        return value

    def _skip(self) -> bool:
        """Moves past blank and comment lines; False at the end."""
        while self.i < len(self.lines):
            stripped = self.lines[self.i].strip()
            if stripped and not stripped.startswith("#"):
                if self.lines[self.i].lstrip(" ").startswith("\t"):
                    raise self.fail("tab in indentation")
                return True
            self.i += 1
        return False

    def _indent(self) -> int:
        line = self.lines[self.i]
        return len(line) - len(line.lstrip(" "))

    def _content(self) -> str:
        return self.lines[self.i].strip()

    def _block(self, indent: int) -> Any:
        if self._indent() < indent:
            raise self.fail("expected an indented block")
        content = self._content()
        if content == "-" or content.startswith("- "):
            return self._sequence(self._indent())
        return self._mapping(self._indent())

    def _sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while self._skip() and self._indent() == indent:
            content = self._content()
            if not (content == "-" or content.startswith("- ")):
                break
            rest = _strip_comment(content[1:]).strip()
            if not rest:
                self.i += 1
                items.append(self._block(indent + 1) if self._skip() and self._indent() > indent else None)
            elif rest.startswith("- ") or rest == "-" or _split_key(rest) is not None:
                # `- key: value` or `- - item`: the item is a block starting at the column after "- ".
                self.lines[self.i] = " " * (indent + 2) + content[1:].lstrip()
                items.append(self._block(indent + 2))
            else:
                items.append(self._inline_value(rest, indent))
        if self._skip() and self._indent() > indent:
            raise self.fail("bad indentation in a sequence")
        return items

    def _mapping(self, indent: int) -> Manifest:
        result: Manifest = {}
        while self._skip() and self._indent() == indent:
            content = self._content()
            if content == "-" or content.startswith("- "):
                break
            split = _split_key(content)
            if split is None:
                raise self.fail(f"expected `key: value`, got {content!r}")
            key_text, rest = split
            key = _scalar(key_text, self.fail)
            if not isinstance(key, str):
                raise self.fail(f"keys must be strings, got {key_text!r}")
            if key in result:
                raise self.fail(f"duplicate key {key!r}")
            rest = _strip_comment(rest).strip()
            if rest:
                result[key] = self._inline_value(rest, indent)
                continue
            self.i += 1
            if not self._skip() or self._indent() < indent:
                result[key] = None
            elif self._indent() > indent:
                result[key] = self._block(self._indent())
            elif self._content() == "-" or self._content().startswith("- "):
                result[key] = self._sequence(indent)
            else:
                result[key] = None
        if self._skip() and self._indent() > indent:
            raise self.fail("bad indentation in a mapping")
        return result

    def _inline_value(self, rest: str, indent: int) -> Any:
        """A value written on the line of its key or dash; literal blocks continue below."""
        if rest in ("|", "|-"):
            self.i += 1
            return self._literal(indent, keep_newline=rest == "|")
        if rest[0] in "|>&*!%@`":
            raise self.fail(f"unsupported YAML: {rest!r}")
        value = _scalar(rest, self.fail)
        self.i += 1
        return value

    def _literal(self, parent_indent: int, keep_newline: bool) -> str:
        block: list[str] = []
        block_indent: int | None = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip():
                indent = len(line) - len(line.lstrip(" "))
                if indent <= parent_indent:
                    break
                if block_indent is None:
                    block_indent = indent
                if indent < block_indent:
                    break
                block.append(line[block_indent:])
            else:
                block.append("")
            self.i += 1
        line_break_after = self.i < len(self.lines) or self.final_newline or (bool(block) and not block[-1])
        while block and not block[-1]:
            block.pop()
        text = "\n".join(block)
        return text + "\n" if keep_newline and text and line_break_after else text


def _strip_comment(text: str) -> str:
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and (index == 0 or text[index - 1] in " [,"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index]
    return text


def _split_key(content: str) -> tuple[str, str] | None:
    """`key: value` → (key, value); None when the line is not a mapping entry."""
    quote = ""
    for index, char in enumerate(content):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and index == 0:
            quote = char
        elif char == "#" and index > 0 and content[index - 1] == " ":
            return None
        elif char == ":" and (index + 1 == len(content) or content[index + 1] == " "):
            return content[:index].strip(), content[index + 1 :]
        elif char in "[{" and index == 0:
            return None
    return None


def _scalar(text: str, fail: Callable[[str], ManifestError]) -> Any:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise fail(f"unterminated string {text!r}")
        return json.loads(text)  # JSON's escapes are the subset of YAML's that the manifests use
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise fail(f"unterminated string {text!r}")
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("["):
        if not text.endswith("]"):
            raise fail(f"unsupported flow sequence {text!r}")
        inner = text[1:-1].strip()
        if not inner:
            return []
        if any(c in inner for c in "[]{}"):
            raise fail(f"nested flow collections are not supported: {text!r}")
        return [_scalar(part.strip(), fail) for part in inner.split(",")]
    if text.startswith("{"):
        raise fail(f"flow mappings are not supported: {text!r}")
    if ": " in text or " #" in text:
        raise fail(f"quote this scalar: {text!r}")
    lowered = text.lower()
    if lowered in ("null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in _AMBIGUOUS:
        raise fail(f"quote {text!r}: YAML 1.1 readers take it for a boolean")
    if _INT.fullmatch(text):
        return int(text)
    if re.fullmatch(r"[-+]?0[0-9]+", text):
        raise fail(f"quote {text!r}: a leading zero reads as octal in YAML 1.1")
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def load_file(path: Path) -> list[Any]:
    """Every document of a YAML file."""
    return load_documents(path.read_text(encoding="utf-8"), str(path))


# --- Kustomize -------------------------------------------------------------------------------------

_KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "components",
    "images",
    "replicas",
    "patches",
    "secretGenerator",
    "generatorOptions",
}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PriorityClass"}
_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def render(directory: Path) -> list[Manifest]:
    """What `kustomize build DIRECTORY` outputs, as objects (order aside)."""
    kustomization = _kustomization(directory, "Kustomization")
    objects: list[Manifest] = []
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(copy.deepcopy(load_file(path)))
    for entry in kustomization.get("components") or []:
        component_dir = (directory / entry).resolve()
        component = _kustomization(component_dir, "Component")
        for resource in component.get("resources") or []:
            objects.extend(copy.deepcopy(load_file(component_dir / resource)))
        _transform(objects, component)
    objects.extend(_secrets(kustomization))
    _transform(objects, kustomization)
    return objects


def _kustomization(directory: Path, kind: str) -> Manifest:
    documents = load_file(directory / "kustomization.yaml")
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ManifestError(f"{directory}/kustomization.yaml: expected one mapping")
    kustomization: Manifest = documents[0]
    if kustomization.get("kind", "Kustomization") != kind:
        raise ManifestError(f"{directory}/kustomization.yaml: expected kind {kind}")
    unknown = set(kustomization) - _KUSTOMIZATION_FIELDS
    if unknown:
        raise ManifestError(
            f"{directory}/kustomization.yaml: the test renderer does not know {sorted(unknown)}"
        )
    return kustomization


def _secrets(kustomization: Manifest) -> list[Manifest]:
    generators = kustomization.get("secretGenerator") or []
    if generators and not (kustomization.get("generatorOptions") or {}).get("disableNameSuffixHash"):
        raise ManifestError("the test renderer only generates Secrets with disableNameSuffixHash")
    secrets = []
    for generator in generators:
        if set(generator) - {"name", "literals"}:
            raise ManifestError(f"secretGenerator {generator.get('name')}: only name and literals are known")
        data = {}
        for literal in generator.get("literals") or []:
            key, _, value = literal.partition("=")
            data[key] = base64.b64encode(value.encode()).decode()
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": generator["name"]},
                "type": "Opaque",
                "data": data,
            }
        )
    return secrets


def _transform(objects: list[Manifest], kustomization: Manifest) -> None:
    for patch in kustomization.get("patches") or []:
        _apply_patch(objects, patch)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace
    for replicas in kustomization.get("replicas") or []:
        matched = [
            o
            for o in objects
            if o["kind"] in _POD_TEMPLATE_KINDS and o["metadata"]["name"] == replicas["name"]
        ]
        if not matched:
            raise ManifestError(f"replicas: nothing named {replicas['name']}")
        for obj in matched:
            obj["spec"]["replicas"] = replicas["count"]
    for image in kustomization.get("images") or []:
        for container in containers(objects):
            container["image"] = _new_image(container["image"], image)


def _new_image(current: str, change: Manifest) -> str:
    name, _, digest = current.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if name != change["name"]:
        return current
    name = str(change.get("newName", name))
    # As Kustomize: a new tag or digest replaces both the tag and the digest the image had.
    if "digest" in change and "newTag" in change:
        return f"{name}:{change['newTag']}@{change['digest']}"
    if "digest" in change:
        return f"{name}@{change['digest']}"
    if "newTag" in change:
        return f"{name}:{change['newTag']}"
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _apply_patch(objects: list[Manifest], patch: Manifest) -> None:
    if set(patch) != {"target", "patch"}:
        raise ManifestError(f"the test renderer knows inline patches with a target, not {sorted(patch)}")
    # Kustomize trims a patch before reading it, which matters to a literal block at its very end.
    operations = load_documents(patch["patch"].strip(), "patch")
    if len(operations) != 1 or not isinstance(operations[0], list):
        raise ManifestError("the test renderer knows JSON 6902 patches (a list of operations) only")
    target = patch["target"]
    if set(target) - {"kind", "name", "labelSelector"}:
        raise ManifestError(f"unknown patch target fields {sorted(target)}")
    selector = dict(pair.split("=", 1) for pair in target.get("labelSelector", "").split(",") if pair)
    matched = [
        obj
        for obj in objects
        if obj["kind"] == target.get("kind", obj["kind"])
        and obj["metadata"]["name"] == target.get("name", obj["metadata"]["name"])
        and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
    ]
    if not matched:
        raise ManifestError(f"patch target {target} matches nothing")
    for obj in matched:
        for operation in operations[0]:
            _json_patch(obj, operation)


def _json_patch(document: Manifest, operation: Manifest) -> None:
    op = operation["op"]
    parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
    parent: Any = document
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else int(last), value)
        elif op == "replace":
            parent[int(last)] = value
        elif op == "remove":
            del parent[int(last)]
        else:
            raise ManifestError(f"unsupported patch operation {op}")
    elif op in ("add", "replace"):
        if op == "replace" and last not in parent:
            raise ManifestError(f"replace: {operation['path']} does not exist")
        parent[last] = value
    elif op == "remove":
        del parent[last]
    else:
        raise ManifestError(f"unsupported patch operation {op}")


def pod_templates(objects: list[Manifest]) -> list[tuple[Manifest, Manifest]]:
    """(workload, its pod template) for every workload in `objects`."""
    return [(o, o["spec"]["template"]) for o in objects if o["kind"] in _POD_TEMPLATE_KINDS]


def containers(objects: list[Manifest]) -> list[Manifest]:
    """Every container and init container of every workload."""
    result: list[Manifest] = []
    for _, template in pod_templates(objects):
        spec = template["spec"]
        result.extend(spec.get("initContainers") or [])
        result.extend(spec["containers"])
    return result


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of that kind and name."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} objects {kind}/{name}")
    return matches[0]
