"""``GET /metrics``: the Prometheus text format, to the scrape token and nobody else.

The route decides its own caller: no session, no API token, no entry link is
a scrape token (``vault.metrics.settings``), and the scrape token is nobody
else (``web.access.caller`` never looks it up), so a Prometheus server's
token reads the metrics and nothing more, and a leaked admin token reads no
metrics either (T-MET-2).  Every refusal is the same 401, whether scraping is
off, the token is missing, wrong or revoked; each is an audit entry,
coalesced per client address like a failed sign-in.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from vault.metrics.settings import TARGET, load_metrics_settings
from vault.metrics.vault_facts import read_vault_facts
from web.access import gateway
from web.metrics.exposition import scrape_page
from web.metrics.requests import request_metrics

metrics = Blueprint("metrics", __name__)

REALM = 'Bearer realm="gwvault-metrics"'
REFUSED = "metrics.scrape-refused"
MESSAGE = "scraping needs the scrape token (gwvault metrics token)"


@metrics.get("/metrics")
def scrape() -> Response:
    opened = gateway()
    settings = load_metrics_settings(opened)
    if not settings.accepts(_bearer_token()):
        opened.audit.record_unauthenticated(REFUSED, TARGET, "refused")
        return _unauthenticated()
    facts = read_vault_facts(opened, per_credential=settings.per_credential)
    page = scrape_page(facts, request_metrics())
    return Response(page, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme == "Bearer" else ""


def _unauthenticated() -> Response:
    # The API's error object (web/openapi.json), with this route's own realm.
    response = jsonify({"error": {"code": "unauthenticated", "message": MESSAGE}})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = REALM
    return response
