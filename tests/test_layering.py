"""The import rules of design.md, checked by parsing every module (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent_keys", "vault", "web")

# The crypto core takes bytes and typed objects: no I/O, no clock, no hidden RNG.
PURE_CORE = (
    "agent_keys/keywrap.py",
    "agent_keys/master_key.py",
    "agent_keys/gateway_identity.py",
    "agent_keys/recovery_key.py",
    "vault/format/encrypted_credential.py",
    "vault/format/envelope.py",
    "vault/format/jose_codec.py",
)
IO_MODULES = {"os", "io", "pathlib", "socket", "sqlite3", "sqlite_utils", "flask", "pkcs11",
              "time", "random", "secrets", "subprocess", "shutil", "urllib", "http",
              "psycopg", "pymysql", "requests"}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules() -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT)): imports_of(path)
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def importers_of(top: str) -> set[str]:
    return {name for name, found in modules().items() if any(m.split(".")[0] == top for m in found)}


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_crypto_core_does_no_io(module: str) -> None:
    tops = {name.split(".")[0] for name in imports_of(ROOT / module)}
    assert not tops & IO_MODULES, f"{module} imports {tops & IO_MODULES}"


def test_agent_keys_imports_nothing_from_the_layers_above() -> None:
    for name, found in modules().items():
        if name.startswith("agent_keys/"):
            assert not {m.split(".")[0] for m in found} & {
                "vault",
                "web",
                "flask",
                "sqlite_utils",
            }, name


def test_only_the_store_imports_sqlite_utils() -> None:
    assert importers_of("sqlite_utils") == {"vault/store/sqlite_engine.py"}


def test_only_web_imports_flask_and_at_most_one_module_imports_pkcs11() -> None:
    assert all(name.startswith("web/") for name in importers_of("flask"))
    assert len(importers_of("pkcs11")) <= 1


def test_web_does_not_reach_into_the_store() -> None:
    for name, found in modules().items():
        if name.startswith("web/"):
            assert not {"vault.store.vault_store", "vault.store.schema", "sqlite3"} & found, name


def test_the_rules_see_real_imports() -> None:
    # Guard against a parser that silently finds nothing.
    assert "cryptography.hazmat.primitives.ciphers.aead" in imports_of(
        ROOT / "vault/format/envelope.py"
    )
    assert importers_of("sqlite_utils")
