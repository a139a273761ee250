"""A gateway cluster's members served for tests, and what they are asked.

Each member of a ``tests.cluster_vaults.Cluster`` is served by a ``gwvault
serve`` process of its own (``tests.web.served_process``); requests go over
HTTPS on loopback, one connection each.
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

from tests.cluster_vaults import Cluster
from tests.web.served_process import CLIENT_TLS, gwvault_serve

API = "/api/v1"


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
