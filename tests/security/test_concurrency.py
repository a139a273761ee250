"""Many clients at once against the real HTTPS endpoint: no 5xx, no lost or doubled write.

Client threads (each its own admin token) mix PUT (sealed bodies), POST test,
GET list, DELETE (soft), POST restore and POST purge, over names only one
thread uses (whose outcome is known exactly) and names all threads share (whose
outcome the audit trail orders).  Afterwards every response was a 2xx or a 4xx
of the API's error shape, the stored and the deleted credentials are exactly
what the successful changes imply, every successful change left exactly one
audit entry, and the trail verifies.
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_keys.gateway_identity import GatewayCertificate
from tests.security.scale import scaled
from tests.web.api_helpers import API, UNREACHABLE_PG, certificate_of, new_token, seal_for
from tests.web_fixtures import LiveServer
from vault.audit.log import AuditLog
from vault.credentials import CredentialService

SEED = 20250108
THREADS = scaled(8, 32)
REQUESTS_PER_THREAD = scaled(20, 150)
SHARED = ["shared-0", "shared-1", "shared-2"]
CHANGES = ("credential.created", "credential.updated", "credential.deleted",
           "credential.restored", "credential.purged")  # fmt: skip
# A name's life, by its successful changes: absent, active or deleted (softly).
AFTER = {
    ("absent", "credential.created"): "active",
    ("active", "credential.updated"): "active",
    ("active", "credential.deleted"): "deleted",
    ("deleted", "credential.restored"): "active",
    ("deleted", "credential.purged"): "absent",
}
# The reply of each successful change.
CHANGE_REPLIES = {
    "credential.created": ("put", 201),
    "credential.updated": ("put", 200),
    "credential.deleted": ("delete", 204),
    "credential.restored": ("restore", 200),
    "credential.purged": ("purge", 204),
}
RecordProperty = Callable[[str, object], None]


@dataclass(frozen=True)
class Outcome:
    thread: int
    op: str
    name: str | None
    status: int | None  # None: the request failed below HTTP
    body: Any
    error: str | None = None


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the endpoint's self-signed certificate
    return context


class Client:
    """One client program: its token, its own connection per request."""

    def __init__(self, port: int, token: str, cert: GatewayCertificate) -> None:
        self.port, self.token, self.cert = port, token, cert
        self.context = _context()

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, f"{API}{path}", body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            parsed = json.loads(raw) if raw else None
            if parsed is not None:
                assert response.getheader("Content-Type", "").startswith("application/json")
            return response.status, parsed
        finally:
            conn.close()

    def put(self, name: str) -> tuple[int, Any]:
        token = seal_for(self.cert, name)
        body = {"type": "postgresql", "server": UNREACHABLE_PG, "encrypted_credential": token}
        return self.call("PUT", f"/credentials/{name}", body)


OPS = ["put", "delete", "restore", "purge", "test", "list"]


def _worker(number: int, client: Client, start: threading.Barrier, outcomes: list[Outcome]) -> None:
    rng = random.Random(SEED * 1000 + number)
    own = [f"t{number:02d}-{k}" for k in range(3)]
    start.wait()
    for _ in range(REQUESTS_PER_THREAD):
        op = rng.choices(OPS, weights=[4, 2, 1, 1, 2, 2])[0]
        name = None if op == "list" else rng.choice(own if rng.random() < 0.5 else SHARED)
        try:
            if op == "put":
                assert name is not None
                status, body = client.put(name)
            elif op == "delete":
                status, body = client.call("DELETE", f"/credentials/{name}")
            elif op in ("restore", "purge"):
                status, body = client.call("POST", f"/credentials/{name}/{op}")
            elif op == "test":
                status, body = client.call("POST", f"/credentials/{name}/test")
            else:
                status, body = client.call("GET", "/credentials")
        except Exception as e:  # a reset, a timeout, a body that is not JSON
            outcomes.append(Outcome(number, op, name, None, None, f"{type(e).__name__}: {e}"))
            continue
        outcomes.append(Outcome(number, op, name, status, body))


def _is_error_shape(body: Any) -> bool:
    if not (isinstance(body, dict) and set(body) == {"error"}):
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and set(error) == {"code", "message"}
        and all(isinstance(error[k], str) and error[k] for k in ("code", "message"))
    )


# A test may be refused at once (429) while the process runs as many as it allows
# (T-CN-7): 32 clients against 4 slots.  A name deleted softly is a 409 to a put,
# a delete or a test; restoring or purging one that is not deleted, a 409 too.
EXPECTED_STATUS = {
    "put": {200, 201, 409},
    "delete": {204, 404, 409},
    "restore": {200, 404, 409},
    "purge": {204, 404, 409},
    "test": {200, 404, 409, 429},
    "list": {200},
}
# The successful reply of each change (its state after it), for names one thread owns.
OWN_AFTER = {("put", 200): "active", ("put", 201): "active", ("delete", 204): "deleted",
             ("restore", 200): "active", ("purge", 204): "absent"}  # fmt: skip


def _lost_to_a_newer_seal(body: Any) -> bool:
    # T-EC-7: a blob sealed before the stored version is a replay, refused.
    return _is_error_shape(body) and "sealed before the stored version" in body["error"]["message"]


def _check_response(outcome: Outcome) -> str | None:
    """Why this response is wrong, or None."""
    if outcome.status is None:
        return f"connection error: {outcome.error}"
    # A 400 put lost to another client's later seal, stored first (T-EC-7).
    lost = outcome.op == "put" and outcome.status == 400 and _lost_to_a_newer_seal(outcome.body)
    if outcome.status not in EXPECTED_STATUS[outcome.op] and not lost:
        return f"unexpected status {outcome.status}: {outcome.body}"
    if outcome.status >= 400 and not _is_error_shape(outcome.body):
        return f"{outcome.status} without the error shape: {outcome.body}"
    if outcome.op == "test" and outcome.status == 200:
        body = outcome.body
        # Nobody listens on port 1: the result is a failed connection, not an error
        # (an admin's test: the driver's detail comes with it).
        shaped = isinstance(body, dict) and set(body) == {"ok", "reason", "message", "detail"}
        if not (shaped and body["ok"] is False and body["reason"] == "unreachable"):
            return f"not the result of a failed connection: {body}"
    if outcome.op == "list":
        names = [item["name"] for item in outcome.body]
        if len(names) != len(set(names)):
            return f"a listing with duplicates: {sorted(names)}"
    return None


def test_concurrent_clients_lose_and_double_nothing(
    live_server: LiveServer, record_property: RecordProperty
) -> None:
    web_vault = live_server.web_vault
    cert = certificate_of(web_vault)
    clients = [
        Client(live_server.port, new_token(web_vault, "admin", f"load-{n:02d}"), cert)
        for n in range(THREADS)
    ]
    with web_vault.gateway() as gateway:
        tail = gateway.store.audit_tail()
    first_seq = (tail[0] if tail else 0) + 1

    outcomes: list[Outcome] = []  # list.append is atomic under the GIL
    start = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=_worker, args=(n, client, start, outcomes), daemon=True)
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    record_property("cases", len(outcomes))
    assert len(outcomes) == THREADS * REQUESTS_PER_THREAD

    problems = [f"{o.op} {o.name}: {why}" for o in outcomes if (why := _check_response(o))]
    assert not problems, f"{len(problems)} bad responses, e.g.:\n" + "\n".join(problems[:10])
    ops = Counter((o.op, o.status) for o in outcomes)
    assert ops[("put", 201)] and ops[("delete", 204)] and ops[("list", 200)], ops
    assert ops[("restore", 200)] and ops[("purge", 204)], ops
    assert ops[("test", 200)], ops  # the slots refuse the excess, not every test

    with web_vault.gateway() as gateway:
        stored = {record.binding.name for record in CredentialService(gateway).list()}
        deleted = {r.binding.name for r in CredentialService(gateway).list(deleted=True)}
        report = CredentialService(gateway).verify()
        assert report.failed == [], f"credentials that do not open: {report.failed}"
        trail = AuditLog(gateway).verify()
        assert trail.ok, trail.summary()
        changes = [
            entry
            for entry in gateway.store.audit_entries(after_seq=first_seq - 1)
            if entry.action in CHANGES and entry.outcome == "ok"
        ]

    def state_of(name: str) -> str:
        return "active" if name in stored else "deleted" if name in deleted else "absent"

    # Names one thread owns: their last successful change decides.
    for number in range(THREADS):
        for k in range(3):
            name = f"t{number:02d}-{k}"
            last = "absent"
            for o in outcomes:
                if o.thread == number and o.name == name:
                    last = OWN_AFTER.get((o.op, o.status or 0), last)
            assert state_of(name) == last, f"{name}: last change left it {last}"

    # Every name: the trail's order of changes is a valid history, one entry per
    # successful change, ending where the vault is.
    names = {o.name for o in outcomes if o.name is not None}
    for name in sorted(names):
        state = "absent"
        count = Counter[str]()
        for entry in (e for e in changes if e.target == name):
            count[entry.action] += 1
            after = AFTER.get((state, entry.action))
            assert after is not None, f"{name}: {entry.action} while {state} (seq {entry.seq})"
            state = after
        assert state == state_of(name), f"{name}: trail says {state}, vault disagrees"
        replies = Counter((o.op, o.status) for o in outcomes if o.name == name)
        for action, reply in CHANGE_REPLIES.items():
            assert count[action] == replies[reply], (name, action, count, replies)
    assert stored | deleted <= names, f"credentials nobody stored: {(stored | deleted) - names}"
