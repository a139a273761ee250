"""Recovery bundles: one self-describing, authenticated file that moves a gateway.

    b"GWVAULT-RECOVERY-BUNDLE\\n" || u32 header length || header (JSON) ||
    nonce (12) || AES-256-GCM(bundle key, vault database, aad = magic || header)

The header (readable, authenticated as AAD) names the format version, the
gateway, its epoch, and for every GMK version the recovery wrap with its
Argon2id parameters.  The bundle key is random, wrapped by the current GMK in
the header.  Opening needs only the recovery key: Argon2id -> recovery KEK ->
GMK -> bundle key -> the database (keys, certificates, credentials, audit
trail, all still wrapped as they were).  Everything is checked in memory before
anything is written; a wrong key, an edited byte or a truncated file give the
same one message.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.master_key import MasterKey
from agent_keys.randomness import RandomSource
from agent_keys.recovery_key import RecoveryKdfParams, RecoveryWrap, unwrap_with_recovery_key
from agent_keys.secret import Secret
from vault.format.jose_codec import compact_json
from vault.format.strict_json import parse_json_object

MAGIC = b"GWVAULT-RECOVERY-BUNDLE\n"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 65536
MAX_BUNDLE_BYTES = 1 << 30
_NONCE = 12
_BAD_BUNDLE = (
    "the bundle does not open with this recovery key (wrong key, or the file was changed,"
    " truncated, or is not a gwvault recovery bundle)"
)
_HEADER_MEMBERS = frozenset(
    {"format_version", "gateway_id", "name", "epoch", "created_at", "current_gmk_version",
     "recovery", "wrapped_bundle_key"}
)  # fmt: skip
_WRAP_MEMBERS = frozenset({"version", "salt", "opslimit", "memlimit", "wrapped"})


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle whose every byte has been authenticated."""

    header: dict[str, Any]
    master_keys: dict[int, MasterKey]
    database: bytes

    @property
    def gateway_id(self) -> str:
        return str(self.header["gateway_id"])


def seal_bundle(
    header: dict[str, Any], gmk: MasterKey, database: bytes, random: RandomSource
) -> bytes:
    """The bundle file's bytes; ``header`` lacks only the wrapped bundle key."""
    bundle_key = Secret(random(32))
    full = {
        **header,
        "wrapped_bundle_key": _b64(gmk.wrap(bundle_key, _bundle_context(header), random)),
    }
    encoded = compact_json(full)
    nonce = random(_NONCE)
    sealed = AESGCM(bundle_key.reveal()).encrypt(nonce, database, MAGIC + encoded)
    return MAGIC + struct.pack(">I", len(encoded)) + encoded + nonce + sealed


def read_header(data: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """The (not yet authenticated) header, its bytes, and the sealed body."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise InvalidInputError("the bundle is larger than 1 GiB")
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise InvalidInputError(_BAD_BUNDLE)
    (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if length > MAX_HEADER_BYTES or len(data) < start + length + _NONCE + 16:
        raise InvalidInputError(_BAD_BUNDLE)
    encoded = data[start : start + length]
    try:
        header = parse_json_object(encoded)
    except ValueError as e:
        raise InvalidInputError(_BAD_BUNDLE) from e
    version = header.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise InvalidInputError(
            f"the bundle has format version {version}; this gwvault reads version {FORMAT_VERSION}:"
            " upgrade gwvault on this machine first"
        )
    if set(header) != _HEADER_MEMBERS or version != FORMAT_VERSION:
        raise InvalidInputError(_BAD_BUNDLE)
    return header, encoded, data[start + length :]


def open_bundle(data: bytes, recovery_key: Secret) -> OpenedBundle:
    """Authenticate and decrypt a bundle; ``InvalidInputError`` for any failure.

    Argon2id parameters below the floor or above the ceiling are refused
    before any derivation (``RecoveryKdfParams``).
    """
    header, encoded, body = read_header(data)
    wraps = _wraps(header)  # floor and ceiling checked here, before any derivation
    try:
        keys = unwrap_with_recovery_key(str(header["gateway_id"]), wraps, recovery_key)
        gmk = keys[int(header["current_gmk_version"])]
        bundle_key = gmk.unwrap(_unb64(header["wrapped_bundle_key"]), _bundle_context(header))
        database = AESGCM(bundle_key.reveal()).decrypt(
            body[:_NONCE], body[_NONCE:], MAGIC + encoded
        )
    except (IntegrityError, InvalidTag, KeyError, ValueError, TypeError, OverflowError) as e:
        raise InvalidInputError(_BAD_BUNDLE) from e
    return OpenedBundle(header, keys, database)


def _wraps(header: dict[str, Any]) -> list[RecoveryWrap]:
    wraps = []
    try:
        for item in header["recovery"]:
            if not isinstance(item, dict) or set(item) != _WRAP_MEMBERS:
                raise InvalidInputError(_BAD_BUNDLE)
            params = RecoveryKdfParams(
                _unb64(item["salt"]), int(item["opslimit"]), int(item["memlimit"])
            )
            wraps.append(RecoveryWrap(int(item["version"]), _unb64(item["wrapped"]), params))
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: int(1e999)
        raise InvalidInputError(_BAD_BUNDLE) from e
    if not wraps:
        raise InvalidInputError(_BAD_BUNDLE)
    return wraps


def wrap_entry(wrap: RecoveryWrap) -> dict[str, Any]:
    """A header entry for one GMK version's recovery wrap."""
    return {
        "version": wrap.version,
        "salt": _b64(wrap.params.salt),
        "opslimit": wrap.params.opslimit,
        "memlimit": wrap.params.memlimit,
        "wrapped": _b64(wrap.wrapped),
    }


def _bundle_context(header: dict[str, Any]) -> bytes:
    return f"gwvault/bundle-key/v1|{header['gateway_id']}|{header['created_at']}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError("not base64") from e
