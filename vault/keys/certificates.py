"""The gateway certificate's life: versions, rotate, import, retire, export, rewrap.

A new key pair version (rotated or imported) becomes ``current`` and the one
it replaces ``legacy``: the legacy private key still opens EncryptedCredentials
sealed to its certificate, so no sealer's value breaks silently when the
certificate changes (design.md "Rotation").  ``rewrap-value`` moves such a
value to the current certificate; ``retire`` then deletes the legacy key.
Stored credentials are under data keys and the GMK, never the gateway key, so
none of this touches them.  Every change is one transaction with its audit
entry.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from agent_keys.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    KeyType,
    generate_gateway_identity,
)
from agent_keys.pkcs12 import (
    export_private_key_pkcs12,
    load_pem_identity,
    load_pkcs12_identity,
)
from agent_keys.recovery_key import check_passphrase_policy
from agent_keys.secret import Secret
from vault.format.encrypted_credential import (
    SealedTarget,
    claimed_header,
    open_credential,
    seal_credential,
)
from vault.gateway import Gateway
from vault.names import check_datasource_name

EXPIRY_WARNING = datetime.timedelta(days=30)


class CertificateService:
    """``gwvault cert ...`` and ``rewrap-value`` for one opened gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def versions(self) -> list[dict[str, Any]]:
        """Every held key pair version, current first (public facts only)."""
        held = []
        for record in self._gateway.store.gateway_keys():
            certificate = GatewayCertificate.from_pem(record.cert_pem.encode("ascii"))
            held.append(
                {
                    "version": record.version,
                    "state": record.state,
                    "key_type": record.key_type,
                    "thumbprint": record.thumbprint,
                    "not_after": certificate.not_after.isoformat(),
                }
            )
        return held

    def expiry_warning(self) -> str | None:
        """A sentence when the current certificate expires within 30 days, else None."""
        not_after = self._gateway.certificate().not_after
        left = not_after - self._gateway.context.clock()
        if left > EXPIRY_WARNING:
            return None
        when = "expired" if left.total_seconds() < 0 else f"expires in {left.days} days"
        return (
            f"the gateway certificate {when} ({not_after.isoformat()}); run: gwvault cert"
            " rotate, and give sealers the new certificate"
        )

    def rotate(self, key_type: KeyType | None = None) -> GatewayCertificate:
        """A new key pair and self-signed certificate (same gateway id and name)
        become the current version; the old one becomes legacy."""
        gateway = self._gateway
        chosen = key_type or gateway.certificate().key_type
        private_key, certificate = generate_gateway_identity(
            gateway.name,
            gateway.gateway_id,
            chosen,
            gateway.context.clock(),
            gateway.context.random,
        )
        self._adopt(private_key, certificate, "cert.rotated", "generated")
        return certificate

    def import_pkcs12(self, data: bytes, password: Secret) -> GatewayCertificate:
        """Adopt a PKCS#12 key pair as the current version.

        Raises ``InvalidInputError`` (nothing changed) for a wrong password or a
        key pair ``agent_keys.pkcs12.check_gateway_identity`` refuses.
        """
        gateway = self._gateway
        identity = load_pkcs12_identity(data, password, gateway.gateway_id, gateway.context.clock())
        return self._adopt(*identity, "cert.imported", "pkcs12")

    def import_pem(self, cert_pem: bytes, key_pem: Secret) -> GatewayCertificate:
        """Adopt a PEM certificate and key as the current version (as ``import_pkcs12``)."""
        gateway = self._gateway
        identity = load_pem_identity(cert_pem, key_pem, gateway.gateway_id, gateway.context.clock())
        return self._adopt(*identity, "cert.imported", "pem")

    def retire(self, version: int) -> None:
        """Delete legacy key pair ``version``: values sealed to it no longer open.

        Raises ``NotFoundError`` for a version not held, ``InvalidInputError``
        for the current one.
        """
        gateway = self._gateway
        with gateway.store.write():
            held = {record.version: record for record in gateway.store.gateway_keys()}
            record = held.get(version)
            if record is None:
                known = ", ".join(str(v) for v in sorted(held))
                raise NotFoundError(f"no gateway key version {version} is held (held: {known})")
            if record.state == "current":
                raise InvalidInputError(
                    f"version {version} is the current gateway key; rotate or import first,"
                    " then retire it"
                )
            gateway.store.execute("DELETE FROM gateway_keys WHERE version = ?", [version])
            gateway.audit.record(
                "cert.retired", gateway.gateway_id, version=version, thumbprint=record.thumbprint
            )
        gateway.__dict__.pop("private_keys", None)

    def export_pkcs12(self, password: Secret, deliver: Callable[[bytes], None]) -> None:
        """Hand the current key pair, as password-protected PKCS#12, to ``deliver``.

        The audit entry and the delivery share one transaction: if ``deliver``
        raises, the entry is rolled back with it.  Raises ``InvalidInputError``
        for a password that fails the passphrase policy.
        """
        check_passphrase_policy(password, "PKCS#12 password")
        gateway = self._gateway
        certificate = gateway.certificate()
        private_key = gateway.private_keys[certificate.thumbprint]
        data = export_private_key_pkcs12(private_key, certificate, password, gateway.context.random)
        with gateway.store.write():
            gateway.audit.record(
                "cert.exported",
                gateway.gateway_id,
                format="pkcs12",
                thumbprint=certificate.thumbprint,
                bytes=len(data),
            )
            deliver(data)

    def rewrap_value(self, token: str) -> str:
        """Reseal an EncryptedCredential sealed to any held certificate to the current one.

        Same payload, data source, target and ``iat``.  Raises ``InvalidInputError`` (recorded as
        refused) when the value does not open for this gateway.
        """
        gateway = self._gateway
        # The header is read before it is authenticated; ``ds`` and ``kid`` are
        # trusted only because open_credential then checks them as the GCM AAD.
        try:
            header = claimed_header(token)
            datasource, target = header.get("ds"), SealedTarget.claimed(header)
            if not isinstance(datasource, str):
                raise IntegrityError("no data source")
            opened = open_credential(
                token, gateway.private_keys, gateway.gateway_id, datasource, target
            )
        except IntegrityError as e:
            gateway.audit.record(
                "credential.value-rewrapped", None, "refused", reason="encrypted-credential"
            )
            raise InvalidInputError(
                "the value does not open for this gateway (changed or truncated, sealed for"
                " another gateway, or sealed to a certificate that was retired)"
            ) from e
        check_datasource_name(datasource)
        certificate = gateway.certificate()
        # The original iat stays: a rewrap moves a blob to the current key, it
        # does not make an old seal fresh (vault.access.seal_policy).
        rewrapped = seal_credential(
            certificate,
            datasource,
            target,
            opened.payload,
            issued_at=opened.issued_at,
            random=gateway.context.random,
            valid_at=int(gateway.context.clock().timestamp()),
        )
        gateway.audit.record(
            "credential.value-rewrapped",
            datasource,
            from_kid=str(header["kid"]),
            to_kid=certificate.thumbprint,
        )
        return rewrapped

    def _adopt(
        self,
        private_key: GatewayPrivateKey,
        certificate: GatewayCertificate,
        action: str,
        source: str,
    ) -> GatewayCertificate:
        gateway = self._gateway
        store = gateway.store
        gmk = gateway.master_key
        with store.write():
            held = store.gateway_keys()
            for record in held:
                if record.thumbprint == certificate.thumbprint:
                    raise InvalidInputError(
                        f"this certificate is already held as version {record.version}"
                    )
            replaced = gateway.checkpoint_signer()
            version = max((record.version for record in held), default=0) + 1
            store.execute("UPDATE gateway_keys SET state = 'legacy' WHERE state = 'current'", [])
            store.add_gateway_key(gateway._wrapped_identity(gmk, private_key, certificate, version))
            for changed in [version, *(r.version for r in held if r.state == "current")]:
                gateway.rows.reseal("gateway_keys", changed)
            # The cached keys lack the new one, which signs any checkpoint from here on.
            gateway.__dict__.pop("private_keys", None)
            seq = gateway.audit.record(
                action,
                gateway.gateway_id,
                version=version,
                key_type=certificate.key_type,
                thumbprint=certificate.thumbprint,
                not_after=certificate.not_after.isoformat(),
                replaced=replaced[1].thumbprint,
                source=source,
            )
            # T-AU-13: the old key vouches for the new one (and the new for the
            # old), so an auditor holding either certificate can verify both.
            gateway.audit.sign_rotation(seq, replaced, (private_key, certificate))
        gateway.__dict__.pop("private_keys", None)  # a failed write may have cached the new one
        return certificate
