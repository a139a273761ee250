"""A gateway cluster for tests: members' data dirs on one PostgreSQL database, and
what their served processes are asked.

Members are made in this process (``Gateway.initialize`` for the first,
``join_cluster`` for the others), as ``gwvault init --store`` and ``gwvault
cluster join`` make them; each is then served by a ``gwvault serve`` process of
its own (``tests.web.served_process``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.web.served_process import CLIENT_TLS, gwvault_serve
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


@dataclass(frozen=True)
class ServedMember:
    """A member's ``gwvault serve`` process, its port and its log."""

    process: subprocess.Popen[str]
    port: int
    log: Path

    def call(self, method: str, path: str, token: str | None = None, body: object = None) -> Answer:
        return call(self.port, method, path, token=token, body=body)


@contextlib.contextmanager
def serving(cluster: Cluster, names: Sequence[str]) -> Iterator[dict[str, ServedMember]]:
    """Each named member served by a process of its own (one worker: two cores
    run them all), ready before this yields; all stopped at the end."""
    with contextlib.ExitStack() as stack:
        served: dict[str, ServedMember] = {}
        for name in names:
            log = cluster.root / f"serve-{name}.log"
            process, port = stack.enter_context(
                gwvault_serve(cluster.data_dir(name), log_file=log, wait_ready=True)
            )
            served[name] = ServedMember(process, port, log)
        yield served


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def call(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: object = None,
    timeout: float = 15.0,
) -> Answer:
    """One HTTPS request to a served member on loopback, on a connection of its own."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=CLIENT_TLS, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    parsed = (
        json.loads(raw)
        if raw and response.getheader("Content-Type", "").startswith("application/json")
        else raw
    )
    return Answer(response.status, parsed)
