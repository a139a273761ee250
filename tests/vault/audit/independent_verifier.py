"""A verifier of gwvault audit exports written from docs/audit-format.md alone.

It imports nothing of gwvault (``test_audit_format_spec`` checks): only the
standard library and the ``cryptography`` package, as a verifier in another
language would use its own hash, JSON, base64 and X.509 libraries.  Section
numbers refer to the document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

MAX_LINE = 65_536
MAX_SEQ = 2**63 - 1
DIGEST = re.compile(r"[0-9a-f]{64}")
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
KEYS = {
    "header": {"type", "version", "gateway_id", "gateway_name", "exported_at", "exported_by",
               "certificates"},
    "entry": {"type", "seq", "at", "actor", "channel", "action", "target", "outcome",
              "request_id", "details", "prev", "hash"},
    "checkpoint": {"type", "seq", "head", "at", "reason", "thumbprint", "signature"},
    "rotation": {"type", "seq", "head", "at", "from", "to", "from_signature", "to_signature"},
}  # fmt: skip
ENTRY_FIELDS = ("at", "actor", "channel", "action", "target", "outcome", "request_id", "details")
GATEWAY_URI = "urn:gwvault:gateway:"


class Refused(Exception):
    """The file is not a well-formed export (section 2), or the anchor does not fit."""


@dataclass
class Verdict:
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""
    first_seq: int | None = None
    last_seq: int | None = None
    signed_through: int | None = None
    signed_at: str | None = None
    unvouched: int = 0


class Failed(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


@dataclass
class Certificate:
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    gateway_id: str
    thumbprint: str

    def verifies(self, message: bytes, signature: bytes) -> bool:  # 3.6
        if len(signature) > 512:
            return False
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            else:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                self.key.verify(signature, message, pss, hashes.SHA256())
        except InvalidSignature:
            return False
        return True


# -- section 2: reading -----------------------------------------------------------


def parse(data: bytes) -> list[dict[str, Any]]:
    if not data:
        raise Refused("empty")
    lines = data.split(b"\n")
    if lines[-1] != b"":
        raise Refused("the last line lacks its LF")
    values = []
    for number, raw in enumerate(lines[:-1], start=1):
        if len(raw) + 1 > MAX_LINE:
            raise Refused(f"line {number} is too long")
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:
            raise Refused(f"line {number} is not JSON") from e
        if not isinstance(value, dict):
            raise Refused(f"line {number} is not an object")
        kind = "header" if number == 1 else value.get("type")
        if not isinstance(kind, str) or kind not in KEYS or (number > 1 and kind == "header"):
            raise Refused(f"line {number} has no known type")
        if set(value) != KEYS[str(kind)]:
            raise Refused(f"line {number} has the wrong keys")
        _check_types(str(kind), value)
        values.append(value)
    return values


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _check_types(kind: str, value: dict[str, Any]) -> None:
    if kind == "header":
        version = value["version"]
        if value["type"] != "gwvault-audit-export" or type(version) is not int:
            raise Refused("not a gwvault audit export header")
        if version not in (1, 2):
            raise Refused("an export version this verifier does not know")
        texts = ["gateway_id", "gateway_name", "exported_at", "exported_by"]
        certificates = value["certificates"]
        if not isinstance(certificates, list) or len(certificates) > 64:
            raise Refused("certificates must be a list of at most 64")
        for pem in certificates:
            _text(pem)
        for key in texts:
            _text(value[key])
        return
    seq = value["seq"]
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise Refused("seq out of range")
    digests = {"entry": ("prev", "hash"), "checkpoint": ("head",), "rotation": ("head",)}[kind]
    signatures = {"entry": (), "checkpoint": ("signature",),
                  "rotation": ("from_signature", "to_signature")}[kind]  # fmt: skip
    for key, item in value.items():
        if key in ("type", "seq") or (key == "target" and item is None):
            continue
        _text(item)
        if key in digests and not DIGEST.fullmatch(item):
            raise Refused(f"{key} is not a digest")
        if key in signatures:
            value[key] = _signature(item)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise Refused("not a text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Refused("a text without a UTF-8 form") from e
    return value


def _signature(text: str) -> bytes:
    if not BASE64URL.fullmatch(text) or len(text) > 686 or len(text) % 4 == 1:
        raise Refused("not a base64url signature")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- section 4: certificates ------------------------------------------------------


def certificate(pem: bytes) -> Certificate:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        key = cert.public_key()
    except (ValueError, TypeError, x509.ExtensionNotFound, x509.DuplicateExtension,
            x509.InvalidVersion, UnsupportedAlgorithm) as e:  # fmt: skip
        raise Refused("not a gateway certificate") from e
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith(GATEWAY_URI)]  # fmt: skip
    try:
        gateway_id = str(uuid.UUID(uris[0][len(GATEWAY_URI) :]))
    except (IndexError, ValueError) as e:
        raise Refused("no gateway id") from e
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise Refused("not P-256")
    elif not isinstance(key, rsa.RSAPublicKey) or key.key_size < 3072:
        raise Refused("neither EC P-256 nor RSA-3072+")
    der = cert.public_bytes(serialization.Encoding.DER)
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    return Certificate(key, gateway_id, thumbprint)


# -- section 3: bytes -----------------------------------------------------------


def canonical(value: dict[str, Any]) -> bytes:  # 3.3
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def genesis(gateway_id: str) -> bytes:  # 3.1
    return hashlib.sha256(b"gwvault-audit-genesis/v1|" + gateway_id.encode("utf-8")).digest()


def entry_hash(prev: bytes, entry: dict[str, Any]) -> bytes:  # 3.2
    out = b"gwvault-audit-entry/v1\x00" + prev + entry["seq"].to_bytes(8, "big")
    for name in ENTRY_FIELDS:
        text = entry[name]
        if text is None:
            out += b"\x00"
        else:
            raw = text.encode("utf-8")
            out += b"\x01" + len(raw).to_bytes(4, "big") + raw
    return hashlib.sha256(out).digest()


def checkpoint_message(gateway_id: str, c: dict[str, Any]) -> bytes:  # 3.4
    return canonical({"type": "gwvault-audit-checkpoint/v1", "gateway_id": gateway_id,
                      "seq": c["seq"], "head": c["head"], "at": c["at"],
                      "reason": c["reason"]})  # fmt: skip


def rotation_message(gateway_id: str, r: dict[str, Any]) -> bytes:  # 3.5
    return canonical({"type": "gwvault-audit-rotation/v1", "gateway_id": gateway_id,
                      "seq": r["seq"], "head": r["head"], "at": r["at"],
                      "from": r["from"], "to": r["to"]})  # fmt: skip


# -- sections 4.1 and 5: verifying ----------------------------------------------


@dataclass
class Walk:
    gateway_id: str
    checkpoints: list[dict[str, Any]]
    rotations: list[dict[str, Any]]
    pool: dict[str, Certificate]
    windows: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    rotations_trusted: bool = False
    signed_through: int | None = None
    signed_at: str | None = None
    closed_at: int | None = None
    unvouched: int = 0
    first: int = 1

    def unproven(self) -> int:  # U
        return self.signed_through + 1 if self.signed_through is not None else self.first

    def trusted(self, checkpoint: dict[str, Any]) -> Certificate | None:
        for low, high in self.windows.get(checkpoint["thumbprint"], []):
            if low <= checkpoint["seq"] <= high:
                return self.pool[checkpoint["thumbprint"]]
        return None

    def count(self, statement: dict[str, Any]) -> None:
        seq = statement["seq"]
        if seq >= (self.signed_through or 0):
            self.signed_through, self.signed_at = seq, statement["at"]
        if statement["type"] == "checkpoint" and statement["reason"] == "export":
            self.closed_at = seq


def verify(data: bytes, anchor_pem: bytes) -> Verdict:
    """The verdict on an export, checked with the anchor certificate; ``Refused``
    for a malformed file or an anchor of another gateway."""
    lines = parse(data)
    header = lines[0]
    pool = {c.thumbprint: c for c in (certificate(p.encode()) for p in header["certificates"])
            if c.gateway_id == header["gateway_id"]}  # fmt: skip
    anchor = certificate(anchor_pem)
    if anchor.gateway_id != header["gateway_id"]:
        raise Refused("the anchor is another gateway's")
    pool[anchor.thumbprint] = anchor
    if header["version"] == 1 and any(v["type"] == "rotation" for v in lines):
        raise Refused("a rotation line in a version-1 export")
    walk = Walk(
        header["gateway_id"],
        sorted((v for v in lines if v["type"] == "checkpoint"), key=lambda v: v["seq"]),
        sorted((v for v in lines if v["type"] == "rotation"), key=lambda v: v["seq"]),
        pool,
    )
    entries = [v for v in lines if v["type"] == "entry"]
    verdict = Verdict(ok=True)
    try:
        _trust(walk, anchor)
        _walk(walk, entries, verdict)
    except Failed as failed:
        verdict.ok, verdict.first_bad_seq, verdict.problem = False, failed.seq, failed.problem
    verdict.signed_through, verdict.signed_at = walk.signed_through, walk.signed_at
    verdict.unvouched = walk.unvouched
    return verdict


def _trust(walk: Walk, anchor: Certificate) -> None:  # 4.1, steps 3 and 4
    previous: dict[str, Any] | None = None
    for record in walk.rotations:
        old, new = walk.pool.get(record["from"]), walk.pool.get(record["to"])
        if old is None or new is None or record["from"] == record["to"]:
            raise Failed(record["seq"], "rotation names an unknown certificate, or itself")
        message = rotation_message(walk.gateway_id, record)
        if not (old.verifies(message, record["from_signature"])
                and new.verifies(message, record["to_signature"])):  # fmt: skip
            raise Failed(record["seq"], "rotation not signed by both keys")
        if previous is not None and (
            record["seq"] <= previous["seq"] or record["from"] != previous["to"]
        ):
            raise Failed(record["seq"], "rotation does not continue the chain")
        previous = record
    ends = {r["from"] for r in walk.rotations} | {r["to"] for r in walk.rotations}
    if anchor.thumbprint not in ends:
        walk.windows = {anchor.thumbprint: [(1, MAX_SEQ)]}
        return
    walk.rotations_trusted = True
    seqs = [r["seq"] for r in walk.rotations]
    walk.windows = {walk.rotations[0]["from"]: [(1, seqs[0])]}
    for i, record in enumerate(walk.rotations):
        end = seqs[i + 1] if i + 1 < len(seqs) else MAX_SEQ
        walk.windows.setdefault(record["to"], []).append((record["seq"], end))


def _holds(walk: Walk, checkpoint: dict[str, Any], head: str) -> bool:
    signer = walk.trusted(checkpoint)
    message = checkpoint_message(walk.gateway_id, checkpoint)
    return (
        signer is not None
        and checkpoint["head"] == head
        and signer.verifies(message, checkpoint["signature"])
    )


def _start(walk: Walk, first: int) -> bytes:  # 5.1
    walk.first = first
    if first == 1:
        return genesis(walk.gateway_id)
    prunes = [c for c in walk.checkpoints if c["reason"] == "prune" and c["seq"] < first]
    anchor = prunes[-1] if prunes else None
    if anchor is None or anchor["seq"] != first - 1:
        raise Failed(anchor["seq"] + 1 if anchor else 1, "pruned entries unaccounted for")
    if walk.trusted(anchor) is None:
        walk.unvouched += 1
    elif not _holds(walk, anchor, anchor["head"]):
        raise Failed(first, "the prune checkpoint is not validly signed")
    else:
        walk.count(anchor)
    return bytes.fromhex(anchor["head"])


def _walk(walk: Walk, entries: list[dict[str, Any]], verdict: Verdict) -> None:  # 5.2 - 5.4
    if not entries:
        raise Failed(1, "no entries")
    first = entries[0]["seq"]
    verdict.first_seq = first
    prev, expected = _start(walk, first), first
    statements = walk.checkpoints + walk.rotations
    at: dict[int, list[dict[str, Any]]] = {}
    for s in sorted(statements, key=lambda s: (s["seq"], s["type"] == "rotation")):
        at.setdefault(s["seq"], []).append(s)
    pruned: set[int] = set()
    for entry in entries:
        seq = entry["seq"]
        if seq > expected:
            raise Failed(expected, "missing entry")
        if seq < expected:
            raise Failed(seq, "repeated or out of order")
        if entry["prev"] != prev.hex():
            raise Failed(seq, "does not follow")
        digest = entry_hash(prev, entry)
        if digest.hex() != entry["hash"]:
            raise Failed(seq, "edited")
        for statement in at.get(seq, []):
            _statement(walk, statement, entry["hash"])
        if entry["action"] == "audit.pruned":
            pruned |= _pruned_through(entry["details"])
        verdict.last_seq, prev, expected = seq, digest, seq + 1
    _end(walk, first, expected - 1, pruned)


def _end(walk: Walk, first: int, last: int, pruned: set[int]) -> None:  # 5.4
    if first > 1 and first - 1 not in pruned:
        raise Failed(first - 1, "no audit.pruned entry for the pruned entries")
    if any(s["seq"] > last for s in walk.checkpoints + walk.rotations):
        raise Failed(last + 1, "cut off after it was signed")
    if walk.signed_through != last:
        raise Failed(walk.unproven(), "not closed by a trusted checkpoint")
    if walk.closed_at != last:
        raise Failed(last + 1, "closed by a checkpoint other than the export's")


def _statement(walk: Walk, statement: dict[str, Any], head: str) -> None:  # 5.3
    if statement["type"] == "checkpoint":
        if walk.trusted(statement) is None:
            walk.unvouched += 1
            return
        holds = _holds(walk, statement, head)
    else:
        if not walk.rotations_trusted:
            walk.unvouched += 1
            return
        holds = statement["head"] == head
    if not holds:
        raise Failed(walk.unproven(), "a signed statement does not hold")
    walk.count(statement)


def _pruned_through(details: str) -> set[int]:
    try:
        value = json.loads(details)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return set()
    through = value.get("through_seq") if isinstance(value, dict) else None
    return {through} if type(through) is int else set()
