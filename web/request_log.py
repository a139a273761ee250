"""One log line per request: method, path, status, time, request id, actor.

The path is rebuilt from the route that matched, with every route variable
that carries a secret left as the template's placeholder (``/entry/<secret>/test``):
an entry-link secret travels in the path.  A variable is secret when its name
says so (``secret``, ``token``, or containing either), so a new route that
names its variable honestly is covered.  A path that matched no route may be a
mistyped entry link: only its first segment is logged, and only when short.
No query string, header or body is logged.  Every field is printable and
bounded, so a log reader cannot be fed forged lines.

A probe that finds the endpoint healthy or ready is not logged: a load
balancer asks every few seconds, for every member, and those lines would
outnumber a gateway's real requests (a few a day) thousands to one.  A probe
answered 503 is logged, as is why (``vault.cluster.readiness``).
"""

from __future__ import annotations

import logging
import re
import time

from flask import Response, g, request

from web.health import PROBE_ENDPOINTS

log = logging.getLogger("gwvault.request")

_FIELD_CHARS = 80
_PATH_CHARS = 200


def start_clock() -> None:
    g.request_started = time.perf_counter()


def log_request(response: Response) -> Response:
    if response.status_code == 200 and request.endpoint in PROBE_ENDPOINTS:
        return response
    started = g.get("request_started")
    millis = (time.perf_counter() - started) * 1000 if started is not None else -1.0
    principal = g.get("principal")
    log.info(
        "request method=%s path=%s status=%d ms=%.1f id=%s actor=%s",
        _field(request.method),
        _field(_logged_path(), _PATH_CHARS),
        response.status_code,
        millis,
        _field(g.get("request_id", "-")),
        _field(principal.actor if principal is not None else "anonymous"),
    )
    return response


# Anything but printable ASCII without the space: a field can neither end the line
# nor pose as another field.  (A regular expression: a loop over characters in
# Python cost a sixth of the line's time, which is a fifth of a fast request's.)
_UNSAFE = re.compile(r"[^\x21-\x7e]")


def _field(value: str, limit: int = _FIELD_CHARS) -> str:
    return _UNSAFE.sub("?", value[:limit]) or "-"


# A Werkzeug rule's variable: <name> or <converter:name> or <converter(args):name>.
_RULE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
_SECRET_NAMES = ("secret", "token")
# Longer than any page or API segment's name, shorter than an entry-link secret.
_UNMATCHED_SEGMENT_CHARS = 24


def _logged_path() -> str:
    rule = request.url_rule
    if rule is None:
        first, _, rest = request.path.lstrip("/").partition("/")
        shown = first if len(first) <= _UNMATCHED_SEGMENT_CHARS else "<long>"
        return f"(no-route)/{shown}{'/...' if rest else ''}"
    values = request.view_args or {}

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if any(word in name.lower() for word in _SECRET_NAMES):
            return f"<{name}>"  # the template's own placeholder: never the value
        return str(values.get(name, match.group(0)))

    return _RULE_VARIABLE.sub(value_of, rule.rule)
