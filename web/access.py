"""Who is calling, and the vault opened for them, for one request.

A caller is one of: a bearer API token (channel ``api``), a session cookie
(channel ``web``), or an entry-link secret in the URL (channel ``web``).  Each
worker thread keeps the vault open across requests (``vault.kept_gateways``),
with the GMK the server unlocked at start; a request gets it acting as its
caller, and its end rolls back whatever transaction it left open.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from flask import current_app, g, request

from agent_keys.errors import AccessDeniedError
from agent_keys.keystore import PinSource
from agent_keys.master_key import MasterKey
from vault.access.accounts import Accounts, WebSession
from vault.access.bearer_secrets import bearer_hash
from vault.access.callers import Caller, Grant
from vault.access.grants import AccessGrants, EntryLink
from vault.access.policy import Action, Principal, authorize
from vault.context import Channel, RequestContext, new_request_id
from vault.gateway import Gateway
from vault.gateway_facts import GatewayFacts
from vault.kept_gateways import KeptGateways
from vault.keys.keystore_binding import no_pin
from web.errors import Unauthenticated

# __Host-: Secure, Path=/, no Domain (RFC 6265bis).  The port ends the name:
# cookies are not isolated by port (RFC 6265 section 8.5), so two gateways on
# one host with one name overwrote each other's sessions (T-WEB-14).
SESSION_COOKIE_PREFIX = "__Host-gwvault-session-"
CSRF_HEADER = "X-CSRF-Token"


class VaultHandle:
    """What the app needs to open the vault (where, and the unlocked GMK), and
    the vault each worker thread keeps open.  Nothing is opened until a
    thread first needs it (after the server forked its workers)."""

    def __init__(self, data_dir: Path, master_key: MasterKey, pin: PinSource = no_pin) -> None:
        self.data_dir = data_dir
        self.master_key = master_key
        # Asked for again only when a rotation made elsewhere (the CLI) needs the
        # keystore to unwrap the new GMK: the PIN is read at that use, not kept.
        self.pin = pin
        # A thread's vault is opened (and its keystore binding checked) for an
        # anonymous caller: every request then acts as its own.
        self._kept = KeptGateways(
            self._open_for_thread, RequestContext(actor="anonymous", channel="web")
        )

    def open(self, context: RequestContext) -> Gateway:
        """This thread's vault acting as ``context``; ``release`` ends its use."""
        return self._kept.gateway(context)

    def release(self) -> None:
        """End this thread's request: roll back a transaction it left open."""
        self._kept.release()

    def close(self) -> None:
        """Close every thread's vault (the server has stopped)."""
        self._kept.close()

    def _open_for_thread(self, context: RequestContext, facts: GatewayFacts) -> Gateway:
        return Gateway.open(self.data_dir, context, self.pin, unlocked=self.master_key, facts=facts)


def handle() -> VaultHandle:
    vault_handle: VaultHandle = current_app.config["GWVAULT_HANDLE"]
    return vault_handle


def gateway() -> Gateway:
    """The vault for this request, opened as its caller (anonymous until known)."""
    if "gateway" not in g:
        g.gateway = handle().open(_caller_context())
    opened: Gateway = g.gateway
    return opened


def _caller_context() -> RequestContext:
    principal: Principal | None = g.get("principal")
    actor = principal.actor if principal else "anonymous"
    channel: Channel = g.get("channel", "web")
    return RequestContext(
        actor=actor, channel=channel, request_id=request_id(), client=request.remote_addr
    )


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = new_request_id()
    rid: str = g.request_id
    return rid


def start_request() -> None:
    """Give the request its id (a before_request hook must return None)."""
    request_id()


def close_gateway(_error: BaseException | None = None) -> None:
    """End the request's use of the vault; the thread keeps the connection."""
    if g.pop("gateway", None) is not None:
        handle().release()


def caller() -> Principal:
    """The authenticated caller (token or session); ``Unauthenticated`` if none."""
    if "principal" in g:
        principal: Principal = g.principal
        return principal
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization[7:].strip()
        found = AccessGrants(gateway()).principal_for_token(token)
        if found is None:
            raise Unauthenticated("the API token is unknown or revoked")
        _become(found, "api", Grant("token", bearer_hash(token)))
        return found
    session = current_session()
    if session is None:
        raise Unauthenticated("sign in first")
    cookie = request.cookies.get(session_cookie(), "")
    _become(session.principal, "web", Grant("session", bearer_hash(cookie)))
    return session.principal


def web_caller() -> Caller:
    """The authenticated caller with the grant it proved, for the service to
    check again inside the transaction that acts (vault.access.callers)."""
    principal = g.principal if "principal" in g else caller()
    grant: Grant = g.grant
    return Caller(principal, grant)


def session_cookie() -> str:
    """The name of this endpoint's session cookie: the prefix and the port it serves."""
    # SERVER_PORT is the listening socket's (the WSGI server sets it), not the Host header's.
    port = str(request.environ.get("SERVER_PORT", ""))
    return SESSION_COOKIE_PREFIX + (port if port.isdigit() and len(port) <= 5 else "443")


def current_session() -> WebSession | None:
    if "session" not in g:
        cookie = request.cookies.get(session_cookie())
        g.session = Accounts(gateway()).session(cookie) if cookie and len(cookie) < 128 else None
    session: WebSession | None = g.session
    return session


def entry_caller(secret: str) -> EntryLink:
    """The live entry link named by a URL secret; the request then acts as it."""
    link = AccessGrants(gateway()).entry_link(secret)
    _become(link.principal(), "web", Grant("entry-link", link.id))
    return link


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require(
    action: Action, *, datasource: str | None = None, owner: str | None = None
) -> Principal:
    """The caller, if it may do ``action``; checks the CSRF token of a state change."""
    principal = caller()
    if request.method not in SAFE_METHODS:
        check_csrf()
    authorize(principal, action, datasource=datasource, owner=owner)
    return principal


def check_csrf() -> None:
    """State changes by a browser session must echo the session's CSRF token."""
    session = current_session()
    if session is None or g.get("channel") != "web" or g.principal.kind != "user":
        return
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise AccessDeniedError("the form is stale or came from another site; reload the page")


def _become(principal: Principal, channel: Channel, grant: Grant) -> None:
    # The vault was opened anonymously (to look the caller up): from here on it
    # acts as the caller, so audit entries name who acted.  The same connection
    # serves: reopening it cost a third of a request.
    g.principal = principal
    g.channel = channel
    g.grant = grant
    if "gateway" in g:
        g.gateway = g.gateway.acting_as(_caller_context())
