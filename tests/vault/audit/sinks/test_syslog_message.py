"""The RFC 5424 message of an audit sink record, and reading it back from a hostile file.

The grammar check is a regular expression written here from the ABNF of RFC
5424 section 6 (not the reader's), so the writer and reader cannot share a
mistake.  The reader (``gwvault_records``) is what ``gwvault audit verify
--against FILE`` trusts a syslog file through: hand-written hostile lines and
hypothesis fuzzing show it returns a record, None, or one bounded
``InvalidInputError`` - nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_keys.errors import InvalidInputError
from tests.security.scale import scaled
from vault.audit.sinks.syslog_tls import MAX_MESSAGE_OCTETS, gwvault_records, rfc5424_message

GATEWAY = "6d1f3c9e-2b4a-4f8e-9c1d-7a5b3e2f1d0c"
HEX = "9f" * 32
ENTRY: dict[str, Any] = {
    "type": "entry", "gateway_id": GATEWAY, "seq": 12, "at": "2026-12-06T13:00:00+00:00",
    "actor": "admin", "channel": "cli", "action": "credential.put", "target": "sales",
    "outcome": "ok", "request_id": "req-1", "details": '{"version":1}', "prev": HEX, "hash": HEX,
}  # fmt: skip
CHECKPOINT: dict[str, Any] = {
    "type": "checkpoint", "gateway_id": GATEWAY, "seq": 100, "head": HEX,
    "at": "2026-12-06T13:00:00Z", "reason": "interval", "thumbprint": "ab" * 32,
    "signature": "c2lnbmF0dXJl",
}  # fmt: skip

# RFC 5424 section 6, ABNF to regex, field by field.
_PRINTUSASCII = r"[\x21-\x7e]"
_SD_NAME = r"[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}"  # PRINTUSASCII except = ] " (and SP)
_PARAM_VALUE = r'(?:[^"\\\]]|\\["\\\]])*'  # '"', '\' and ']' escaped (6.3.3)
_SD_ELEMENT = rf'\[{_SD_NAME}(?: {_SD_NAME}="{_PARAM_VALUE}")*\]'
SYSLOG_MSG = re.compile(
    r"<(?:[0-9]|[1-9][0-9]|1[0-8][0-9]|19[01])>"  # PRI: 0..191
    r"[1-9][0-9]{0,2} "  # VERSION
    r"(?:-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})) "  # TIMESTAMP
    rf"(?:-|{_PRINTUSASCII}{{1,255}}) "  # HOSTNAME
    rf"(?:-|{_PRINTUSASCII}{{1,48}}) "  # APP-NAME
    rf"(?:-|{_PRINTUSASCII}{{1,128}}) "  # PROCID
    rf"(?:-|{_PRINTUSASCII}{{1,32}}) "  # MSGID
    rf"(?:-|(?:{_SD_ELEMENT})+)"  # STRUCTURED-DATA
    r"(?: \ufeff(?P<msg>.*))?\Z",  # MSG-UTF8: BOM UTF-8-STRING
    re.DOTALL,
)


def message_text(record: dict[str, Any], **fields: str) -> str:
    names = {"hostname": "gw1.example", "procid": "4711"} | fields
    return rfc5424_message(record, **names).decode("utf-8")


@pytest.mark.parametrize("record", [ENTRY, CHECKPOINT], ids=["entry", "checkpoint"])
def test_the_message_is_rfc5424_and_carries_the_record(record: dict[str, Any]) -> None:
    text = message_text(record)
    match = SYSLOG_MSG.match(text)
    assert match is not None, text
    assert text.startswith(
        f"<85>1 2026-12-06T13:00:00+00:00 gw1.example gwvault 4711 audit-{record['type']} "
    )
    digest = "hash" if "hash" in record else "head"
    assert (
        f'[gwvault@32473 type="{record["type"]}" gateway="{GATEWAY}" seq="{record["seq"]}"'
        f' {digest}="{HEX}"]'
    ) in text
    assert gwvault_records(text.encode()) == record


def test_param_values_are_escaped_and_read_back() -> None:
    record = ENTRY | {"gateway_id": 'gw "one" \\ [two]'}
    text = message_text(record)
    assert SYSLOG_MSG.match(text) is not None
    assert r'gateway="gw \"one\" \\ [two\]"' in text
    assert gwvault_records(text.encode()) == record


def test_hostname_and_procid_are_made_printusascii() -> None:
    text = message_text(ENTRY, hostname="gw one\u00e9" + "x" * 300, procid="")
    assert SYSLOG_MSG.match(text) is not None
    assert f" gw_one_{'x' * 248} gwvault - audit-entry " in text


@pytest.mark.parametrize(
    "at", [None, "yesterday", "2026-12-06T13:00:00", "0001-01-01T00:00:00+14:00"]
)
def test_a_record_without_a_usable_time_is_stamped_now(at: str | None) -> None:
    record = {k: v for k, v in ENTRY.items() if k != "at"} | ({"at": at} if at else {})
    text = message_text(record)
    assert SYSLOG_MSG.match(text) is not None
    assert gwvault_records(text.encode()) == record


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"type": "Entry"}, "type"),
        ({"type": "a" * 27}, "type"),
        ({"type": 5}, "type"),
        ({"seq": "12"}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": -1}, "seq"),
        ({"gateway_id": ""}, "gateway_id"),
        ({"gateway_id": "gw\nforged"}, "gateway_id"),
        ({"hash": "x" * 256}, "hash"),
        ({"details": {1, 2}}, "not JSON"),
    ],
)
def test_a_record_that_makes_no_message_is_refused(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=complaint):
        message_text(ENTRY | change)


LINE = message_text(ENTRY).encode()


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"<13>1 2026-12-06T13:00:00Z host sshd 22 - - Accepted publickey",
        b"<13>1 2026-12-06T13:00:00Z host gwvault 22 startup - gwvault started",
        b"Dec  6 13:00:00 host sshd[22]: Accepted publickey",
        b"\xff\xfe garbage",
    ],
)
def test_another_programs_line_is_none(line: bytes) -> None:
    assert gwvault_records(line) is None


def test_a_bare_json_record_line_is_read() -> None:
    from vault.format.audit_chain import canonical_json

    assert gwvault_records(canonical_json(ENTRY).encode() + b"\n") == ENTRY
    assert gwvault_records(b"\xef\xbb\xbf" + canonical_json(ENTRY).encode()) == ENTRY


HOSTILE = {
    "sd_seq_differs": LINE.replace(b'seq="12"', b'seq="13"'),
    "sd_hash_differs": LINE.replace(f'hash="{HEX}"'.encode(), b'hash="00"'),
    "sd_param_missing": LINE.replace(f' hash="{HEX}"'.encode(), b""),
    "sd_param_extra": LINE.replace(b' seq="12"', b' seq="12" x="1"'),
    "sd_param_repeated": LINE.replace(b' seq="12"', b' seq="12" seq="12"'),
    "sd_element_repeated": LINE.replace(b"] \xef", b'][gwvault@32473 type="entry"] \xef'),
    "sd_element_missing": LINE.replace(b"[gwvault@32473", b"[other@1"),
    "sd_unterminated": LINE[: LINE.index(b"]")],
    "sd_unescaped_quote": LINE.replace(b'seq="12"', b'seq="1"2"'),
    "sd_nil": LINE[: LINE.index(b"[")] + b"- " + LINE[LINE.index(b"\xef") :],
    "sd_not_utf8": LINE.replace(b'type="entry"', b'type="\xff"'),
    "msgid_differs": LINE.replace(b"audit-entry", b"audit-checkpoint"),
    "msg_missing": LINE[: LINE.index(b"] ") + 1],
    "msg_not_json": LINE[: LINE.index(b"\xef")] + b"\xef\xbb\xbfnot json",
    "msg_truncated": LINE[:-5],
    "msg_json_array": LINE[: LINE.index(b"\xef")] + b"[1,2]",
    "msg_repeated_member": LINE[:-1] + b',"seq":13}',
    "msg_lone_surrogate": LINE[:-1] + b',"x":"\\ud800"}',
    "msg_nan": LINE[:-1] + b',"x":NaN}',
    "msg_deep": LINE[: LINE.index(b"\xef")] + b"[" * 100_000,
    "msg_not_utf8": LINE[:-1] + b',"x":"\xc0\xaf"}',
    "sd_id_in_other_format": b"Dec  6 13:00:00 host gwvault: [gwvault@32473 seq=1]",
    "bare_json_not_a_record": b'{"hello": "world"}',
    "bare_json_broken": b'{"type": "entry", ',
    "bare_json_seq_float": b'{"type":"entry","gateway_id":"g","seq":1.5}',
    "too_long": LINE[:-1] + b',"x":"' + b"a" * (1 << 20) + b'"}',
}


@pytest.mark.parametrize("line", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_line_claiming_to_be_gwvaults_is_one_bounded_error(line: bytes) -> None:
    with pytest.raises(InvalidInputError) as raised:
        gwvault_records(line)
    assert len(str(raised.value)) < 120
    assert GATEWAY not in str(raised.value)


def test_the_size_limit_is_that_of_the_transport() -> None:
    # A record at the limit reads back; the reader's own bound is far above it.
    record = ENTRY | {"details": "x" * (MAX_MESSAGE_OCTETS - 600)}
    line = rfc5424_message(record, hostname="h", procid="1")
    assert len(line) < MAX_MESSAGE_OCTETS
    assert gwvault_records(line) == record


FUZZ = settings(
    max_examples=scaled(300, 20000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PRINTABLE = st.text(min_size=1, max_size=40).filter(str.isprintable)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RECORDS = st.fixed_dictionaries(
    {
        "type": st.from_regex(r"[a-z][a-z0-9_.-]{0,25}", fullmatch=True),
        "gateway_id": PRINTABLE,
        "seq": st.integers(min_value=0, max_value=2**63),
    },
    optional={
        "hash": PRINTABLE,
        "head": PRINTABLE,
        "details": JSON_VALUES,
        "at": st.text(max_size=30),
    },
)


@FUZZ
@given(record=RECORDS, hostname=st.text(max_size=300), procid=st.text(max_size=200))
def test_any_record_makes_a_valid_message_that_reads_back(
    record: dict[str, Any], hostname: str, procid: str
) -> None:
    line = rfc5424_message(record, hostname=hostname, procid=procid)
    assert SYSLOG_MSG.match(line.decode("utf-8")) is not None
    assert gwvault_records(line) == record


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from([LINE, message_text(CHECKPOINT).encode()])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and at < len(line):
            line[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            line[at:at] = draw(
                st.sampled_from([b'"', b"\\", b"]", b"[", b" ", b"=", b"\n", b"{", b"\xff"])
            )
        elif action == "delete":
            del line[at : at + draw(st.integers(1, 8))]
        else:
            del line[at:]
    return bytes(line)


@FUZZ
@given(line=mutated_lines() | st.binary(max_size=300))
def test_any_line_gives_a_record_none_or_one_invalid_input_error(line: bytes) -> None:
    try:
        record = gwvault_records(line)
    except InvalidInputError as e:
        assert len(str(e)) < 120
        return
    if record is not None:
        # What the reader accepts is a whole record: it makes a message again.
        assert gwvault_records(rfc5424_message(record, hostname="h", procid="1")) == record
