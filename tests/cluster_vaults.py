"""A gateway cluster for tests: members' data dirs on one PostgreSQL database.

Members are made in this process (``Gateway.initialize`` for the first,
``join_cluster`` for the others), as ``gwvault init --store`` and ``gwvault
cluster join`` make them, each with a data dir of its own (its key file,
``cluster.json`` naming the database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from vault.access.grants import AccessGrants
from vault.cluster.members import join_cluster
from vault.gateway import Gateway
from vault.store.locator import parse_store_url

API = "/api/v1"
GATEWAY_NAME = "gw-cluster"


@dataclass(frozen=True)
class Cluster:
    """Members' data dirs by name (the first made the vault), an admin's API
    token, and the directory they are in (the servers' logs go there too)."""

    root: Path
    members: dict[str, Path]
    admin_token: str

    def data_dir(self, name: str) -> Path:
        return self.members[name]


def make_cluster(root: Path, conninfo: str, names: Sequence[str]) -> Cluster:
    """A cluster vault on the empty database of ``conninfo`` (its password in a
    passfile it names), with one member per name, in order."""
    location = parse_store_url(conninfo)
    recovery_key = Secret.from_text(RECOVERY_KEY)
    members = {name: root / f"member-{name}" for name in names}
    first, *others = names
    with Gateway.initialize(
        members[first], GATEWAY_NAME, "ec-p256", recovery_key, make_context(),
        shared_store=location, member_name=first,
    ) as gateway:  # fmt: skip
        token = AccessGrants(gateway).create_token("cluster-admin", "admin")
    for name in others:
        join_cluster(members[name], location, recovery_key, make_context(), name=name).close()
    return Cluster(root, members, token)
