"""Fingerprint of the code a stage runs: its own module and every project module it imports.

Prefect's TASK_SOURCE policy hashes the task function alone and misses the helpers it
calls. Here imports are followed statically (with ``ast``, without importing anything),
through ``models`` and ``tasks`` and transitively, including imports made inside function
bodies.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

PROJECT_PACKAGES = ("models", "tasks")
# Bookkeeping that cannot change a stage's results: editing it must not invalidate caches.
# The stage configuration types (tasks.specs) too: a key holds the values of the slices a
# stage reads, so only a change of value, never an edited docstring, makes a stage rerun.
BOOKKEEPING = {
    "tasks", "tasks.stage", "tasks.tracking", "tasks.workspace", "tasks.code_fingerprint", "tasks.manifest", "tasks.specs",
    "models.progress",  # what a stage shows while it runs, never what it computes
}
# CPython 3.11 (3.11.7 here) can fail ast.parse run in two threads at once ("AST constructor
# recursion depth mismatch"), as a sweep's cells do: one parse at a time.
_PARSE_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def _package_root(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # imports only the package's light __init__
    return Path(spec.origin).parent.parent if spec and spec.origin else None


def _module_file(name: str) -> Path | None:
    """The source file of a dotted module name, found on disk without importing it."""
    root = _package_root(name.split(".")[0])
    if root is None:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def _project_imports(name: str, path: Path) -> frozenset[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    source = path.read_text()
    with _PARSE_LOCK:
        tree = ast.parse(source, filename=str(path))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            # `from models import overlap` imports a submodule, not a name.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(m for m in found if m.split(".")[0] in PROJECT_PACKAGES and m not in BOOKKEEPING and _module_file(m))


def _runtime_nodes(tree: ast.AST):
    """Every statement that can run, nested ones included (an import is a statement, so no
    expression needs a look), but those under ``if TYPE_CHECKING:`` (imports for annotations)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo.extend(getattr(node, field, ()))


def code_dependencies(module: str) -> list[str]:
    """``module`` and the project modules it reaches through imports, sorted."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is not None:
            todo.extend(_project_imports(name, path) - seen)
    return sorted(seen)


@lru_cache(maxsize=None)
def code_hashes(module: str) -> dict[str, str]:
    """SHA-256 of each source file ``module`` runs, by module name: what ``w2s plan`` compares."""
    hashes = {}
    for name in code_dependencies(module):
        path = _module_file(name)
        hashes[name] = hashlib.sha256(path.read_bytes() if path else b"").hexdigest()
    return hashes


def code_fingerprint(module: str) -> str:
    digest = hashlib.sha256()
    for name, sha in code_hashes(module).items():
        digest.update(f"{name}:{sha};".encode())
    return digest.hexdigest()
