"""validate_data_source, TLS policies, server parsing and message redaction: no server needed."""

from __future__ import annotations

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from tests.tls_certificates import make_ca
from vault.connectors import dispatch
from vault.connectors.connection import ConnectionCredential
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.data_source import DataSource, DataSourceType, TlsMode

CA_PEM = canonical_ca_pem(make_ca("validation CA").pem)

BASIC = ConnectionCredential("basic", "alice", Secret.from_text("s3cret-pw"))
KEY = ConnectionCredential("key", None, Secret(b"t0k=="))
ANONYMOUS = ConnectionCredential("anonymous", None, None)

HOSTILE_SERVERS = [
    "",
    " ",
    "db.example.com ",
    "db example.com",
    "db.example.com\n",
    "db.example.com\r\nX-Injected: 1",
    "db\x00.example.com",
    "db\u200b.example.com",  # zero-width space (format character)
    "user:pw@db.example.com",
    "user@db.example.com:5432",
    "db.example.com:0",
    "db.example.com:70000",
    "db.example.com:",
    "db.example.com:abc",
    "db.example.com:+5",
    "db.example.com:5_0",
    "db.example.com:\u0665",  # Arabic-Indic digit five
    "[::1",
    "[::1]x",
    "[not-ipv6]:5432",
    "1:2:3",
    "/var/run/postgresql",
    "host1,host2",
    "-oProxyCommand=x",
    "a" * 300,
    "a" * 100_000,
]


@pytest.mark.parametrize("source_type", ["postgresql", "mysql", "sqlserver"])
@pytest.mark.parametrize("server", HOSTILE_SERVERS)
def test_database_server_refuses_hostile_strings(source_type: DataSourceType, server: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        dispatch.validate_data_source(DataSource(source_type, server), BASIC)
    assert "\n" not in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


@pytest.mark.parametrize(
    "server",
    [
        *[s for s in HOSTILE_SERVERS if s not in ("/var/run/postgresql",)],
        "ftp://files.example.com",
        "file:///etc/passwd",
        "javascript://x",
        "https://user:pw@api.example.com/",
        "https://token@api.example.com/",
        "http://",
        "https://api.example.com:99999/",
        "https://[::1/",
        "https://api.example.com/\tpath",
        "https://" + "a" * 3000 + ".com/",
    ],
)
def test_http_server_refuses_hostile_strings(server: str) -> None:
    with pytest.raises(InvalidInputError):
        dispatch.validate_data_source(DataSource("http", server), ANONYMOUS)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("db.example.com", ("db.example.com", 5432)),
        ("db.example.com:6543", ("db.example.com", 6543)),
        ("10.0.0.7:65535", ("10.0.0.7", 65535)),
        ("[::1]:5433", ("::1", 5433)),
        ("[fe80::1]", ("fe80::1", 5432)),
        ("::1", ("::1", 5432)),
        ("sql_server01", ("sql_server01", 5432)),
    ],
)
def test_parse_host_port(server: str, expected: tuple[str, int]) -> None:
    assert dispatch.parse_host_port(server, 5432) == expected


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("api.example.com", "https://api.example.com"),
        ("api.example.com:8443/v1", "https://api.example.com:8443/v1"),
        ("http://127.0.0.1:8080/health?x=1#frag", "http://127.0.0.1:8080/health?x=1"),
        ("HTTPS://[::1]:8443/", "https://[::1]:8443/"),
    ],
)
def test_http_url(server: str, url: str) -> None:
    assert dispatch.http_url(server) == url


@pytest.mark.parametrize(
    ("source", "credential", "complaint"),
    [
        (DataSource("sqlite", "/srv/a.db"), BASIC, "sqlite data source takes auth anonymous"),
        (DataSource("sqlite", "relative/a.db"), ANONYMOUS, "absolute path"),
        (DataSource("sqlite", "/srv/a\n.db"), ANONYMOUS, "control characters"),
        (DataSource("postgresql", "db"), ANONYMOUS, "takes auth basic only"),
        (DataSource("mysql", "db"), ConnectionCredential("key", None, Secret(b"k")), "basic"),
        (DataSource("mysql", "db"), ConnectionCredential("basic", None, Secret(b"k")), "user name"),
        (DataSource("postgresql", "db"), ConnectionCredential("basic", "bob", None), "secret"),
        (DataSource("postgresql", "db", "x\ny"), BASIC, "database name"),
        (DataSource("mysql", "db"), ConnectionCredential("basic", "a\nb", Secret(b"k")), "user"),
        (DataSource("http", "h"), ConnectionCredential("key", None, Secret(b"a b")), "token"),
        (DataSource("http", "h"), ConnectionCredential("key", None, Secret(b"a\r\nX: y")), "token"),
        (DataSource("http", "h"), ConnectionCredential("basic", "a:b", Secret(b"pw")), "':'"),
        (DataSource("http", "h"), ConnectionCredential("anonymous", "bob", None), "anonymous"),
        (DataSource("http", "h"), ConnectionCredential("anonymous", None, Secret(b"x")), "no"),
        (DataSource("http", "h"), ConnectionCredential("key", None, Secret(b"\xff")), "UTF-8"),
    ],
)
def test_impossible_combinations_are_refused(
    source: DataSource, credential: ConnectionCredential, complaint: str
) -> None:
    with pytest.raises(InvalidInputError, match=complaint):
        dispatch.validate_data_source(source, credential)


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        (DataSource("postgresql", "db", tls="verify-ca"), "verify-ca needs the CA"),
        (DataSource("postgresql", "db", tls="require", ca_pem=CA_PEM), "verifies nothing"),
        (DataSource("mysql", "db", tls="disable", ca_pem=CA_PEM), "verifies nothing"),
        (DataSource("mysql", "db", tls="bogus"), "TLS mode must be one of"),  # type: ignore[arg-type]
        (DataSource("mysql", "db", ca_pem=CA_PEM + "\n"), "canonical"),
        (DataSource("sqlite", "/srv/a.db", ca_pem=CA_PEM), "no TLS"),
        (DataSource("http", "http://api.example.com/"), "has no TLS"),
        (DataSource("http", "http://api.example.com/", tls="require"), "has no TLS"),
        (DataSource("http", "https://api.example.com/", tls="disable"), "needs a TLS mode"),
        (DataSource("http", "api.example.com", tls="disable"), "needs a TLS mode"),
    ],
)
def test_impossible_tls_policies_are_refused(source: DataSource, complaint: str) -> None:
    credential = ANONYMOUS if source.type in ("sqlite", "http") else BASIC
    with pytest.raises(InvalidInputError, match=complaint):
        dispatch.validate_data_source(source, credential)


@pytest.mark.parametrize(
    "source",
    [
        DataSource("http", "http://api.example.com/", tls="disable"),
        DataSource("http", "http://api.example.com/", tls="prefer"),  # a legacy row
        DataSource("http", "https://api.example.com/", tls="require"),
    ],
)
@pytest.mark.parametrize("credential", [BASIC, KEY])
def test_an_http_secret_goes_only_to_a_verified_server(
    source: DataSource, credential: ConnectionCredential
) -> None:
    # Basic and Bearer are the secret itself: unverified TLS would hand it to an impersonator.
    with pytest.raises(InvalidInputError, match="only to a server whose certificate is verified"):
        dispatch.validate_data_source(source, credential)
    dispatch.validate_data_source(source, ANONYMOUS)


@pytest.mark.parametrize("mode", ["verify-full", "verify-ca", "require", "disable", "prefer"])
def test_every_tls_mode_is_possible_for_a_database(mode: TlsMode) -> None:
    ca = CA_PEM if mode in ("verify-full", "verify-ca") else None
    dispatch.validate_data_source(DataSource("postgresql", "db", tls=mode, ca_pem=ca), BASIC)


@pytest.mark.parametrize(
    ("source", "credential"),
    [
        (DataSource("postgresql", "db.example.com:5432", "sales"), BASIC),
        (DataSource("mysql", "[2001:db8::5]:3307"), BASIC),
        (DataSource("sqlite", "/srv/data/my sales.db", tls="disable"), ANONYMOUS),
        (DataSource("http", "https://api.example.com/v1"), BASIC),
        (DataSource("http", "api.example.com", tls="verify-ca", ca_pem=CA_PEM), KEY),
        (DataSource("http", "http://10.1.2.3:8080/", tls="disable"), ANONYMOUS),
    ],
)
def test_possible_combinations_pass(source: DataSource, credential: ConnectionCredential) -> None:
    dispatch.validate_data_source(source, credential)


def test_bearer_refusal_does_not_quote_the_key(canary: str) -> None:
    credential = ConnectionCredential("key", None, Secret.from_text(canary + " \n"))
    with pytest.raises(InvalidInputError) as refused:
        dispatch.validate_data_source(DataSource("http", "api.example.com"), credential)
    assert canary not in str(refused.value)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(InvalidInputError, match="timeout"):
        dispatch.test_connection(DataSource("sqlite", "/nonexistent.db"), ANONYMOUS, timeout)


def test_redact_message_removes_every_form_and_collapses_lines(canary: str) -> None:
    message = f'FATAL:  password "{canary}" wrong\n  DETAIL: again {canary}\r\n\tend'
    assert dispatch.redact_message(message, [canary]) == (
        'FATAL: password "<redacted>" wrong DETAIL: again <redacted> end'
    )


def test_redact_message_finds_a_secret_split_across_lines() -> None:
    assert dispatch.redact_message("x pass\n  word y", ["pass\nword"]) == "x <redacted> y"


@pytest.mark.parametrize("secret", ["red", "dac", "<redacted>", "acted>", "ed"])
def test_redact_message_never_spells_a_secret_that_is_part_of_the_marker(secret: str) -> None:
    # Today's bug: a second form matched inside an earlier "<redacted>", and the
    # garbled result showed where the secret had been cut out of it.
    message = f"FATAL: password {secret!r} is wrong, {secret}"
    redacted = dispatch.redact_message(message, dispatch._secret_forms("alice", secret))
    assert "<<" not in redacted and ">>" not in redacted and "<redacted>acted" not in redacted
    if len(secret) >= dispatch.MIN_REDACTABLE_CHARS:
        assert redacted == "FATAL: password '<redacted>' is wrong, <redacted>"
    else:
        assert redacted == dispatch.WITHHELD  # the gaps would spell a short secret


def test_redact_message_takes_the_longest_form_first() -> None:
    forms = ["pass", "pass word"]
    assert dispatch.redact_message("a pass word b pass", forms) == "a <redacted> b <redacted>"


def test_redact_message_ignores_empty_forms_and_caps_length() -> None:
    assert dispatch.redact_message("a\nb", ["", "   "]) == "a b"
    long = dispatch.redact_message("x" * 5000, [])
    assert len(long) == dispatch.MAX_MESSAGE_CHARS and long.endswith("...")


def test_redaction_covers_quoted_and_http_basic_forms() -> None:
    password = "it's\\pw"
    forms = dispatch._secret_forms("alice", password)
    for shown in (password, "it\\'s\\\\pw", "YWxpY2U6aXQnc1xwdw=="):
        assert dispatch.redact_message(f"error near {shown}", forms) == "error near <redacted>"
