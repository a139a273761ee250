"""An audit sink record as one RFC 5424 syslog message, and read back from a syslog file.

A record (one audit entry, signed checkpoint or rotation record, made by the
sink core) travels as::

    <85>1 2026-12-06T13:00:00+00:00 gw1 gwvault 4711 audit-entry
      [gwvault@32473 type="entry" gateway="..." seq="12" hash="..."] BOM{...}

(one line).  The structured data repeats the fields a syslog server can filter
and index on; the MSG is the whole record as canonical JSON, which is what an
auditor verifies (``gwvault audit verify --against FILE``).  The reader takes
a line as rsyslog writes it with ``RSYSLOG_SyslogProtocol23Format`` (the same
RFC 5424 line) or a bare JSON record line, and treats both as hostile: one
``InvalidInputError`` naming what is wrong, never the line's bytes.

No I/O here: the transport is ``syslog_tls``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from agent_keys.errors import InvalidInputError
from vault.format.audit_chain import canonical_json
from vault.format.strict_json import parse_json_object

# facility authpriv (10), severity notice (5): RFC 5424 6.2.1.  authpriv is
# the facility for security/authorization messages that belong in a private
# file; notice ("normal but significant condition") rather than info because
# every audited change is significant, and a server that keeps only notice and
# above (a common way to drop chatter) still keeps the trail.
PRI = 10 * 8 + 5
APP_NAME = "gwvault"
SD_ID = "gwvault@32473"  # 32473: the enterprise number for documentation (RFC 5612)
MSGID_PREFIX = "audit-"
BOM = b"\xef\xbb\xbf"
# The SD params besides type, gateway and seq: whichever the record has.
_DIGEST_PARAMS = ("hash", "head")
_MAX_PARAM_CHARS = 255
_MAX_LINE_OCTETS = 1 << 20  # far above the 68 KiB a message may have

# The record's ``type`` also makes the MSGID (max 32 PRINTUSASCII, RFC 5424 6.2.7).
_TYPE = re.compile(r"[a-z][a-z0-9_.-]{0,25}\Z")
_NOT_PRINTUSASCII = re.compile(r"[^!-~]")
# RFC 5424 6: HEADER SP STRUCTURED-DATA [SP MSG]; fields are PRINTUSASCII or "-".
_HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<timestamp>[!-~]+) (?P<hostname>[!-~]{1,255}) "
    rb"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
)
_SD_NAME = rb"[!#-<>-\\^-~]{1,32}"  # PRINTUSASCII except '=', ']', '"' (and SP)
_SD_PARAM = re.compile(rb" (" + _SD_NAME + rb')="((?:[^"\\\]]|\\.)*)"', re.DOTALL)
_SD_ID_AT = re.compile(rb"\[(" + _SD_NAME + rb")")
_SD_ESCAPED = re.compile(r'\\(["\\\]])')


def rfc5424_message(record: Mapping[str, Any], *, hostname: str, procid: str) -> bytes:
    """One RFC 5424 SYSLOG-MSG for ``record`` (without transport framing).

    Raises ``InvalidInputError`` for a record without a text ``type`` (a
    word of at most 26 characters), a printable text ``gateway_id`` and an
    integer ``seq``, or one that is not JSON.
    """
    kind = _record_type(record)
    params = [("type", kind), ("gateway", _param_text(record, "gateway_id")), ("seq", _seq(record))]
    params += [(name, _param_text(record, name)) for name in _DIGEST_PARAMS if name in record]
    structured = "[" + SD_ID + "".join(f' {n}="{_escape(v)}"' for n, v in params) + "]"
    try:
        body = canonical_json(dict(record))
    except (TypeError, ValueError) as e:
        raise InvalidInputError("an audit sink record is not JSON") from e
    header = " ".join(
        (f"<{PRI}>1", _timestamp(record.get("at")), _printable(hostname, 255), APP_NAME,
         _printable(procid, 128), MSGID_PREFIX + kind, structured)
    )  # fmt: skip
    return header.encode("utf-8") + b" " + BOM + body.encode("ascii")


def gwvault_records(line: bytes) -> dict[str, Any] | None:
    """The audit sink record on one line of a syslog file, or None for another program's line.

    ``line`` is an RFC 5424 line or a bare JSON record (a trailing newline is
    allowed).  A line that claims to be gwvault's (APP-NAME ``gwvault`` with an
    ``audit-`` MSGID, the ``gwvault@32473`` SD element, or a bare JSON object)
    must be whole and agree with itself; otherwise ``InvalidInputError``.
    """
    line = line.removesuffix(b"\n").removesuffix(b"\r")
    if len(line) > _MAX_LINE_OCTETS:
        raise InvalidInputError(f"a syslog line is longer than {_MAX_LINE_OCTETS} octets")
    if line.removeprefix(BOM).startswith(b"{"):
        return _checked_record(line.removeprefix(BOM))
    header = _HEADER.match(line)
    claims = SD_ID.encode() in line
    if header is None or header["app"] != APP_NAME.encode():
        if claims:
            raise InvalidInputError("a syslog line names gwvault's SD-ID but is not its message")
        return None
    if not header["msgid"].startswith(MSGID_PREFIX.encode()) and not claims:
        return None  # gwvault, but no audit message
    params, rest = _structured_data(line[header.end() :])
    if not rest.startswith(b" "):
        raise InvalidInputError("a gwvault syslog line has no MSG after its structured data")
    record = _checked_record(rest[1:].removeprefix(BOM))
    _check_agrees(record, params, header["msgid"])
    return record


def _record_type(record: Mapping[str, Any]) -> str:
    kind = record.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise InvalidInputError("an audit sink record's type is not a short lowercase word")
    return kind


def _seq(record: Mapping[str, Any]) -> str:
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise InvalidInputError("an audit sink record's seq is not a non-negative integer")
    return str(seq)


def _param_text(record: Mapping[str, Any], name: str) -> str:
    # Printable only: a syslog server rewrites control characters (rsyslog
    # writes them as #ooo), and the value read back must equal the record's.
    value = record.get(name)
    if not isinstance(value, str) or not value.isprintable() or not value:
        raise InvalidInputError(f"an audit sink record's {name} is not printable text")
    if len(value) > _MAX_PARAM_CHARS:
        raise InvalidInputError(f"an audit sink record's {name} is over {_MAX_PARAM_CHARS} chars")
    return value


def _escape(value: str) -> str:
    # RFC 5424 6.3.3: '"', '\' and ']' in a PARAM-VALUE MUST be escaped.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printable(value: str, limit: int) -> str:
    """A HOSTNAME or PROCID: 1 to ``limit`` PRINTUSASCII characters, else NILVALUE."""
    return _NOT_PRINTUSASCII.sub("_", value)[:limit] or "-"


def _timestamp(at: object) -> str:
    """RFC 5424 6.2.3 TIMESTAMP of the record's ``at`` (in UTC), or of now when it has none."""
    try:
        moment = datetime.datetime.fromisoformat(at) if isinstance(at, str) else None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(datetime.UTC).isoformat()
    except (ValueError, OverflowError):
        pass  # the MSG carries the record as it is; the header only needs a valid time
    return datetime.datetime.now(datetime.UTC).isoformat()


def _structured_data(data: bytes) -> tuple[dict[str, str], bytes]:
    """The params of the one gwvault SD-ELEMENT, and what follows the STRUCTURED-DATA."""
    if not data.startswith(b"["):
        raise InvalidInputError("a gwvault syslog line has no structured data")
    found: dict[str, str] | None = None
    while data.startswith(b"["):
        element = _SD_ID_AT.match(data)
        if element is None:
            raise InvalidInputError("a gwvault syslog line has a malformed SD-ID")
        params, data = _sd_params(data[element.end() :])
        if element[1] == SD_ID.encode():
            if found is not None:
                raise InvalidInputError("a gwvault syslog line repeats its SD element")
            found = params
    if found is None:
        raise InvalidInputError("a gwvault syslog line lacks its gwvault@32473 SD element")
    return found, data


def _sd_params(data: bytes) -> tuple[dict[str, str], bytes]:
    params: dict[str, str] = {}
    while not data.startswith(b"]"):
        param = _SD_PARAM.match(data)
        if param is None:
            raise InvalidInputError("a gwvault syslog line has a malformed SD-PARAM")
        try:
            name, value = param[1].decode("ascii"), param[2].decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInputError("a gwvault syslog line's SD-PARAM is not UTF-8") from e
        if name in params:
            raise InvalidInputError("a gwvault syslog line repeats an SD-PARAM")
        params[name] = _SD_ESCAPED.sub(r"\1", value)
        data = data[param.end() :]
    return params, data[1:]


def _checked_record(raw: bytes) -> dict[str, Any]:
    try:
        record = parse_json_object(raw)
    except ValueError as e:
        raise InvalidInputError("a gwvault syslog line's record is not a JSON object") from e
    # The checks that made the message: what is read back could be sent again.
    _record_type(record)
    _seq(record)
    for name in ("gateway_id", *(n for n in _DIGEST_PARAMS if n in record)):
        _param_text(record, name)
    return record


def _check_agrees(record: dict[str, Any], params: dict[str, str], msgid: bytes) -> None:
    """The header and SD repeat the record: any difference is a forged or damaged line."""
    if msgid != (MSGID_PREFIX + record["type"]).encode():
        raise InvalidInputError("a gwvault syslog line's MSGID differs from its record's type")
    expected = {"type": record["type"], "gateway": record["gateway_id"], "seq": str(record["seq"])}
    expected |= {name: record[name] for name in _DIGEST_PARAMS if name in record}
    if params != expected:
        raise InvalidInputError("a gwvault syslog line's SD params differ from its record")
