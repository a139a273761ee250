"""The gateway key types, without cryptography: the CLI's parser needs only their names."""

from __future__ import annotations

from typing import Literal

KeyType = Literal["ec-p256", "rsa-3072"]
KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "rsa-3072")
