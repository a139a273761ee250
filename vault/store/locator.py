"""Where a vault's database is: the data dir's SQLite file, or a shared PostgreSQL.

A cluster member's data dir holds ``cluster.json`` (0600): the libpq conninfo
of the shared database, this member's id and the highest cluster epoch it has
seen.  Without it the vault is the data dir's ``vault.db``.

The store's password is never in a command line, the conninfo or this file
(threat T-CL-5): it comes from a libpq service file or password file the admin
names in the URL, or from ``--store-password-file`` (0600), which is copied to
the data dir's own libpq password file ``store.pgpass`` (0600) that the
conninfo names.  A URL that carries a password is refused, as is a remote
database reached without a verified TLS certificate.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_keys.errors import InvalidInputError, StorageError
from agent_keys.private_files import read_private_file, replace_private_file
from agent_keys.secret import Secret
from vault.format.strict_json import parse_json_object

STORE_ENV = "GWVAULT_STORE"
CLUSTER_FILE = "cluster.json"
STORE_PASSWORD_FILE = "store.pgpass"  # noqa: S105 - a file name
_MAX_CLUSTER_FILE = 16 * 1024
_MAX_PASSWORD = 1024
_URL_SCHEMES = ("postgresql://", "postgres://")
_VERIFIED_TLS = ("verify-full",)
# Conninfo keys that hold a secret (shown to every local user in the process list).
_REFUSED_KEYS = {"password": "a password", "sslpassword": "a key password"}


@dataclass(frozen=True)
class PostgresLocation:
    """A shared PostgreSQL database, as a libpq conninfo with no password in it."""

    conninfo: str

    @property
    def display(self) -> str:
        """host:port/dbname as user, for messages and status (never a password)."""
        params = _libpq().conninfo_to_dict(self.conninfo)
        hosts = str(params.get("host", "")).split(",")
        ports = _padded(str(params.get("port", "")).split(","), len(hosts))
        where = ",".join(f"{h}:{p}" if p else h for h, p in zip(hosts, ports, strict=True))
        return f"postgresql://{params.get('user', '')}@{where}/{params.get('dbname', '')}"


def _padded(values: list[str], n: int) -> list[str]:
    return values if len(values) == n else [values[0] if values else ""] * n


def parse_store_url(url: str, flag: str = "--store") -> PostgresLocation:
    """``--store`` (or ``GWVAULT_STORE``, or the ``flag`` named in messages): a
    ``postgresql://`` URL or libpq conninfo.

    Refused with one clear message: a password in it (it would sit in the
    process list and the shell history), an unparsable URL, a remote host
    without ``sslmode=verify-full``.
    """
    text = url.strip()
    if not text:
        raise InvalidInputError(f"{flag} is empty; give a postgresql:// URL")
    if "://" in text and not text.startswith(_URL_SCHEMES):
        raise InvalidInputError(f"{flag} must be a postgresql:// URL (or a libpq conninfo)")
    try:
        params = _libpq().conninfo_to_dict(text)
    except Exception:
        # libpq's words can quote a piece of the URL (a password typed as a
        # bare word): they are not repeated.
        raise InvalidInputError(
            f"{flag} is not a PostgreSQL URL libpq can read; check its syntax:"
            " postgresql://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=CA.pem"
        ) from None
    for key, what in _REFUSED_KEYS.items():
        if params.get(key):
            raise InvalidInputError(
                f"{flag} carries {what}; never put it in a URL (it shows in the process list)."
                " Use --store-password-file F (mode 0600), a libpq service file, or a passfile="
            )
    if not params.get("dbname"):
        raise InvalidInputError(f"{flag} names no database; add one: postgresql://USER@HOST/DB")
    # hostaddr, when given, is where libpq connects (host then only names it).
    hosts = [h for key in ("host", "hostaddr") for h in str(params.get(key, "")).split(",") if h]
    remote = [h for h in hosts if not _is_local(h)]
    if remote and params.get("sslmode") not in _VERIFIED_TLS:
        raise InvalidInputError(
            f"{flag} reaches {remote[0]} without a verified TLS certificate; add"
            " sslmode=verify-full&sslrootcert=CA.pem (the store holds every wrapped key)"
        )
    params.setdefault("connect_timeout", "10")
    return _location(params)


def _is_local(host: str) -> bool:
    if host.startswith("/") or host == "localhost":
        return True  # a Unix socket, or the loopback name
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_password_file(
    location: PostgresLocation, data_dir: Path, password: Secret | None
) -> PostgresLocation:
    """The location whose conninfo names the data dir's libpq password file,
    written (0600) with ``password`` for any host; unchanged without one."""
    if password is None:
        return location
    try:
        raw = password.reveal().decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidInputError("the store password must be UTF-8 text") from None
    if not raw or len(raw) > _MAX_PASSWORD or any(c in raw for c in "\r\n\0"):
        raise InvalidInputError("the store password file must hold one line of 1-1024 characters")
    escaped = raw.replace("\\", "\\\\").replace(":", "\\:")
    path = data_dir / STORE_PASSWORD_FILE
    try:
        replace_private_file(path, f"*:*:*:*:{escaped}\n".encode())
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}") from e
    params = _libpq().conninfo_to_dict(location.conninfo)
    params["passfile"] = str(path.resolve())
    return _location(params)


@dataclass(frozen=True)
class ClusterMembership:
    """What a member's data dir says about its cluster (``cluster.json``)."""

    store: PostgresLocation
    member_id: str
    epoch: int

    def to_json(self) -> bytes:
        body = {"store": self.store.conninfo, "member_id": self.member_id, "epoch": self.epoch}
        return json.dumps(body, indent=2).encode() + b"\n"


def read_membership(data_dir: Path) -> ClusterMembership | None:
    """The data dir's cluster file, checked (0600, ours, no symlink), or None."""
    path = data_dir / CLUSTER_FILE
    if not path.exists() and not path.is_symlink():
        return None
    try:
        raw = read_private_file(path, _MAX_CLUSTER_FILE, "the cluster file")
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror}") from e
    try:
        body: dict[str, Any] = parse_json_object(raw)
        store, member_id, epoch = body["store"], body["member_id"], body["epoch"]
    except (InvalidInputError, KeyError, TypeError) as e:
        raise StorageError(f"{path} is damaged; restore it or join the cluster again") from e
    if not isinstance(store, str) or not isinstance(member_id, str) or type(epoch) is not int:
        raise StorageError(f"{path} is damaged; restore it or join the cluster again")
    return ClusterMembership(PostgresLocation(store), member_id, epoch)


def write_membership(data_dir: Path, membership: ClusterMembership) -> None:
    path = data_dir / CLUSTER_FILE
    try:
        replace_private_file(path, membership.to_json())
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}") from e


def _location(params: dict[str, Any]) -> PostgresLocation:
    return PostgresLocation(_libpq().make_conninfo(**{str(k): str(v) for k, v in params.items()}))


def _libpq() -> Any:
    """psycopg's conninfo parser, imported when a PostgreSQL location is first
    read: a single machine's CLI never pays psycopg's import (~0.1 s a command)."""
    from psycopg import conninfo

    return conninfo
