"""What importing hooknb loads: each side only its own modules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def imported_by(code: str) -> set[str]:
    """The modules ``python -X importtime -c code`` imports, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_defining_a_workflow_loads_no_server_code() -> None:
    loaded = imported_by("import hooknb; hooknb.workflow; hooknb.HttpWebhookTrigger")
    assert "hooknb.kernel.client" in loaded  # the probe works
    heavy = {"tornado", "jwt", "cryptography", "jupyter_server"}
    assert not {name for name in loaded if name.split(".")[0] in heavy}
    assert not {name for name in loaded if name.startswith("hooknb.server")}


# -- the import graph --------------------------------------------------------------------------
# Imports at the top and inside functions (lazy ones) count; imports under ``if TYPE_CHECKING:``
# count where the test says so.

ROOT = Path(__file__).resolve().parent.parent

# The one import from kernel code into the server: connect() starting an embedded hub, which is
# the server side run in the kernel's process (imported only when one is started).
KERNEL_TO_SERVER = {("hooknb.kernel.client", "hooknb.server.embedded")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, *, type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if type_checking:
                for part in node.body:
                    yield from _imports(ast.Module([part], []), type_checking=True)
            for part in node.orelse:
                yield from _imports(ast.Module([part], []), type_checking=type_checking)
        else:
            yield from _imports(node, type_checking=type_checking)


def import_graph(*, type_checking: bool = True) -> dict[str, set[str]]:
    """hooknb module -> the hooknb modules it imports (with those for type checkers only, or
    without)."""
    files = {module_name(p): p for p in (ROOT / "hooknb").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in _imports(tree, type_checking=type_checking):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in files else base)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def edges(graph: dict[str, set[str]], source: str, target: str) -> set[tuple[str, str]]:
    """Imports from modules under ``source`` into modules under ``target``."""

    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return {(a, b) for a, bs in graph.items() if under(a, source) for b in bs if under(b, target)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_sides_import_only_downwards() -> None:
    graph = import_graph()
    assert "hooknb.kernel.run" in graph["hooknb.kernel.workflow"]  # the probe works
    assert edges(graph, "hooknb.kernel", "hooknb.server") == KERNEL_TO_SERVER
    assert not edges(graph, "hooknb.server", "hooknb.kernel")
    for shared in ("hooknb.wdl", "hooknb.http_model", "hooknb.errors", "hooknb.protocol"):
        assert not edges(graph, shared, "hooknb.kernel"), shared
        assert not edges(graph, shared, "hooknb.server"), shared


def test_no_import_cycles() -> None:
    assert cycles(import_graph(type_checking=False)) == []


def test_no_kernel_import_cycles_even_for_type_checkers() -> None:
    # Runs, workflows, the hub client and the views read each other through protocols, so the
    # kernel's layers stay one-way also where modules only name each other's types.
    graph = import_graph()
    kernel = {
        name: {t for t in targets if t.startswith("hooknb.kernel")}
        for name, targets in graph.items()
        if name.startswith("hooknb.kernel")
    }
    assert cycles(kernel) == []
