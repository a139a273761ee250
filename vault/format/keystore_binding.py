"""The keystore binding file (``keystore.json``): which keystore unlocks a vault.

Pure: bytes in, checked settings out, and back; ``vault.keys.binding_file``
reads and writes the file.  The binding is the only place gwvault learns which
key file or PKCS#11 module to use: the vault database never names one, since
whoever can write the database must not choose code for us to load (threat
T-HSM-8).

A UTF-8 JSON object of at most 4 KiB, no member twice, exactly these members,
every value a string:

    {"format": "gwvault-keystore-binding/1", "kind": "file", "key_file": "keystore.key"}
    {"format": "gwvault-keystore-binding/1", "kind": "pkcs11",
     "module": "/usr/lib/softhsm/libsofthsm2.so", "module_sha256": "<64 hex digits>",
     "token_label": "gateway", "key_label": "gwvault-<gateway id>", "created_key": "yes"}

``created_key`` says whether gwvault generated the token key (and may destroy
it when the vault moves away) or adopted one that exists (left alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from agent_keys.errors import InvalidInputError, StorageError
from vault.format.strict_json import parse_json_object

FORMAT = "gwvault-keystore-binding/1"
MAX_BINDING_BYTES = 4096
_MEMBERS = {
    "file": frozenset({"format", "kind", "key_file"}),
    "pkcs11": frozenset(
        {"format", "kind", "module", "module_sha256", "token_label", "key_label", "created_key"}
    ),
}
_KEY_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_PATH = 4096
# CK_TOKEN_INFO.label is 32 bytes (PKCS#11 v2.40, section 3.2).
_MAX_TOKEN_LABEL_BYTES = 32
_MAX_KEY_LABEL = 128


def check_key_file_name(name: str) -> None:
    """A key file is a bare name inside the data dir; ``InvalidInputError`` otherwise."""
    if not _KEY_FILE_NAME.fullmatch(name):
        raise InvalidInputError(f"the key file {name!r} must be a plain file name in the data dir")


def check_module_path(path: str) -> None:
    """A module path is absolute and printable; ``InvalidInputError`` otherwise."""
    # A relative path would load whatever library sits in the current directory
    # of a later command.
    if not path.startswith("/") or len(path) > _MAX_PATH or not path.isprintable():
        raise InvalidInputError("the PKCS#11 module must be an absolute path (--pkcs11-module)")


def check_token_label(label: str) -> None:
    if not label or len(label.encode()) > _MAX_TOKEN_LABEL_BYTES or not label.isprintable():
        raise InvalidInputError("a token label is 1 to 32 bytes of printable text")


def check_key_label(label: str) -> None:
    if not label or len(label) > _MAX_KEY_LABEL or not label.isprintable():
        raise InvalidInputError("a key label is 1 to 128 printable characters")


def encode_binding(settings: Mapping[str, str]) -> bytes:
    """The file content binding a keystore with these ``settings`` (its ``settings()``).

    Raises ``InvalidInputError`` for settings ``parse_binding`` would refuse.
    """
    content = json.dumps({"format": FORMAT, **settings}, indent=2, sort_keys=True) + "\n"
    _check_members({"format": FORMAT, **settings})
    encoded = content.encode()
    if len(encoded) > MAX_BINDING_BYTES:
        raise InvalidInputError("the keystore binding would be larger than 4 KiB")
    return encoded


def parse_binding(content: bytes, where: str) -> dict[str, str]:
    """The settings in binding file content (``where`` names it in messages).

    Raises ``StorageError`` (one line: what is wrong and what to do) for
    anything but a binding this module would write.
    """
    try:
        if len(content) > MAX_BINDING_BYTES:
            raise InvalidInputError("it is larger than 4 KiB")
        try:
            value = parse_json_object(content)
        except ValueError as e:
            raise InvalidInputError("it is not one JSON object") from e
        if not isinstance(value, dict):
            raise InvalidInputError("it is not a JSON object")
        _check_members(value)
    except InvalidInputError as e:
        raise StorageError(
            f"the keystore binding {where} is damaged ({e}); restore it from a backup, or"
            " rebind the vault with the recovery key: gwvault keystore migrate --to file"
            " --recovery-key-file F"
        ) from e
    return {name: text for name, text in value.items() if name != "format"}


def _check_members(value: Mapping[str, Any]) -> None:
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in _MEMBERS:
        raise InvalidInputError("its kind is neither 'file' nor 'pkcs11'")
    if set(value) != _MEMBERS[kind]:
        raise InvalidInputError(f"its members are not exactly {sorted(_MEMBERS[kind])}")
    if not all(isinstance(text, str) for text in value.values()):
        raise InvalidInputError("every value must be a string")
    if value["format"] != FORMAT:
        raise InvalidInputError(f"its format is not {FORMAT}")
    if kind == "file":
        check_key_file_name(value["key_file"])
        return
    check_module_path(value["module"])
    if not _SHA256_HEX.fullmatch(value["module_sha256"]):
        raise InvalidInputError("module_sha256 is not 64 lowercase hex digits")
    check_token_label(value["token_label"])
    check_key_label(value["key_label"])
    if value["created_key"] not in ("yes", "no"):
        raise InvalidInputError("created_key is neither 'yes' nor 'no'")
