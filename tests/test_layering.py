"""The import rules of design.md, checked by parsing every module (ast).

Every import counts, wherever it stands: at the top, inside a function (the
lazy imports that keep ``--help`` fast) or under ``TYPE_CHECKING``.  A cycle
among the project's modules fails, and so does an import across a layer
boundary.  The last tests plant a cycle and a violation in a scratch tree, to
show the checks can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent_keys", "vault", "web")

# The crypto core takes bytes and typed objects: no I/O, no clock, no hidden RNG.
PURE_AGENT_KEYS = (
    "agent_keys.keywrap",
    "agent_keys.master_key",
    "agent_keys.gateway_identity",
    "agent_keys.recovery_key",
)
IO_MODULES = {"os", "io", "pathlib", "socket", "sqlite3", "sqlite_utils", "flask", "pkcs11",
              "time", "random", "secrets", "subprocess", "shutil", "urllib", "http",
              "psycopg", "pymysql", "requests"}  # fmt: skip

# What each layer may import of the project (a module's own package always).
# Everything not named here may import any layer below the edges.
LAYER_MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "agent_keys": ("agent_keys",),
    "vault.format": ("agent_keys", "vault.format"),
    "vault.connectors": ("agent_keys", "vault.format", "vault.connectors"),
    "vault.store": ("agent_keys", "vault.format", "vault.store"),
}
# Edges: nothing below them imports them, and they never import each other.
EDGES = ("vault.cli", "web")
# ``python -m vault`` is the CLI's second door.
PART_OF_AN_EDGE = {"vault.__main__": "vault.cli"}
# Libraries with one home each.
SOLE_IMPORTERS = {
    "sqlite_utils": {"vault.store.sqlite_engine"},
    # The SQLite tester reads a file's header itself: SQLite would reopen the
    # file by name and parse an untrusted database (vault.connectors.sqlite).
    "sqlite3": {"vault.store.sqlite_engine"},
}

Graph = dict[str, set[str]]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, name: str) -> set[str]:
    """Every module name ``path`` imports, relative imports resolved; for
    ``from X import Y`` both X and X.Y (Y may be a submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def sources(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module name -> every name it imports, for the packages under ``root``."""
    return {
        module_name(root, path): imported_names(path, module_name(root, path))
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def project_graph(imports: Mapping[str, set[str]]) -> Graph:
    """Only the edges between the project's own modules (a package's
    ``__init__`` holds a docstring alone, so importing through it adds none)."""
    return {
        name: {other for other in found if other in imports and other != name}
        for name, found in imports.items()
    }


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as a path that returns to its start, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == "open":
                return [*stack[stack.index(other) :], other]
            if other not in state and (cycle := visit(other)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def within(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def layer_violations(graph: Graph) -> list[str]:
    """Each import across a boundary of LAYER_MAY_IMPORT or EDGES, as text."""
    found = []
    for name, imports in graph.items():
        for other in sorted(imports):
            for layer, allowed in LAYER_MAY_IMPORT.items():
                if within(name, layer) and not any(within(other, a) for a in allowed):
                    found.append(f"{name} ({layer}) imports {other}")
            for edge in EDGES:
                inside = within(name, edge) or PART_OF_AN_EDGE.get(name) == edge
                if within(other, edge) and not inside:
                    found.append(f"{name} imports the edge {other}")
    return found


def importers_of(imports: Mapping[str, set[str]], library: str) -> set[str]:
    return {name for name, found in imports.items() if any(within(m, library) for m in found)}


IMPORTS = sources(ROOT, PACKAGES)
GRAPH = project_graph(IMPORTS)
PURE_CORE = sorted([*PURE_AGENT_KEYS, *(name for name in IMPORTS if within(name, "vault.format"))])


def test_no_import_cycle_among_the_projects_modules() -> None:
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH) or [])


def test_no_import_crosses_a_layer_boundary() -> None:
    assert layer_violations(GRAPH) == []


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_crypto_core_does_no_io(module: str) -> None:
    tops = {name.split(".")[0] for name in IMPORTS[module]}
    assert not tops & IO_MODULES, f"{module} imports {tops & IO_MODULES}"


def test_web_never_reaches_into_the_store() -> None:
    for name, found in IMPORTS.items():
        if within(name, "web"):
            assert not {m for m in found if within(m, "vault.store")}, name


@pytest.mark.parametrize("library", sorted(SOLE_IMPORTERS))
def test_a_library_with_one_home_is_imported_only_there(library: str) -> None:
    assert importers_of(IMPORTS, library) == SOLE_IMPORTERS[library]


def test_only_web_imports_flask_and_at_most_one_module_imports_pkcs11() -> None:
    assert importers_of(IMPORTS, "flask")
    assert all(within(name, "web") for name in importers_of(IMPORTS, "flask"))
    assert len(importers_of(IMPORTS, "pkcs11")) <= 1


def test_each_package_init_is_its_docstring_alone() -> None:
    for init in sorted((ROOT / "vault").rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        assert len(tree.body) == 1 and (ast.get_docstring(tree) or "").strip(), init


def test_the_rules_see_real_imports() -> None:
    # Guard against a parser that silently finds nothing.
    assert "cryptography.hazmat.primitives.ciphers.aead" in IMPORTS["vault.format.envelope"]
    assert "vault.gateway" in GRAPH["vault.credentials"]
    assert len(GRAPH) > 60


# -- the checks can fail ------------------------------------------------------


def _scratch_tree(root: Path, files: dict[str, str]) -> Graph:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project_graph(sources(root, ["vault"]))


def test_a_planted_cycle_is_found_even_through_a_lazy_relative_import(tmp_path: Path) -> None:
    graph = _scratch_tree(
        tmp_path,
        {
            "vault/__init__.py": '"""v"""\n',
            "vault/keys/__init__.py": '"""k"""\n',
            "vault/gateway.py": "from vault.keys import tls\n",
            "vault/keys/tls.py": "def f():\n    from ..gateway import Gateway\n",
            "vault/names.py": "import vault.gateway\n",
        },
    )
    assert find_cycle(graph) == ["vault.gateway", "vault.keys.tls", "vault.gateway"]
    del graph["vault.keys.tls"]
    assert find_cycle(graph) is None


def test_a_planted_layer_violation_is_found(tmp_path: Path) -> None:
    graph = _scratch_tree(
        tmp_path,
        {
            "vault/format/envelope.py": "from vault.store.records import Row\n",
            "vault/store/records.py": "Row = 1\n",
            "vault/credentials.py": "from vault.cli.output import EXIT_OK\n",
            "vault/cli/output.py": "EXIT_OK = 0\n",
        },
    )
    assert layer_violations(graph) == [
        "vault.credentials imports the edge vault.cli.output",
        "vault.format.envelope (vault.format) imports vault.store.records",
    ]
