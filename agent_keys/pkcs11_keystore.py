"""PKCS#11 keystore: the GMK's daily-use KEK is an AES-256 key inside an HSM.

The key is generated in the token as sensitive and non-extractable, so its
bytes never exist outside the HSM.  The token is used twice in a vault's life
per process: to unwrap the GMK when the vault opens and to wrap it on rotation
or migration; credentials never touch it (the HSM is off the hot path).

Wrapping is AES-GCM inside the token (``CKM_AES_GCM``) with the GMK's context as
AAD, stored in the same format as ``agent_keys.keywrap``.  SoftHSM2, the test
token, offers RSA-OAEP only with SHA-1, which is one reason not to wrap with an
RSA key here.

The PIN is asked of ``pin`` at each use and never stored.  This is the only
module that imports ``pkcs11`` (design.md).  The module is loaded only after
``agent_keys.pkcs11_module`` checked where it lies and that its SHA-256 is the
one recorded in the vault's binding (threat T-HSM-8); describing the keystore
never loads it.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
from collections.abc import Callable, Iterator
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams

from agent_keys.errors import (
    AccessDeniedError,
    IntegrityError,
    InvalidInputError,
    KeyBackendError,
    VaultError,
)
from agent_keys.keystore import PinSource
from agent_keys.keywrap import KEY_BYTES, NONCE_BYTES, TAG_BYTES, WRAP_FORMAT
from agent_keys.pkcs11_module import check_module, inspect_module
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

# The attributes a key must have for us to trust it with the GMK (PKCS#11 v2.40
# section 4.9): secret AES-256, never readable in clear, usable for
# encrypt/decrypt only.
_KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
}
_CHANGED = "CHANGED since it was trusted; check it, then run: gwvault keystore trust-module"
_UNWRAP_FAILED = "the wrapped master key did not unwrap with the token's key"
_PIN_REFUSED = (
    "the token refused the PIN; nothing was changed. Check it before trying again:"
    " most HSMs lock the user PIN after a few wrong tries (SoftHSM2 never locks)"
)


class Pkcs11Keystore:
    """The GMK's KEK, held in a PKCS#11 token."""

    def __init__(
        self,
        module: str,
        token_label: str,
        key_label: str,
        pin: PinSource,
        random: RandomSource,
        *,
        module_sha256: str,
        created_key: bool = False,
    ) -> None:
        """A binding to a token key; ``module_sha256`` is the module the admin trusted."""
        self.module = module
        self.module_sha256 = module_sha256
        self.token_label = token_label
        self.key_label = key_label
        self._pin = pin
        self._random = random
        self._created_key = created_key

    @classmethod
    def trusting_module_now(
        cls,
        module: str,
        token_label: str,
        key_label: str,
        pin: PinSource,
        random: RandomSource,
        *,
        created_key: bool = False,
    ) -> Pkcs11Keystore:
        """A binding that trusts the module's bytes as they are now, on an admin's
        word (``init``, ``keystore migrate``, ``keystore trust-module``).

        Raises what ``inspect_module`` raises; nothing is loaded.
        """
        found = inspect_module(module)
        return cls(
            module,
            token_label,
            key_label,
            pin,
            random,
            module_sha256=found.sha256,
            created_key=created_key,
        )

    @classmethod
    def create_or_adopt(
        cls, module: str, token_label: str, key_label: str, pin: PinSource, random: RandomSource
    ) -> Pkcs11Keystore:
        """Generate the AES key in the token, or adopt an existing one of that label.

        An adopted key must already be a sensitive, non-extractable AES-256 key.
        """
        created = False
        keystore = cls.trusting_module_now(module, token_label, key_label, pin, random)
        with keystore._session(rw=True) as session:
            try:
                _check_key_attributes(_find_key(session, key_label), key_label)
            except p11.NoSuchKey:
                session.generate_key(
                    KeyType.AES, KEY_BYTES * 8, label=key_label, store=True, template=_KEY_TEMPLATE
                )
                created = True
        keystore._created_key = created
        return keystore

    @property
    def kind(self) -> str:
        return "pkcs11"

    @property
    def created_key(self) -> bool:
        return self._created_key

    def settings(self) -> dict[str, str]:
        return {
            "kind": "pkcs11",
            "module": self.module,
            "module_sha256": self.module_sha256,
            "token_label": self.token_label,
            "key_label": self.key_label,
            "created_key": "yes" if self._created_key else "no",
        }

    def wrap_master_key(self, master_key: Secret, context: bytes) -> bytes:
        nonce = self._random(NONCE_BYTES)
        with self._session() as session:
            key = _find_key(session, self.key_label)
            sealed = _gcm(key.encrypt, master_key.reveal(), nonce, context)
        return WRAP_FORMAT + nonce + sealed

    def unwrap_master_key(self, wrapped: bytes, context: bytes) -> Secret:
        header = len(WRAP_FORMAT) + NONCE_BYTES
        if len(wrapped) != header + KEY_BYTES + TAG_BYTES or wrapped[:1] != WRAP_FORMAT:
            raise IntegrityError(_UNWRAP_FAILED)
        with self._session() as session:
            key = _find_key(session, self.key_label)
            try:
                return Secret(_gcm(key.decrypt, wrapped[header:], wrapped[1:header], context))
            except (p11.GeneralError, p11.EncryptedDataInvalid, p11.FunctionFailed) as e:
                # Tokens report a GCM tag mismatch inconsistently (SoftHSM2 says
                # CKR_GENERAL_ERROR); any of these on decrypt means "did not open".
                raise IntegrityError(_UNWRAP_FAILED) from e

    def describe(self) -> dict[str, str]:
        """Facts about the binding for ``keystore show``, and whether the module
        file still has the trusted bytes: read from the file, never by loading
        the module (a changed module must not run to be described)."""
        try:
            found = inspect_module(self.module)
            if hmac.compare_digest(found.sha256, self.module_sha256):
                check, module_file = "trusted (SHA-256 matches)", found.resolved
            else:
                check, module_file = _CHANGED + f" (now {found.sha256})", found.resolved
        except VaultError as e:
            check, module_file = f"refused: {e}", ""
        return {
            "module": self.module,
            "module_file": module_file,
            "module_sha256": self.module_sha256,
            "module_check": check,
            "token_label": self.token_label,
            "key_label": self.key_label,
            "key_created_by_gwvault": "yes" if self._created_key else "no",
            "mechanism": "CKM_AES_GCM",
        }

    def retire(self) -> str:
        """Destroy the token key if gwvault made it; an adopted key is left alone."""
        if not self._created_key:
            return f"kept the adopted key {self.key_label!r} on token {self.token_label!r}"
        with self._session(rw=True) as session:
            _find_key(session, self.key_label).destroy()
        return f"destroyed the key {self.key_label!r} on token {self.token_label!r}"

    @contextlib.contextmanager
    def _session(self, rw: bool = False) -> Iterator[Any]:
        token = self._token()
        if Mechanism.AES_GCM not in token.slot.get_mechanisms():
            raise KeyBackendError(
                f"token {self.token_label!r} does not offer AES-GCM (CKM_AES_GCM), which"
                " gwvault needs to wrap the master key; use another token or the file keystore"
            )
        pin = self._pin()
        try:
            with token.open(user_pin=pin.reveal_text(), rw=rw) as session:
                yield session
        except p11.PinIncorrect as e:
            raise AccessDeniedError(_PIN_REFUSED) from e
        except p11.PinLocked as e:
            raise AccessDeniedError(
                f"the user PIN of token {self.token_label!r} is locked; its security officer"
                " must unlock it"
            ) from e
        except (p11.PinExpired, p11.PinInvalid, p11.PinLenRange) as e:
            raise AccessDeniedError(f"the token refused the PIN ({type(e).__name__})") from e
        except p11.NoSuchKey as e:
            raise KeyBackendError(
                f"the key {self.key_label!r} is not on token {self.token_label!r}; restore it,"
                " or rebind the vault with the recovery key:"
                " gwvault keystore migrate --to file --recovery-key-file F"
            ) from e
        except p11.MultipleObjectsReturned as e:
            raise KeyBackendError(
                f"token {self.token_label!r} holds several keys labelled {self.key_label!r}"
            ) from e
        except (p11.MechanismInvalid, p11.MechanismParamInvalid, p11.FunctionNotSupported) as e:
            raise KeyBackendError(
                f"token {self.token_label!r} refused AES-GCM ({type(e).__name__})"
            ) from e
        except p11.PKCS11Error as e:
            raise KeyBackendError(
                f"the PKCS#11 token {self.token_label!r} failed ({type(e).__name__})"
            ) from e

    def _token(self) -> Any:
        library = _library(self.module, self.module_sha256)
        try:
            return library.get_token(token_label=self.token_label)
        except (p11.NoSuchToken, p11.GeneralError, p11.DeviceRemoved, p11.TokenNotPresent):
            # A token plugged in, removed or re-initialised after this process
            # loaded the module is seen only once the module is initialised
            # again (SoftHSM2 reports a vanished token as a general error).
            library.reinitialize()
        except p11.PKCS11Error as e:
            raise KeyBackendError(f"the PKCS#11 module failed ({type(e).__name__})") from e
        try:
            return library.get_token(token_label=self.token_label)
        except p11.NoSuchToken as e:
            raise KeyBackendError(
                f"no token labelled {self.token_label!r} in {self.module}; is the HSM connected?"
            ) from e
        except p11.MultipleTokensReturned as e:
            raise KeyBackendError(f"several tokens are labelled {self.token_label!r}") from e
        except p11.PKCS11Error as e:
            raise KeyBackendError(f"the PKCS#11 module failed ({type(e).__name__})") from e


@functools.cache
def _library(module: str, sha256: str) -> Any:
    # Checked once per process: once loaded, the code that runs is the code
    # that was checked, whatever happens to the file afterwards.
    check_module(module, sha256)
    try:
        return pkcs11.lib(module)
    except p11.PKCS11Error as e:
        # python-pkcs11 raises the base class for dlopen failures.
        raise KeyBackendError(
            f"cannot load the PKCS#11 module {module}; check --pkcs11-module"
        ) from e


def _find_key(session: Any, label: str) -> Any:
    return session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)


def _check_key_attributes(key: Any, label: str) -> None:
    try:
        ok = (
            key[Attribute.VALUE_LEN] == KEY_BYTES
            and key[Attribute.SENSITIVE]
            and not key[Attribute.EXTRACTABLE]
            and key[Attribute.ENCRYPT]
            and key[Attribute.DECRYPT]
        )
    except p11.AttributeTypeInvalid:
        ok = False
    if not ok:
        raise InvalidInputError(
            f"the key {label!r} on the token is not a sensitive, non-extractable AES-256"
            " encrypt/decrypt key; choose another --key-label"
        )


def _gcm(operation: Callable[..., bytes], data: bytes, nonce: bytes, aad: bytes) -> bytes:
    return operation(data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad))
