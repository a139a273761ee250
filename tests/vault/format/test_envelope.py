"""At-rest envelope: a fresh data key per write, bound to every stored fact."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_keys.errors import IntegrityError
from agent_keys.master_key import MasterKey
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from tests.tls_certificates import make_ca
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.envelope import CredentialBinding, SealedSecret, open_at_rest, seal_at_rest
from vault.format.jose_codec import compact_json

GMK = MasterKey(1, Secret(b"\x11" * 32))
CA_PEM = canonical_ca_pem(make_ca("envelope CA").pem)
BINDING = CredentialBinding(
    gateway_id="gw-1", credential_id="c-1", name="sales", version=1, type="postgresql",
    server="db.internal:5432", database="sales", auth="basic", username="alice",
    tls="verify-full", ca_pem=CA_PEM,
)  # fmt: skip
SECRET = Secret.from_text("hunter2-canary")


def test_round_trip_and_no_plaintext_in_the_record() -> None:
    sealed = seal_at_rest(GMK, BINDING, SECRET, system_random)
    assert open_at_rest(GMK, BINDING, sealed) == SECRET
    assert b"hunter2" not in sealed.ciphertext + sealed.wrapped_dek
    again = seal_at_rest(GMK, BINDING, SECRET, system_random)
    assert again.wrapped_dek != sealed.wrapped_dek  # a fresh data key every write


@pytest.mark.parametrize(
    "change",
    [
        {"gateway_id": "gw-2"},
        {"credential_id": "c-2"},
        {"name": "hr"},
        {"version": 2},
        {"type": "mysql"},
        {"server": "attacker.example:5432"},
        {"database": "other"},
        {"database": None},
        {"auth": "key"},
        {"username": "mallory"},
        # The TLS policy decides who may be given the secret (T-AR-4).
        {"tls": "require"},
        {"tls": "disable"},
        {"tls": "prefer"},
        {"ca_pem": None},
        {"ca_pem": canonical_ca_pem(make_ca("a writer's CA").pem)},
        {"binding_version": 1},
        {"binding_version": 3},
    ],
)
def test_changing_any_stored_fact_makes_the_secret_unopenable(change: dict[str, object]) -> None:
    sealed = seal_at_rest(GMK, BINDING, SECRET, system_random)
    with pytest.raises(IntegrityError):
        open_at_rest(GMK, dataclasses.replace(BINDING, **change), sealed)  # type: ignore[arg-type]


def test_wrong_master_key_or_version_fails() -> None:
    sealed = seal_at_rest(GMK, BINDING, SECRET, system_random)
    with pytest.raises(IntegrityError):
        open_at_rest(MasterKey(1, Secret(b"\x22" * 32)), BINDING, sealed)
    with pytest.raises(IntegrityError):
        open_at_rest(MasterKey(2, GMK.key), BINDING, dataclasses.replace(sealed, gmk_version=2))


@given(
    field=st.sampled_from(["wrapped_dek", "ciphertext"]),
    position=st.integers(min_value=0, max_value=200),
    bit=st.integers(min_value=0, max_value=7),
)
def test_property_any_flipped_bit_fails_with_one_message(
    field: str, position: int, bit: int
) -> None:
    sealed = seal_at_rest(GMK, BINDING, SECRET, system_random)
    blob = bytearray(getattr(sealed, field))
    blob[position % len(blob)] ^= 1 << bit
    broken: SealedSecret = dataclasses.replace(sealed, **{field: bytes(blob)})  # type: ignore[arg-type]
    with pytest.raises(IntegrityError) as failure:
        open_at_rest(GMK, BINDING, broken)
    assert str(failure.value).startswith("a stored credential did not open")


def test_a_version_1_binding_has_the_aad_written_before_tls_policies() -> None:
    old = dataclasses.replace(BINDING, binding_version=1, tls="prefer", ca_pem=None)
    facts = {
        "gateway_id": "gw-1", "credential_id": "c-1", "name": "sales", "version": 1,
        "type": "postgresql", "server": "db.internal:5432", "database": "sales",
        "auth": "basic", "username": "alice",
    }  # fmt: skip
    assert old.associated_data() == b"gwvault/credential/v1|" + compact_json(facts)
    sealed = seal_at_rest(GMK, old, SECRET, system_random)
    assert open_at_rest(GMK, dataclasses.replace(old, tls="disable"), sealed) == SECRET
