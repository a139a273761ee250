"""Connection strings: ADO.NET and URLs, strictly; a password in clear never echoed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_keys.errors import InvalidInputError
from vault.format.connection_string import (
    PLAINTEXT_REFUSED,
    ConnectionString,
    parse_connection_string,
)

TOKEN = "eyJhbGciOiJFQ0RILUVTIn0..aGVsbG8.d29ybGQ.dGFn"


def test_the_seeds_example() -> None:
    parsed = parse_connection_string(
        f"Data Source=srv;Initial Catalog=db;User ID=u;EncryptedCredential={TOKEN}"
    )
    assert (parsed.type, parsed.server, parsed.database, parsed.username) == (
        "sqlserver", "srv", "db", "u",
    )  # fmt: skip
    assert (parsed.tls, parsed.sealed, parsed.warnings, parsed.password) == (
        "verify-full", TOKEN, (), None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "server", "database", "user"),
    [
        ("server = tcp:db.example.com , 1433 ; DATABASE=sales;uid=alice", "db.example.com:1433",
         "sales", "alice"),
        ("Address=10.0.0.5,14330;User Id='a;b''c';Database=\"x\"\"y\";", "10.0.0.5:14330",
         'x"y', "a;b'c"),
        ("Network Address=::1,1433;Addr=x", None, None, None),  # two servers
        ("ADDR=db;USER=bob;Application Name=report;Connect Timeout=30", "db", None, "bob"),
        ("Data Source=db;Provider=MSOLEDBSQL19;Integrated Security=false", "db", None, None),
        ("Data Source=fd00::5,1433", "[fd00::5]:1433", None, None),
    ],
)  # fmt: skip
def test_ado_net_keys_synonyms_and_quoting(
    text: str, server: str | None, database: str | None, user: str | None
) -> None:
    if server is None:
        with pytest.raises(InvalidInputError, match="same setting twice"):
            parse_connection_string(text)
        return
    parsed = parse_connection_string(text)
    assert (parsed.server, parsed.database, parsed.username) == (server, database, user)


@pytest.mark.parametrize(
    ("settings", "tls", "warned"),
    [
        ("", "verify-full", False),
        (";Encrypt=Mandatory", "verify-full", False),
        (";Encrypt=false", "verify-full", True),  # gwvault encrypts anyway: never weaker
        (";TrustServerCertificate=true", "require", True),
        (";Encrypt=strict;TrustServerCertificate=true", "verify-full", False),
    ],
)
def test_ado_net_tls_is_never_weaker_than_asked(settings: str, tls: str, warned: bool) -> None:
    parsed = parse_connection_string(f"Data Source=db{settings}")
    assert parsed.tls == tls
    assert bool(parsed.warnings) == warned


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://al%40ice@db.example.com:6432/sa%20les?sslmode=verify-ca",
         ("postgresql", "db.example.com:6432", "sa les", "al@ice", "verify-ca")),
        ("postgres://bob@db", ("postgresql", "db", None, "bob", "verify-full")),
        ("postgresql://bob@db/x?sslmode=prefer", ("postgresql", "db", "x", "bob", "require")),
        ("mysql://bob@[::1]:3306/db?ssl-mode=VERIFY_IDENTITY",
         ("mysql", "[::1]:3306", "db", "bob", "verify-full")),
        ("mariadb://bob@db/x?ssl-mode=disabled", ("mysql", "db", "x", "bob", "disable")),
    ],
)  # fmt: skip
def test_urls(text: str, expected: tuple[str, ...]) -> None:
    parsed = parse_connection_string(
        f"{text}{'&' if '?' in text else '?'}encrypted_credential={TOKEN}"
    )
    assert (parsed.type, parsed.server, parsed.database, parsed.username, parsed.tls) == expected
    assert parsed.sealed == TOKEN


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Data Source", "without '='"),
        ("Data Source=db;;User ID=u", "without a key"),
        ("=db", "without a key"),
        ("Data Source='db", "never closed"),
        ("Data Source='db'x", "after a closing quote"),
        ("Data Source=db;Data Source=db", "same setting twice"),
        ("Data Source=db;Colour=blue;Shape=round", "'colour', 'shape'"),
        ("Data Source=db;HostNameInCertificate=other", "'hostnameincertificate'"),
        ("Data Source=db\\SQLEXPRESS", "named instances"),
        ("Data Source=db,", "HOST,PORT"),
        ("Data Source=db;Provider=Npgsql", "postgresql://"),
        ("Data Source=db;Integrated Security=SSPI", "Windows"),
        ("Data Source=db;Trusted_Connection=maybe", "Integrated Security must"),
        ("Data Source=db;Encrypt=sometimes", "Encrypt must"),
        ("Data Source=db;TrustServerCertificate=1", "TrustServerCertificate must"),
        ("Data Source=db;Initial Catalog=", "database is empty"),
        ("Initial Catalog=x", "names no server"),
        ("Data Source=db\n", "control"),
        ("Data Source=d\u200bb", "control"),
        ("x" * 40_000, "longer than"),
        ("http://db/x", "must start with postgresql://"),
        ("postgresql://bob@db/x#frag", "fragment"),
        ("postgresql://bob@db/x/y", "one database name"),
        ("postgresql://bob@db/x?sslmode=allowed", "sslmode must"),
        ("postgresql://bob@db/x?sslrootcert=/tmp/ca.pem", "'sslrootcert'"),
        ("postgresql://bob@db/x?sslmode", "KEY=VALUE"),
        ("postgresql://bob@db/x?sslmode=require&sslmode=disable", "twice"),
        ("mysql://bob@db/x?sslmode=require", "'sslmode'"),
        ("mysql://bob@db:/x", "no port"),
        ("mysql://bob@/x", "no host"),
        ("mysql://b%zzob@db/x", "%XX"),
        ("mysql://b%ffob@db/x", "UTF-8"),
        ("mysql://bob@[::1/x", "IPv6"),
        ("mysql://bob@a:b:c/x", "malformed"),
    ],
)
def test_hostile_strings_get_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_connection_string(text)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "template",
    [
        "Data Source=db;User ID=u;Password={pw}",
        "Data Source=db;PWD='{pw}';Encrypt=true",
        "data source=db;password = {pw} ;x{pw}=1",
        "Data Source=db;Password={pw};{pw}=1",
        "Data Source=db;Password={pw};Data Source=x",
        "postgresql://u:{pw}@db/x",
        "postgresql://u:{pw}@db/x?{pw}=1",
        "mysql://u:{pw}@db:3306/x?ssl-mode=required",
    ],
)
def test_a_password_in_clear_is_refused_with_how_to_seal_it_and_never_echoed(
    template: str, canary: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_connection_string(template.format(pw=canary))
    assert str(refused.value) == PLAINTEXT_REFUSED
    assert "gwvault encrypt-value" in str(refused.value)
    assert canary not in repr(refused.value)
    assert refused.value.__cause__ is None and refused.value.__context__ is None


@pytest.mark.parametrize(
    "template",
    [
        "Data Source=db;Password={pw};{pw}=1",
        "Data Source=db;Password={pw};Data Source=x",
        "Data Source=db;Password={pw}x;{pw}",
        "postgresql://u:{pw}@db/x?{pw}=1",
    ],
)
def test_the_sealing_parse_names_no_key_when_a_password_is_there(
    template: str, canary: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_connection_string(template.format(pw=canary), allow_password=True)
    assert canary not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "sealed"),
    [
        ("Data Source=db;User ID=u;PWD='p;w''x';Encrypt=yes",
         f"Data Source=db;User ID=u;EncryptedCredential={TOKEN};Encrypt=yes"),
        ("Data Source=db;Password=pw", f"Data Source=db;EncryptedCredential={TOKEN}"),
        ("postgresql://u:p%40ss@h:5/db?sslmode=verify-full",
         f"postgresql://u@h:5/db?sslmode=verify-full&encrypted_credential={TOKEN}"),
        ("mysql://u:pw@h", f"mysql://u@h?encrypted_credential={TOKEN}"),
    ],
)  # fmt: skip
def test_sealing_replaces_the_password_and_keeps_the_rest(text: str, sealed: str) -> None:
    parsed = parse_connection_string(text, allow_password=True)
    assert parsed.password is not None
    assert parsed.with_sealed(TOKEN) == sealed
    again = parse_connection_string(sealed)
    assert (again.type, again.server, again.database, again.username, again.tls) == (
        parsed.type, parsed.server, parsed.database, parsed.username, parsed.tls,
    )  # fmt: skip
    assert again.sealed == TOKEN and again.password is None


def test_the_password_is_a_secret_that_no_repr_shows(canary: str) -> None:
    parsed = parse_connection_string(f"Data Source=db;Password='{canary}'", allow_password=True)
    assert parsed.password is not None and parsed.password.reveal_text() == canary
    assert canary not in repr(parsed)


# Any text: one InvalidInputError or a result, never another exception.
@given(
    st.text(
        alphabet=st.characters(max_codepoint=0x3FF) | st.sampled_from(";='\"%@:/?#[]"), max_size=120
    )
)
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    _parse_or_refuse(text)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Data Source", "server", "UID", "Password", "Encrypt", "x", " "]),
            st.text(alphabet=st.sampled_from("ab;='\" ,\\:x"), max_size=12),
        ),
        max_size=6,
    )
)
def test_ado_net_shaped_text_parses_or_is_refused_cleanly(pairs: list[tuple[str, str]]) -> None:
    text = ";".join(f"{key}={value}" for key, value in pairs)
    _parse_or_refuse(text)
    _parse_or_refuse(text, allow_password=True)


@given(
    scheme=st.sampled_from(["postgresql", "postgres", "mysql", "mariadb", "oracle", "PostgreSQL"]),
    rest=st.text(alphabet=st.sampled_from("ab:@/?#&=%[]1.-_\\ é"), max_size=40),
)
def test_url_shaped_text_parses_or_is_refused_cleanly(scheme: str, rest: str) -> None:
    _parse_or_refuse(f"{scheme}://{rest}")
    _parse_or_refuse(f"{scheme}://{rest}", allow_password=True)


def _parse_or_refuse(text: str, *, allow_password: bool = False) -> ConnectionString | None:
    try:
        return parse_connection_string(text, allow_password=allow_password)
    except InvalidInputError as refused:
        assert "\n" not in str(refused)
        return None


_VALUE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("C", "Z")) | st.sampled_from(" ;'\""),
    min_size=1,
    max_size=20,
).filter(lambda v: v.strip() == v and v.strip())


@given(database=_VALUE, user=_VALUE, password=_VALUE, quote=st.sampled_from("'\""))
def test_quoted_values_round_trip(database: str, user: str, password: str, quote: str) -> None:
    def quoted(value: str) -> str:
        return quote + value.replace(quote, quote * 2) + quote

    text = (
        f"Data Source=db.example.com,1433;Initial Catalog={quoted(database)};"
        f"User ID={quoted(user)};Password={quoted(password)}"
    )
    parsed = parse_connection_string(text, allow_password=True)
    assert (parsed.database, parsed.username) == (database, user)
    assert parsed.password is not None and parsed.password.reveal_text() == password
    sealed = parse_connection_string(parsed.with_sealed(TOKEN))
    assert (sealed.server, sealed.database, sealed.username) == (
        "db.example.com:1433",
        database,
        user,
    )
    assert sealed.sealed == TOKEN
    with pytest.raises(InvalidInputError) as refused:
        parse_connection_string(text)
    assert password not in str(refused.value) or password in PLAINTEXT_REFUSED
