"""Sign-in, sign-out and the overview page."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import AccessDeniedError
from agent_keys.secret import Secret
from vault.access.accounts import Accounts
from vault.format.fingerprints import colon_hex_of_b64url
from vault.keys.backup_state import backup_view
from vault.keys.certificates import CertificateService
from vault.keys.tls import TlsService
from web.access import gateway, require, session_cookie
from web.flash import flash
from web.pages.blueprint import pages
from web.pages.feedback import refused


@pages.get("/signin")
def sign_in_form() -> str:
    return render_template("signin.html", error=None, name="")


@pages.post("/signin")
def sign_in() -> BaseResponse | tuple[str, int]:
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    accounts = Accounts(gateway())
    try:
        principal = accounts.sign_in(name, Secret.from_text(password))
    except AccessDeniedError as e:
        # The name stays in the form (the password never comes back).
        return refused("signin.html", e, name=name)
    session_id, session = accounts.open_session(principal)
    response = redirect(url_for("pages.overview"))
    max_age = int((session.expires_at - gateway().context.clock()).total_seconds())
    response.set_cookie(
        session_cookie(),
        session_id,
        max_age=max_age,
        secure=True,
        httponly=True,
        samesite="Strict",
        path="/",
    )
    return response


@pages.post("/signout")
def sign_out() -> BaseResponse:
    require("status.read")
    cookie = request.cookies.get(session_cookie(), "")
    Accounts(gateway()).close_session(cookie)
    response = redirect(url_for("pages.sign_in_form"))
    response.delete_cookie(
        session_cookie(), path="/", secure=True, httponly=True, samesite="Strict"
    )
    return flash(response, "signed-out")


@pages.get("/")
def overview() -> str:
    require("status.read")
    facts = gateway().status()
    tls = TlsService(gateway()).show()
    warning = CertificateService(gateway()).expiry_warning()
    return render_template(
        "overview.html",
        facts=facts,
        tls=tls,
        cert_warning=warning,
        backup=backup_view(gateway()),
        # As browsers and openssl show them, beside the base64url JWE kid.
        cert_fingerprint=colon_hex_of_b64url(facts["cert_thumbprint"]),
        tls_fingerprint=colon_hex_of_b64url(tls["sha256"]),
    )
