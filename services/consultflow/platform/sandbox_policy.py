"""The syntax-tree side of the rules scripts run under: the RestrictedPython policy that routes operators
and f-strings through guards, how deep a source may nest, and the sorting of code into "trivially safe"
(runs in the orchestrator) and the rest (runs in a sandbox process). platform/sandbox_rules.py compiles
with it and holds the guards; like it, this module imports no SpiffWorkflow.
"""

from __future__ import annotations

import ast
from typing import ClassVar

from RestrictedPython.transformer import RestrictingNodeTransformer


class ScriptViolation(Exception):
    """A diagram's script tried something it may not do or went over a limit; `limit` names the limit."""

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.limit = limit


def over(limit: str, text: str) -> ScriptViolation:
    """A violation whose message names the limit (the `Limits` field, also its setting's suffix)."""
    return ScriptViolation(f"{text} (limit {limit})", limit)


# ------------------------------------------------------------------------------------------ the policy


class Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy; operators that can grow a value, f-strings and their format specs go
    through guards that check the size of the result before computing it."""

    _GUARDED: ClassVar[dict[type, str]] = {
        ast.Add: "+",
        ast.Mult: "*",
        ast.Mod: "%",
        ast.Pow: "**",
        ast.LShift: "<<",
    }

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, "import statements are not allowed")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        self.error(node, "import statements are not allowed")
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        symbol = self._GUARDED.get(type(node.op))
        if symbol is None:
            return node
        return _call("_binop_", node, ast.Constant(symbol), node.left, node.right)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        node = self.node_contents_visit(node)
        parts: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec if value.format_spec is not None else ast.Constant("")
                parts.append(_call("_fmt_", value, value.value, ast.Constant(value.conversion), spec))
            else:
                parts.append(value)
        return _call("_fstr_", node, *parts)


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _call(name: str, where: ast.AST, *args: ast.expr) -> ast.expr:
    """A call to a guard in place of `where`. Only the new nodes get locations: fix_missing_locations would
    walk the whole subtree at every level, quadratic in a chain `a + b + ...`."""
    call = ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])
    for node in (call, call.func, *args):
        if not hasattr(node, "lineno"):
            ast.copy_location(node, where)
    return call


MAX_NESTING = 200
"""How deeply a script's syntax tree may nest (a chain `a + b + ...` nests one level per operator): the
compiler recurses per level, and a sandbox process has Python's default recursion limit, so deeper code
is refused at deploy time rather than failing at run time in one place and not the other."""


def depth(tree: ast.AST) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


# ------------------------------------------------------------------------------- what is trivially safe

TRIVIAL_FUNCTIONS = words(
    "abs all any bool chr date datetime Decimal divmod enumerate float format int isinstance"
    " len list max min ord print range reversed round sorted str sum timedelta tuple zip"
    " ValueError KeyError TypeError Exception"
)
"""Functions whose cost and output are bounded by their (bounded) input, or that are guarded. Not `set`,
`frozenset`, `dict` (nor the set methods that take many items, nor `{*items}`): hashing a stored list of
large integers chosen to collide (under a megabyte as JSON) takes seconds inside one C call."""

TRIVIAL_ATTRIBUTES = words(
    # str and bytes (the sized ones are guarded by `_getattr_`)
    "upper lower strip lstrip rstrip split rsplit splitlines startswith endswith find rfind index rindex"
    " count replace join ljust rjust center zfill capitalize title casefold swapcase isdigit isalpha"
    " isalnum isnumeric isdecimal isspace islower isupper istitle partition rpartition removeprefix"
    " removesuffix encode decode"
    # dict, list, set
    " get keys values items copy setdefault pop append extend insert remove sort reverse clear add discard"
    # dates, times, decimals
    " isoformat fromisoformat weekday isoweekday today now utcnow total_seconds year month day hour minute"
    " second microsecond days seconds microseconds tzinfo quantize normalize is_nan is_zero is_signed"
    " real imag"
)
"""Methods and attributes trivially safe code may use (whatever the receiver: each is bounded for every
type that has it)."""

_TRIVIAL_NODES: tuple[type, ...] = (
    ast.Module,
    ast.Expression,
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.If,
    ast.Pass,
    ast.Delete,
    ast.Raise,
    ast.Assert,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Del,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.Attribute,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Call,
    ast.keyword,
    ast.Starred,
    ast.NamedExpr,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.expr_context,
)


MAX_TRIVIAL_REFERENCES = 6
"""How many computed values trivially safe code may place into containers (display items, `x[k] = v`,
append/insert/update/setdefault/add arguments, zip arguments). Each such reference can repeat a shared
value, so `b = [a, a, a]; c = [b, b, b]; ...` multiplies what `==`, `hash`, `str` or storage walk at every
line while costing nothing to build: a handful keeps that product small (at most 3 × 3 = 9 times a value),
more goes to a sandbox process, where the OS bounds the walk."""

_INSERTING_METHODS = words("append insert extend update setdefault add union")


def _container_references(tree: ast.AST) -> int:
    """The computed values `tree` places into containers (constants are leaves, and never shared)."""
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.Set) and not isinstance(
            getattr(node, "ctx", None), ast.Store | ast.Del
        ):
            count += sum(not isinstance(e, ast.Constant) for e in node.elts)
        elif isinstance(node, ast.Dict):
            count += sum(not isinstance(v, ast.Constant) for v in node.values)
            count += sum(k is not None and not isinstance(k, ast.Constant) for k in node.keys)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            count += 1
        elif isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr in _INSERTING_METHODS) or (
                isinstance(func, ast.Name) and func.id == "zip"
            ):
                count += len(node.args) + len(node.keywords)
    return count


def why_not_trivial(tree: ast.AST, provided: frozenset[str]) -> str:
    """Empty when `tree` is trivially safe: no loops, comprehensions, lambdas or definitions, calls only
    to the functions and methods above, and few values placed into containers; else what sends it to a
    sandbox process."""
    references = _container_references(tree)
    if references > MAX_TRIVIAL_REFERENCES:
        return f"{references} values placed into containers"
    for node in ast.walk(tree):
        if not isinstance(node, _TRIVIAL_NODES):
            return type(node).__name__
        if isinstance(node, ast.Set) and any(isinstance(e, ast.Starred) for e in node.elts):
            return "{*items}"
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in provided and node.id not in TRIVIAL_FUNCTIONS | _TRIVIAL_VALUES:
                return node.id
        elif isinstance(node, ast.Attribute) and node.attr not in TRIVIAL_ATTRIBUTES:
            return f".{node.attr}"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id not in TRIVIAL_FUNCTIONS:
                return f"{func.id}()"
            if not isinstance(func, ast.Name | ast.Attribute):
                return "a call"
    return ""


_TRIVIAL_VALUES = frozenset({"None", "True", "False", "timezone", "printed"})
