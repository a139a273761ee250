"""One contract every keystore keeps, run once per backend (file, PKCS#11 on SoftHSM2).

The suite is a base class; each backend subclasses it and says how to make a
keystore and how to take its key away (itsdangerous reuses suites this way).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from agent_keys.errors import IntegrityError, KeyBackendError
from agent_keys.file_keystore import FileKeystore
from agent_keys.keystore import Keystore, PinSource
from agent_keys.pkcs11_keystore import Pkcs11Keystore
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from vault.data_dir import DataDir
from vault.format.keystore_binding import encode_binding, parse_binding
from vault.keys.keystore_binding import no_pin, open_keystore

GMK = Secret(secrets.token_bytes(32))
CONTEXT = b"gwvault/gmk/v1|gateway|1"


class KeystoreContract:
    """What the vault relies on from any keystore."""

    @pytest.fixture
    def keystore(self, tmp_path: Path) -> Keystore:
        raise NotImplementedError

    def take_key_away(self, keystore: Keystore) -> None:
        raise NotImplementedError

    def test_wrap_round_trips_without_exposing_the_master_key(self, keystore: Keystore) -> None:
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        assert GMK.reveal() not in wrapped
        assert keystore.unwrap_master_key(wrapped, CONTEXT) == GMK
        assert keystore.wrap_master_key(GMK, CONTEXT) != wrapped  # a fresh nonce each time

    def test_the_wrap_is_bound_to_its_context(self, keystore: Keystore) -> None:
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        with pytest.raises(IntegrityError):
            keystore.unwrap_master_key(wrapped, CONTEXT + b"|other")

    @pytest.mark.parametrize(
        "damage", [lambda w: w[:-1], lambda w: w[:-1] + bytes([w[-1] ^ 1]), lambda w: b""]
    )
    def test_a_damaged_wrap_fails_the_same_way(self, keystore: Keystore, damage: object) -> None:
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        with pytest.raises(IntegrityError):
            keystore.unwrap_master_key(damage(wrapped), CONTEXT)  # type: ignore[operator]

    def test_its_binding_file_finds_the_same_keystore_again(
        self, keystore: Keystore, pin: PinSource, tmp_path: Path
    ) -> None:
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        settings = keystore.settings()
        assert settings["kind"] == keystore.kind
        content = encode_binding(settings)
        assert parse_binding(content, "keystore.json") == settings
        again = open_keystore(parse_binding(content, "x"), DataDir(tmp_path), system_random, pin)
        assert again.unwrap_master_key(wrapped, CONTEXT) == GMK

    def test_describe_and_settings_hold_no_key_material(self, keystore: Keystore) -> None:
        shown = json.dumps({**keystore.describe(), **keystore.settings()})
        assert GMK.reveal().hex() not in shown
        assert "pin" not in shown.lower()

    def test_without_its_key_it_refuses_with_a_key_backend_error(self, keystore: Keystore) -> None:
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        self.take_key_away(keystore)
        with pytest.raises(KeyBackendError):
            keystore.unwrap_master_key(wrapped, CONTEXT)

    def test_retire_destroys_a_key_it_made(self, keystore: Keystore) -> None:
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        keystore.retire()
        with pytest.raises(KeyBackendError):
            keystore.unwrap_master_key(wrapped, CONTEXT)

    @pytest.fixture
    def pin(self) -> PinSource:
        return no_pin


class TestFileKeystore(KeystoreContract):
    @pytest.fixture
    def keystore(self, tmp_path: Path) -> Keystore:
        return FileKeystore.create(tmp_path / "keystore.key", system_random)

    def take_key_away(self, keystore: Keystore) -> None:
        assert isinstance(keystore, FileKeystore)
        keystore.path.unlink()


class TestPkcs11Keystore(KeystoreContract):
    @pytest.fixture
    def pin(self, softhsm: SoftHsm) -> PinSource:
        return softhsm.pin_source

    @pytest.fixture
    def keystore(self, softhsm: SoftHsm) -> Keystore:
        label = f"contract-{secrets.token_hex(4)}"
        return Pkcs11Keystore.create_or_adopt(
            softhsm.module, MAIN_TOKEN, label, softhsm.pin_source, system_random
        )

    def take_key_away(self, keystore: Keystore) -> None:
        keystore.retire()

    def test_an_adopted_key_is_kept_on_retire(self, keystore: Keystore, softhsm: SoftHsm) -> None:
        assert isinstance(keystore, Pkcs11Keystore)
        adopted = Pkcs11Keystore.create_or_adopt(
            softhsm.module, MAIN_TOKEN, keystore.key_label, softhsm.pin_source, system_random
        )
        wrapped = keystore.wrap_master_key(GMK, CONTEXT)
        assert adopted.unwrap_master_key(wrapped, CONTEXT) == GMK
        assert "kept" in adopted.retire()
        assert keystore.unwrap_master_key(wrapped, CONTEXT) == GMK
