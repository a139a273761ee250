"""The WSGI environ the server builds from a parsed request (PEP 3333)."""

from __future__ import annotations

from typing import Any

import h11

from web.server.wsgi_call import Peer, call_app, wsgi_environ

PEER = Peer("203.0.113.9", 50123, 8050)


def request(target: bytes, headers: list[tuple[bytes, bytes]]) -> h11.Request:
    return h11.Request(method="POST", target=target, headers=[(b"host", b"gw"), *headers])


def test_the_environ_names_path_query_peer_and_body() -> None:
    environ = wsgi_environ(
        request(
            b"/api/v1/credentials/sales%2Ddb?limit=5", [(b"content-type", b"application/json")]
        ),
        b'{"a": 1}',
        PEER,
    )
    assert environ["PATH_INFO"] == "/api/v1/credentials/sales-db"
    assert environ["QUERY_STRING"] == "limit=5"
    assert environ["REMOTE_ADDR"] == "203.0.113.9" and environ["SERVER_PORT"] == "8050"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "8"  # a chunked body is whole here: its length is known
    assert environ["wsgi.input"].read() == b'{"a": 1}'
    assert environ["wsgi.url_scheme"] == "https"


def test_repeated_headers_are_joined_with_commas() -> None:
    environ = wsgi_environ(request(b"/", [(b"accept", b"a/b"), (b"accept", b"c/d")]), b"", PEER)
    assert environ["HTTP_ACCEPT"] == "a/b,c/d"


def test_a_header_name_with_an_underscore_never_reaches_the_app() -> None:
    """``X-Forwarded_For`` would become ``HTTP_X_FORWARDED_FOR``, posing as the dashed one."""
    environ = wsgi_environ(
        request(b"/", [(b"authorization_x", b"Bearer forged"), (b"x-forwarded_for", b"10.0.0.1")]),
        b"",
        PEER,
    )
    assert "HTTP_AUTHORIZATION_X" not in environ and "HTTP_X_FORWARDED_FOR" not in environ


def test_the_app_cannot_set_framing_headers() -> None:
    def app(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(
            "200 OK",
            [("Content-Length", "999"), ("Transfer-Encoding", "chunked"), ("X-Kept", "1")],
        )
        return [b"hello"]

    reply = call_app(app, wsgi_environ(request(b"/", []), b"", PEER))
    assert reply.status == 200 and reply.reason == b"OK" and reply.body == b"hello"
    assert reply.headers == [(b"X-Kept", b"1")]
