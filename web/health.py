"""``/healthz`` and ``/readyz``: what a load balancer or service manager asks.

Both are open (a probe carries no credential) and answer ``{"status": "ok"}``
(200) or ``{"status": "unavailable"}`` (503), nothing more: no member id, no
reason, no version for a stranger to map the cluster with.  The reason a
member is not ready is logged on the server (``vault.cluster.readiness``).

- ``/healthz``: this process answers (the service manager restarts it if not);
  it touches no database, so a database outage never restarts every member.
- ``/readyz``: this member should get requests now (its vault is unlocked, the
  store reachable and writable, the member in good standing).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from vault.cluster.readiness import is_ready
from web.access import gateway

health = Blueprint("health", __name__)

PROBE_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})


@health.get("/healthz")
def healthz() -> Response:
    return _verdict(True)


@health.get("/readyz")
def readyz() -> Response:
    # The thread's kept vault, opened anonymously; the request's end releases it.
    return _verdict(is_ready(gateway))


def _verdict(ok: bool) -> Response:
    response = jsonify({"status": "ok" if ok else "unavailable"})
    response.status_code = 200 if ok else 503
    return response
