"""The admin's notification sinks in the JSON API: list, remove, send a test event.

Nested in the API blueprint (``/api/v1/notify/...``, endpoints ``api.notify.*``).
Adding a sink stays on the command line: it takes a secret in (the SMTP
password) or gives one out once (a generated HMAC key), and no route takes a
plaintext secret or returns one.  The service decides the admin's right again
inside the transaction that acts (``vault.notify.sinks``).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from vault.notify.delivery import queue_places, send_test_event
from vault.notify.outcome import Delivered
from vault.notify.sinks import SinkService
from web.access import gateway, require, web_caller

notify = Blueprint("notify", __name__, url_prefix="/notify")


@notify.get("/sinks")
def list_sinks() -> Response:
    require("notify.manage")
    opened = gateway()
    sinks = SinkService(opened, web_caller()).sinks()
    places = queue_places(opened)
    return jsonify([{**sink.view(), **places.get(sink.id, {})} for sink in sinks])


@notify.delete("/sinks/<name>")
def remove_sink(name: str) -> Response:
    require("notify.manage")
    SinkService(gateway(), web_caller()).remove(name)
    return Response(status=204)


@notify.post("/sinks/<name>/test")
def test_sink(name: str) -> Response:
    require("notify.manage")
    opened = gateway()
    outcome = send_test_event(opened, SinkService(opened, web_caller()), name)
    return jsonify({"delivered": isinstance(outcome, Delivered), "reason": outcome.reason})


# pytest would collect an imported ``test_*`` function as a test; it is not one.
test_sink.__test__ = False  # type: ignore[attr-defined]
