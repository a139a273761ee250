"""Browser hygiene for every response, and the Origin check for every state change.

- CSP with no inline script or style and ``frame-ancestors 'none'``; HSTS;
  ``nosniff``; no referrer; ``Cache-Control: no-store`` on every page (they
  carry forms, CSRF tokens or credential metadata).
- A state-changing request (POST/PUT/PATCH/DELETE) from a browser must carry an
  ``Origin`` (or, failing that, a ``Referer``) of this very endpoint; requests
  with a bearer token come from programs, which send neither.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, request

from agent_keys.errors import AccessDeniedError
from web.access import SAFE_METHODS

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def check_origin() -> None:
    """Refuse a state change a browser sent from another origin (CSRF)."""
    if request.method in SAFE_METHODS or request.headers.get("Authorization", "").startswith(
        "Bearer "
    ):
        return
    expected = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is None:
        referer = urlsplit(request.headers.get("Referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else None
    if origin != expected:
        raise AccessDeniedError("this change must come from a page of this gateway (origin check)")


def add_security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Strict-Transport-Security"] = "max-age=31536000"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null"
    # on form posts, and the Origin check could not tell our forms from others.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response
