"""The Flask app factory of the setting-credentials endpoint."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from werkzeug.exceptions import HTTPException

from agent_keys.errors import VaultError
from web.access import VaultHandle, close_gateway, start_request
from web.api import api
from web.connection_test_slots import DEFAULT_TOTAL, ConnectionTestSlots
from web.errors import handle_http_error, handle_unexpected, handle_vault_error
from web.flash import clear_shown_flash, pending_flash
from web.health import health
from web.metrics.requests import install_request_metrics
from web.metrics.route import metrics
from web.notify_api import notify
from web.pages import pages
from web.proxy_api import proxy
from web.request_log import log_request, start_clock
from web.security import add_security_headers, check_origin

# Once, at import: a blueprint takes no nested one after its first registration.
api.register_blueprint(notify)  # /api/v1/notify: the admins' sinks
api.register_blueprint(proxy)  # /api/v1/proxy: the admins' HTTP proxy, read only

MAX_BODY_BYTES = 64 * 1024  # an EncryptedCredential is at most 32 KiB


def create_app(vault_handle: VaultHandle, *, connection_tests: int = DEFAULT_TOTAL) -> Flask:
    """The endpoint for one unlocked vault.

    ``connection_tests`` is how many connection tests may run at once in this
    process (``web.connection_test_slots``): keep it below the server's worker
    threads, so tests against silent hosts never hold them all.  Raises
    ``ValueError`` unless it is 1 or more.

    Flask's own ``SECRET_KEY`` stays unset on purpose: sessions live in the
    vault (web_sessions), so there is no signing key to leak or to default.
    """
    app = Flask(__name__)
    app.config.update(
        GWVAULT_HANDLE=vault_handle,
        GWVAULT_CONNECTION_TESTS=ConnectionTestSlots(connection_tests),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        PREFERRED_URL_SCHEME="https",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(metrics)
    app.before_request(start_clock)
    app.before_request(start_request)
    app.before_request(check_origin)
    app.after_request(add_security_headers)
    app.after_request(clear_shown_flash)
    app.after_request(log_request)
    install_request_metrics(app)  # every request counted, by route template
    app.teardown_request(close_gateway)
    app.register_error_handler(VaultError, handle_vault_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)

    @app.context_processor
    def page_context() -> dict[str, Any]:
        # caller() has already looked the session up for any signed-in page.
        session = g.get("session")
        return {
            "principal": g.get("principal"),
            "csrf_token": session.csrf_token if session else "",
            "flash": pending_flash(),
        }

    return app
