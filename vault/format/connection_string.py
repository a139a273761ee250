"""Connection strings, as users already have them: ADO.NET (SQL Server) and URLs.

    Data Source=srv[,PORT];Initial Catalog=db;User ID=u;EncryptedCredential=...
    postgresql://USER@HOST[:PORT]/DB?sslmode=verify-full&encrypted_credential=...
    mysql://USER@HOST[:PORT]/DB?ssl-mode=VERIFY_IDENTITY&encrypted_credential=...

``parse_connection_string`` yields the data source (type, server, database,
TLS mode), the user name and the EncryptedCredential.  An ADO.NET string is
SQL Server's syntax (SqlClient's keys and quoting), so its type is sqlserver;
a ``Provider`` key is accepted only when it names a SQL Server provider: for
PostgreSQL and MySQL use their URLs.

Strict, because what it yields decides where a secret may go: keys are
case-insensitive, every key is known (an unknown one is refused by name, a
repeated one too), values quoted ADO.NET's way ('...' or "..." with the quote
doubled inside), no control characters.  The TLS mode is never weaker than the
string asks (a libpq ``prefer`` becomes require: no silent fallback to clear),
and the weak ones come with a warning.  A password in clear (``Password=``,
``PWD=``, a URL's ``user:password@``) is refused with how to seal it, unless
the caller is the sealing command (``allow_password``); then it is a
``Secret``.  No message here ever quotes a value, and a key is named only when
the string holds no password (a password with a ``;`` in it would otherwise
split into "keys").  Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from vault.format.data_source import (
    DataSource,
    DataSourceType,
    TlsMode,
    parse_tls_mode,
    weakens_tls,
)
from vault.format.encrypted_credential import MAX_TOKEN_CHARS

MAX_CONNECTION_STRING_CHARS = MAX_TOKEN_CHARS + 4096
SEAL_HINT = (
    "seal it for the gateway first, from a file (mode 0600) or standard input, never the"
    " command line: gwvault encrypt-value --cert gateway.pem --name NAME"
    " --connection-string-file FILE, and use the string it prints"
)
PLAINTEXT_REFUSED = (
    "the connection string holds a password in clear; gwvault stores a secret only sealed: "
    + SEAL_HINT
)
SEALED_KEY = "EncryptedCredential"
URL_SEALED_KEY = "encrypted_credential"

# SqlClient's keys and synonyms, lower-case with single spaces.
_ADO_KEYS: dict[str, str] = {
    **dict.fromkeys(("data source", "server", "address", "addr", "network address"), "server"),
    **dict.fromkeys(("initial catalog", "database"), "database"),
    **dict.fromkeys(("user id", "uid", "user"), "user"),
    **dict.fromkeys(("password", "pwd"), "password"),
    "encryptedcredential": "sealed",
    "encrypt": "encrypt",
    "trustservercertificate": "trust",
    "provider": "provider",
    **dict.fromkeys(("integrated security", "trusted_connection"), "integrated"),
    # Session settings a connection string often carries and a credential does
    # not keep: accepted, not stored (the string gwvault prints keeps them).
    **dict.fromkeys(
        (
            "application name", "app", "connect timeout", "connection timeout", "timeout",
            "multipleactiveresultsets", "persist security info", "persistsecurityinfo",
            "pooling", "min pool size", "max pool size", "workstation id", "wsid",
        ),
        "ignored",
    ),
}  # fmt: skip
_TRUE = frozenset({"true", "yes"})
_FALSE = frozenset({"false", "no"})
_SSPI = frozenset({"true", "yes", "sspi"})
_SQLSERVER_PROVIDERS = re.compile(r"(sqloledb|sqlncli[0-9.]*|msoledbsql[0-9]*)(\.[0-9]+)?")
_URL_SCHEMES: dict[str, DataSourceType] = {
    "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql",
}  # fmt: skip
_LIBPQ_MODES: dict[str, TlsMode] = {
    "disable": "disable", "allow": "require", "prefer": "require", "require": "require",
    "verify-ca": "verify-ca", "verify-full": "verify-full",
}  # fmt: skip
_MYSQL_MODES: dict[str, TlsMode] = {
    "disabled": "disable", "preferred": "require", "required": "require",
    "verify_ca": "verify-ca", "verify_identity": "verify-full",
}  # fmt: skip
_URL_TLS_KEY: dict[DataSourceType, str] = {"postgresql": "sslmode", "mysql": "ssl-mode"}
_URL_IGNORED = frozenset({"application_name", "connect_timeout"})
_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class ConnectionString:
    """What a connection string says, checked.  ``server`` is ``HOST[:PORT]``."""

    type: DataSourceType
    server: str
    database: str | None
    username: str | None
    tls: TlsMode
    sealed: str | None
    warnings: tuple[str, ...] = ()
    password: Secret | None = field(default=None, repr=False)
    # The password's place in the text: [start, end) to cut (encrypt-value).
    _password_span: tuple[int, int] | None = field(default=None, repr=False)
    _text: str = field(default="", repr=False)

    def data_source(self, *, tls: str | None = None, ca_pem: str | None = None) -> DataSource:
        """The target the string names, with ``tls`` (a mode that must not be
        weaker than the string's) and the canonical ``ca_pem`` a verifying mode
        trusts, when given; ``InvalidInputError`` for a weaker mode."""
        source = DataSource(self.type, self.server, self.database, tls=self.tls, ca_pem=ca_pem)
        if tls is None:
            return source
        chosen = replace(source, tls=parse_tls_mode(tls))
        if weakens_tls(replace(source, ca_pem=None), replace(chosen, ca_pem=None)):
            raise InvalidInputError(
                f"the connection string asks for TLS mode {self.tls}; {tls} is weaker, and"
                " gwvault never takes less than the string asks"
            )
        return chosen

    def with_sealed(self, token: str) -> str:
        """The original string with its password replaced by ``token`` (the
        sealed credential), or ``token`` added when it holds none; everything
        else kept as the user wrote it."""
        if self.sealed is not None:
            raise InvalidInputError("the connection string is sealed already (EncryptedCredential)")
        start, end = self._password_span or (len(self._text), len(self._text))
        if self.type == "sqlserver":
            before = self._text[:start]
            if (
                self._password_span is None
                and before.rstrip()
                and not before.rstrip().endswith(";")
            ):
                before += ";"
            return f"{before}{SEALED_KEY}={token}{self._text[end:]}"
        text = self._text[:start] + self._text[end:]
        return f"{text}{'&' if '?' in text else '?'}{URL_SEALED_KEY}={token}"


def parse_connection_string(text: str, *, allow_password: bool = False) -> ConnectionString:
    """Parse an ADO.NET string or a postgresql:// or mysql:// URL.

    Raises ``InvalidInputError`` (one line, quoting no value) for anything
    malformed, unknown or repeated, and for a password in clear unless
    ``allow_password``.  A sealed string may hold no password as well.
    """
    if not text or text.isspace():
        raise InvalidInputError("the connection string is empty")
    if len(text) > MAX_CONNECTION_STRING_CHARS:
        raise InvalidInputError(
            f"the connection string is longer than {MAX_CONNECTION_STRING_CHARS} characters"
        )
    if any(not ch.isprintable() for ch in text):
        raise InvalidInputError("the connection string contains control or invisible characters")
    if _URL_START.match(text):
        return _parse_url(text, allow_password)
    return _parse_ado(text, allow_password)


def _parse_ado(text: str, allow_password: bool) -> ConnectionString:
    pairs = _ado_pairs(text)
    has_password = any(_ADO_KEYS.get(key) == "password" for key, *_ in pairs)
    if has_password and not allow_password:
        raise InvalidInputError(PLAINTEXT_REFUSED)
    unknown = [key for key, *_ in pairs if key not in _ADO_KEYS]
    if unknown:
        raise InvalidInputError(_unknown_keys(unknown, has_password, "an ADO.NET"))
    found: dict[str, tuple[str, str, tuple[int, int]]] = {}
    for key, value, span in pairs:
        meaning = _ADO_KEYS[key]
        if meaning in found and meaning != "ignored":
            raise InvalidInputError(_repeated(key, found[meaning][0], has_password))
        found[meaning] = (key, value, span)
    values = {meaning: value for meaning, (_, value, _) in found.items()}
    _check_provider(values.get("provider"))
    if values.get("integrated", "false").lower() in _SSPI:
        raise InvalidInputError(
            "Integrated Security (Windows logins) is not supported; use a SQL Server login"
        )
    if values.get("integrated", "false").lower() not in _FALSE:
        raise InvalidInputError("Integrated Security must be true, false, yes, no or sspi")
    if "server" not in values:
        raise InvalidInputError("the connection string names no server (Data Source=...)")
    tls, warnings = _sqlserver_tls(values.get("encrypt"), values.get("trust"))
    password = values.get("password")
    if password is not None and not password:
        raise InvalidInputError("the connection string's password is empty")
    return ConnectionString(
        type="sqlserver",
        server=_sqlserver_server(values["server"]),
        database=_optional(values.get("database"), "database"),
        username=_optional(values.get("user"), "user name"),
        tls=tls,
        sealed=_optional(values.get("sealed"), SEALED_KEY),
        warnings=warnings,
        password=Secret.from_text(password) if password else None,
        _password_span=found["password"][2] if "password" in found else None,
        _text=text,
    )


def _ado_pairs(text: str) -> list[tuple[str, str, tuple[int, int]]]:
    """``key=value`` pairs: the key normalised, the value unquoted, the pair's span."""
    pairs: list[tuple[str, str, tuple[int, int]]] = []
    i, end = 0, len(text)
    while i < end:
        start = i
        equals = text.find("=", i)
        if equals < 0:
            raise InvalidInputError(
                f"the connection string has text without '=' at character {i + 1}; write"
                " KEY=VALUE pairs separated by ';'"
            )
        raw_key = text[i:equals]
        if ";" in raw_key or not raw_key.strip():
            raise InvalidInputError(
                f"the connection string has a pair without a key at character {i + 1}"
            )
        key = " ".join(raw_key.split()).lower()
        i = equals + 1
        while i < end and text[i] in " \t":
            i += 1
        if i < end and text[i] in "'\"":
            value, i = _quoted(text, i)
            while i < end and text[i] in " \t":
                i += 1
            if i < end and text[i] != ";":
                raise InvalidInputError(
                    f"the connection string has text after a closing quote at character {i + 1}"
                )
        else:
            stop = text.find(";", i)
            stop = end if stop < 0 else stop
            value, i = text[i:stop].strip(), stop
        pairs.append((key, value, (start, i)))
        if i < end:  # at a ';'
            i += 1
            if i < end and not text[i:].strip():
                break  # one trailing ';' and spaces
    return pairs


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The value quoted at ``text[i]`` (a doubled quote stands for one) and the
    index after its closing quote."""
    quote, i, parts = text[i], i + 1, []
    while True:
        close = text.find(quote, i)
        if close < 0:
            raise InvalidInputError("the connection string has a quote that is never closed")
        parts.append(text[i:close])
        if text[close + 1 : close + 2] == quote:
            parts.append(quote)
            i = close + 2
            continue
        return "".join(parts), close + 1


def _check_provider(provider: str | None) -> None:
    if provider is not None and not _SQLSERVER_PROVIDERS.fullmatch(provider.lower()):
        raise InvalidInputError(
            "an ADO.NET connection string is read as SQL Server's; its Provider must be a"
            " SQL Server one (MSOLEDBSQL, SQLNCLI, SQLOLEDB); for PostgreSQL or MySQL give a"
            " postgresql:// or mysql:// URL"
        )


def _sqlserver_tls(encrypt: str | None, trust: str | None) -> tuple[TlsMode, tuple[str, ...]]:
    """SqlClient's Encrypt and TrustServerCertificate as a TLS mode, never weaker.

    gwvault encrypts every SQL Server connection, so Encrypt=false asks for less
    than it gets.  Encrypt=strict always verifies (TDS 8), whatever
    TrustServerCertificate says.
    """
    encrypt_value = (encrypt or "true").lower()
    if encrypt_value not in _TRUE | _FALSE | {"mandatory", "optional", "strict"}:
        raise InvalidInputError(
            "Encrypt must be true, false, yes, no, mandatory, optional or strict"
        )
    trust_value = (trust or "false").lower()
    if trust_value not in _TRUE | _FALSE:
        raise InvalidInputError("TrustServerCertificate must be true, false, yes or no")
    warnings: list[str] = []
    if encrypt_value in _FALSE | {"optional"}:
        warnings.append(
            f"Encrypt={encrypt} is taken as Encrypt=true: gwvault encrypts every SQL Server"
            " connection"
        )
    if encrypt_value == "strict":
        return "verify-full", tuple(warnings)
    if trust_value in _TRUE:
        warnings.append(_UNVERIFIED.format(what="TrustServerCertificate=true"))
        return "require", tuple(warnings)
    return "verify-full", tuple(warnings)


_UNVERIFIED = (
    "{what} means TLS mode require: encrypted, but the server's certificate is not"
    " checked, so an impersonator is not stopped; a SQL Server login is refused under it"
    " (give the server's CA with --tls-ca and --tls verify-ca instead)"
)


def _sqlserver_server(server: str) -> str:
    """``srv[,PORT]`` (a ``tcp:`` prefix allowed) as ``HOST[:PORT]``; no named instances."""
    if server.lower().startswith("tcp:"):
        server = server[4:]
    if "\\" in server:
        raise InvalidInputError(
            "named instances (server\\instance) need the SQL Browser service, which gwvault"
            " does not ask; give the instance's port instead: Data Source=server,PORT"
        )
    host, comma, port = server.partition(",")
    host, port = host.strip(), port.strip()
    if not host or (comma and not port):
        raise InvalidInputError("the server must be HOST or HOST,PORT")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, as HOST[:PORT] writes it
    return f"{host}:{port}" if comma else host


def _parse_url(text: str, allow_password: bool) -> ConnectionString:
    scheme, _, rest = text.partition("://")
    source_type = _URL_SCHEMES.get(scheme.lower())
    if source_type is None:
        raise InvalidInputError(
            "a connection URL must start with postgresql://, postgres://, mysql:// or"
            " mariadb://; for SQL Server give an ADO.NET string (Data Source=...)"
        )
    if "#" in rest:
        raise InvalidInputError("a connection URL takes no #fragment")
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, after = rest[:authority_end], rest[authority_end:]
    userinfo, at, hostport = authority.rpartition("@")
    user, colon, password_text = userinfo.partition(":")
    if colon and not allow_password:
        raise InvalidInputError(PLAINTEXT_REFUSED)
    has_password = bool(colon)
    path, _, query_text = after.partition("?")
    if path.count("/") > 1:
        raise InvalidInputError("a connection URL's path is one database name: /DATABASE")
    query = _url_query(query_text, source_type, has_password=has_password)
    tls, warnings = _url_tls(source_type, query.get(_URL_TLS_KEY[source_type]))
    password = _decoded(password_text, "password") if colon else None
    if colon and not password:
        raise InvalidInputError("the connection URL's password is empty")
    start = len(scheme) + 3 + len(user)
    return ConnectionString(
        type=source_type,
        server=_url_server(hostport),
        database=_optional(_decoded(path[1:], "database"), "database") if path else None,
        username=_optional(_decoded(user, "user name"), "user name") if at else None,
        tls=tls,
        sealed=_optional(query.get(URL_SEALED_KEY), URL_SEALED_KEY),
        warnings=warnings,
        password=Secret.from_text(password) if password else None,
        _password_span=(start, start + 1 + len(password_text)) if colon else None,
        _text=text,
    )


def _url_server(hostport: str) -> str:
    """``HOST[:PORT]`` or ``[IPV6][:PORT]`` of a URL, the host percent-decoded."""
    if hostport.startswith("["):
        host, bracket, port_part = hostport.partition("]")
        host += bracket
        if not bracket or (port_part and not port_part.startswith(":")):
            raise InvalidInputError("the connection URL has a malformed [IPv6] host")
        port = port_part[1:] if port_part else None
    else:
        if hostport.count(":") > 1:
            raise InvalidInputError("the connection URL's host is malformed; write [IPV6]:PORT")
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
        host = _decoded(host, "host")
    if not host:
        raise InvalidInputError("the connection URL names no host")
    if port is not None and not port:
        raise InvalidInputError("the connection URL has ':' and no port")
    return f"{host}:{port}" if port is not None else host


def _url_query(query: str, source_type: DataSourceType, has_password: bool) -> dict[str, str]:
    known = {_URL_TLS_KEY[source_type], URL_SEALED_KEY} | _URL_IGNORED
    found: dict[str, str] = {}
    unknown: list[str] = []
    for pair in query.split("&") if query else []:
        key, equals, value = pair.partition("=")
        key = _decoded(key, "option name")
        if not equals:
            raise InvalidInputError("every option of a connection URL is KEY=VALUE")
        if key not in known:
            unknown.append(key)
            continue
        if key in found:
            raise InvalidInputError(_repeated(key, key, has_password))
        found[key] = _decoded(value, "option")
    if unknown:
        raise InvalidInputError(_unknown_keys(unknown, has_password, f"a {source_type} URL"))
    return found


def _url_tls(source_type: DataSourceType, given: str | None) -> tuple[TlsMode, tuple[str, ...]]:
    """libpq's sslmode or MySQL's ssl-mode as a TLS mode, never weaker than asked;
    none given means gwvault's default, verify-full."""
    key = _URL_TLS_KEY[source_type]
    modes = _LIBPQ_MODES if source_type == "postgresql" else _MYSQL_MODES
    if given is None:
        return "verify-full", ()
    mode = modes.get(given.lower() if source_type == "mysql" else given)
    if mode is None:
        raise InvalidInputError(f"{key} must be one of {', '.join(modes)}")
    warnings: list[str] = []
    if mode == "require":
        taken = (
            ""
            if given.lower() in ("require", "required")
            else " (taken as require: no fallback to clear)"
        )
        warnings.append(
            f"{key}={given}{taken} means TLS mode require: encrypted, but the server's"
            " certificate is not checked, so an impersonator is not stopped"
        )
    return mode, tuple(warnings)


def _decoded(text: str, what: str) -> str:
    """Percent-decoded, strictly: a stray '%' or bytes that are not UTF-8 are refused."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise InvalidInputError(f"the connection URL's {what} has a '%' that is not %XX")
    raw = bytearray()
    for part in _ESCAPE.split(text):  # urllib is I/O to this package's layering
        raw += bytes([int(part[1:], 16)]) if _ESCAPE.fullmatch(part) else part.encode("utf-8")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"the connection URL's {what} is not UTF-8") from None
    if not decoded.isprintable():
        raise InvalidInputError(f"the connection URL's {what} has control characters")
    return decoded


def _optional(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value:
        raise InvalidInputError(f"the connection string's {what} is empty; leave the key out")
    return value


def _unknown_keys(keys: list[str], has_password: bool, kind: str) -> str:
    if has_password:
        return (
            f"{kind} connection string has {len(keys)} key(s) gwvault does not know (not named:"
            " the string holds a password, which they may be part of)"
        )
    names = ", ".join(sorted({repr(k[:40]) for k in keys}))
    return f"{kind} connection string has key(s) gwvault does not know: {names}"


def _repeated(key: str, first: str, has_password: bool) -> str:
    if has_password:
        return "the connection string gives the same setting twice"
    return f"the connection string gives the same setting twice ({first!r} and {key!r})"
