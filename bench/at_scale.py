"""Per-request cost that must not grow with the vault: pages and API at 100k / 1M rows.

One keep-alive HTTPS client asks a running ``gwvault serve`` for the same
page again and again: the first request is reported apart (``first_s``: cold
caches, a verification mark still to be written), the figure is the median of
the rest.  HTML pages are fetched signed in with a session cookie, as a browser
does; API calls carry a bearer token.  A request budget bounds the time a slow
page can take: at least one request after the first is always made.
"""

from __future__ import annotations

import http.client
import ssl
import statistics
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from bench.harness import Measurement
from bench.served import (
    Server,
    Vault,
    add_admin_user,
    admin_token,
    free_port,
    gwvault_serve,
    proc_status,
    process_tree,
    serving,
)

TIMEOUT_SECONDS = 600  # a full-trail verification at 1M entries took 18-38 s


@dataclass(frozen=True)
class PageShape:
    requests: int  # measured requests after the first, at most
    budget_seconds: float  # stop adding requests (beyond the second) after this long


@dataclass(frozen=True)
class Page:
    group: str  # e.g. "list-100k"
    name: str  # e.g. "GET /credentials (page)"
    path: str
    signed_in: bool  # a browser session (HTML) rather than a bearer token (API)


class Client:
    """One keep-alive HTTPS connection to a local server (self-signed: not verified)."""

    def __init__(self, port: int) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.origin = f"https://127.0.0.1:{port}"
        self._connection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=context, timeout=TIMEOUT_SECONDS
        )

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.read(), response

    def sign_in(self, name: str, password: str) -> dict[str, str]:
        """Sign in through the form; the headers that carry the session from then on."""
        form = urlencode({"name": name, "password": password}).encode()
        headers = {"Origin": self.origin, "Content-Type": "application/x-www-form-urlencoded"}
        status, _, response = self.request("POST", "/signin", headers, form)
        cookie = SimpleCookie(response.headers.get("Set-Cookie", ""))
        if status != 302 or not cookie:
            raise RuntimeError(f"sign-in failed: status {status}")
        return {"Cookie": "; ".join(f"{k}={v.value}" for k, v in cookie.items())}

    def close(self) -> None:
        self._connection.close()


def measure_pages(
    vault: Vault, pages: list[Page], shape: PageShape, note: str
) -> list[Measurement]:
    """Serve ``vault`` and time each of ``pages``, one after another."""
    token = admin_token(vault, "bench-pages")
    user, password = add_admin_user(vault)
    port = free_port()
    log = vault.data_dir.parent / "serve-pages.log"
    with serving(gwvault_serve(vault.data_dir, port), port, log) as server:
        client = Client(port)
        try:
            session = client.sign_in(user, password)
            api = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            return [
                _time_page(
                    client,
                    server,
                    page,
                    session if page.signed_in else api,
                    shape=shape,
                    note=note,
                )
                for page in pages
            ]
        finally:
            client.close()


def _time_page(
    client: Client,
    server: Server,
    page: Page,
    headers: dict[str, str],
    *,
    shape: PageShape,
    note: str,
) -> Measurement:
    times: list[float] = []
    size, failure, started = 0, "", time.monotonic()
    while len(times) < shape.requests + 1:
        start = time.perf_counter()
        try:
            status, body, _ = client.request("GET", page.path, headers)
        except (OSError, http.client.HTTPException) as e:  # e.g. a server's request deadline
            status, body = 0, repr(e).encode()
        if status != 200:
            # A failed page is a missed figure, not the end of the run.
            text = " ".join(body[:120].decode(errors="replace").split()).replace("|", "/")
            failure = f"failed: status {status} {text}"  # one line: it goes into a table cell
            client.close()  # the next request opens a new connection
            break
        times.append(time.perf_counter() - start)
        size = len(body)
        if len(times) >= 2 and time.monotonic() - started > shape.budget_seconds:
            break
    measured = times[1:]
    return Measurement(
        page.group,
        page.name,
        "s",
        statistics.median(measured) if measured else float("nan"),
        tuple(measured),
        lower_is_better=True,
        note=f"{note}; one keep-alive client, median of {len(measured)} after a first request"
        + (f"; {failure}" if failure else ""),
        extra={
            "first_s": times[0] if times else float("nan"),
            "max_s": max(measured, default=float("nan")),
            "response_kib": size / 1024,
            "server_peak_mib": _tree_peak_mib(server.pid),
        },
    )


def _tree_peak_mib(pid: int) -> float:
    """VmHWM (peak resident memory so far) summed over the server's processes."""
    total = 0
    for member in process_tree(pid):
        try:
            total += int(proc_status(member, "VmHWM").split()[0])
        except (OSError, KeyError):
            continue
    return total / 1024


# At 100k credentials: the first page of the list, and the status counts.
CREDENTIAL_PAGES = [
    Page("list-100k", "GET /api/v1/credentials", "/api/v1/credentials", signed_in=False),
    Page("list-100k", "GET /credentials (page)", "/credentials", signed_in=True),
    Page("status-100k", "GET /api/v1/status", "/api/v1/status", signed_in=False),
    Page("status-100k", "GET / (overview page)", "/", signed_in=True),
]
# At 1M audit entries: the page shows the trail's verdict; the API gives it alone.
AUDIT_PAGES = [
    Page("audit-1m", "GET /audit (page)", "/audit", signed_in=True),
    Page("audit-1m", "GET /api/v1/audit/verify", "/api/v1/audit/verify", signed_in=False),
]
