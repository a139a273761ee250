"""Recovery key checks, key change, bundles and restore, through the installed command."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RECOVERY_KEY
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from tests.store_engines import EngineVaults
from tests.vault.cli.gwvault_process import GwvaultCli, private_file
from vault.format.jose_codec import compact_json
from vault.format.recovery_bundle import MAGIC, read_header

NEW_KEY = "quartz meadow lantern seventy velvet 91"
# The tests marked contract read or write the source vault's database; the
# others are about a bundle and restore (which makes a SQLite vault) alone.


@pytest.fixture
def old(
    vaults: EngineVaults, copy_vault: Callable[[Path, Path], Path], tmp_path: Path
) -> GwvaultCli:
    cli = GwvaultCli(copy_vault(vaults.initialized("ec-p256"), tmp_path / "old"))
    for name in ("sales", "hr", "finance"):
        assert cli.put_login(name, f"pw-{name}").code == 0
    return cli


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return private_file(tmp_path / "recovery.key", RECOVERY_KEY + "\n")


def export(cli: GwvaultCli, key_file: Path, out: Path) -> bytes:
    run = cli("recovery", "export", "--out", out, "--recovery-key-file", key_file)
    assert run.code == 0, run.err
    assert out.stat().st_mode & 0o777 == 0o600
    return out.read_bytes()


@pytest.mark.contract
def test_verify_proves_the_key_and_records_a_wrong_one(old: GwvaultCli, key_file: Path) -> None:
    before = old("credentials", "list", "--json").json()
    assert old("recovery", "verify", "--recovery-key-file", key_file).code == 0
    wrong = old("recovery", "verify", stdin="not the recovery key at all")
    assert wrong.code == 2 and "does not open" in wrong.err
    assert old("credentials", "list", "--json").json() == before


@pytest.mark.contract
def test_export_refuses_a_wrong_key_and_writes_nothing(old: GwvaultCli, tmp_path: Path) -> None:
    run = old("recovery", "export", "--out", tmp_path / "b.gwb", stdin="not the recovery key")
    assert run.code == 2 and not (tmp_path / "b.gwb").exists()


@pytest.mark.contract
def test_restore_on_a_new_machine_gives_the_same_gateway(
    old: GwvaultCli, key_file: Path, tmp_path: Path
) -> None:
    _restore_gives_the_same_gateway(old, key_file, tmp_path, "file", flags=[], env={})


def test_restore_onto_a_pkcs11_keystore_gives_the_same_gateway(
    old: GwvaultCli, key_file: Path, tmp_path: Path, softhsm: SoftHsm
) -> None:
    # The keystore is the restoring machine's: not a matter of the old vault's engine.
    flags = ["--keystore", "pkcs11", "--pkcs11-module", softhsm.module, "--token-label", MAIN_TOKEN]
    _restore_gives_the_same_gateway(
        old, key_file, tmp_path, "pkcs11", flags=flags, env=softhsm.cli_env()
    )


def _restore_gives_the_same_gateway(
    old: GwvaultCli,
    key_file: Path,
    tmp_path: Path,
    keystore: str,
    *,
    flags: list[str],
    env: dict[str, str],
) -> None:
    export(old, key_file, tmp_path / "b.gwb")
    new = GwvaultCli(tmp_path / "new", env)
    run = new("restore", "--bundle", tmp_path / "b.gwb", "--recovery-key-file", key_file, *flags)
    assert run.code == 0, run.err
    assert "3 of 3 credentials open" in run.out
    assert (
        new("credentials", "list", "--json").json() == old("credentials", "list", "--json").json()
    )
    old_status, new_status = old("status", "--json").json(), new("status", "--json").json()
    for fact in ("gateway_id", "name", "cert_thumbprint", "key_type"):
        assert new_status[fact] == old_status[fact]
    assert (new_status["epoch"], new_status["keystore"]) == (old_status["epoch"] + 1, keystore)
    assert new("credentials", "verify").code == 0


def _rewrite_header(data: bytes, change: Callable[[dict[str, object]], None]) -> bytes:
    header, _, body = read_header(data)
    change(header)
    fresh = compact_json(header)
    return MAGIC + struct.pack(">I", len(fresh)) + fresh + body


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "does not open"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "does not open"),
        (lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:], "does not open"),
        (lambda b: b + b"trailing", "does not open"),
        (lambda b: b"not a bundle at all" * 10, "does not open"),
        (lambda b: _rewrite_header(b, lambda h: h.update(format_version=2)), "format version 2"),
        (lambda b: _rewrite_header(b, lambda h: h.update(name="evil")), "does not open"),
        (lambda b: _rewrite_header(b, lambda h: h["recovery"][0].update(memlimit=1024)), "memory"),  # type: ignore[index]
        (lambda b: _rewrite_header(b, lambda h: h["recovery"][0].update(opslimit=10**6)), "passes"),  # type: ignore[index]
    ],
)
def test_a_damaged_or_foreign_bundle_is_refused_before_anything_is_written(
    old: GwvaultCli, key_file: Path, tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    bundle = export(old, key_file, tmp_path / "b.gwb")
    (tmp_path / "bad.gwb").write_bytes(damage(bundle))
    new = GwvaultCli(tmp_path / "new")
    run = new("restore", "--bundle", tmp_path / "bad.gwb", "--recovery-key-file", key_file)
    assert run.code == 2 and message in run.err
    assert not (tmp_path / "new").exists()


def test_restore_refuses_a_wrong_key_and_a_non_empty_dir(
    old: GwvaultCli, key_file: Path, tmp_path: Path
) -> None:
    export(old, key_file, tmp_path / "b.gwb")
    wrong = GwvaultCli(tmp_path / "new")(
        "restore", "--bundle", tmp_path / "b.gwb", stdin="wrong recovery key"
    )
    assert wrong.code == 2 and not (tmp_path / "new").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes").write_text("mine")
    busy = GwvaultCli(tmp_path / "busy")(
        "restore", "--bundle", tmp_path / "b.gwb", "--recovery-key-file", key_file
    )
    assert busy.code == 1 and "not empty" in busy.err
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes"]


@pytest.mark.contract
def test_change_key_and_older_bundles(old: GwvaultCli, key_file: Path, tmp_path: Path) -> None:
    export(old, key_file, tmp_path / "before.gwb")
    new_file = private_file(tmp_path / "new.key", NEW_KEY)
    run = old(
        "recovery",
        "change-key",
        "--recovery-key-file",
        key_file,
        "--new-recovery-key-file",
        new_file,
    )
    assert run.code == 0 and "OLD key" in run.out
    assert old("recovery", "verify", "--recovery-key-file", key_file).code == 2
    assert old("recovery", "verify", "--recovery-key-file", new_file).code == 0
    weak = private_file(tmp_path / "weak.key", "password1234")
    assert (
        old(
            "recovery",
            "change-key",
            "--recovery-key-file",
            new_file,
            "--new-recovery-key-file",
            weak,
        ).code
        == 2
    )
    # A bundle exported before the change opens with the old key, as the command says.
    restored = GwvaultCli(tmp_path / "from-old-bundle")
    assert (
        restored(
            "restore", "--bundle", tmp_path / "before.gwb", "--recovery-key-file", key_file
        ).code
        == 0
    )
    export(old, new_file, tmp_path / "after.gwb")
    again = GwvaultCli(tmp_path / "from-new-bundle")
    assert (
        again("restore", "--bundle", tmp_path / "after.gwb", "--recovery-key-file", new_file).code
        == 0
    )
