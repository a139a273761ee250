"""GET /api/v1/proxy: admins read the proxy settings, nobody else; never the password.

A tampered proxy row is a 409 there too (T-PX-1), and the walk in
test_route_auth refuses anonymous callers.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from agent_keys.secret import Secret
from tests.web.api_helpers import API, assert_api_error, bearer, new_token
from tests.web.test_openapi import assert_documented
from tests.web_fixtures import BASE_URL, WebVault
from vault.proxy.stored import set_proxy

PROXY = f"{API}/proxy"
PROXY_PW = "CANARY-api-proxy-pw-3d9a"


def test_admins_read_the_proxy_and_nobody_else_may(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    shown = client.get(PROXY, base_url=BASE_URL, headers=admin)
    assert shown.status_code == 200 and shown.get_json()["mode"] == "none"
    assert_documented(app, shown)
    with web_vault.gateway() as gateway:
        set_proxy(gateway, "custom", url="http://proxy.example.org:3128", user="gw",
                  password=Secret.from_text(PROXY_PW), no_proxy=".internal")  # fmt: skip
    shown = client.get(PROXY, base_url=BASE_URL, headers=admin)
    assert shown.get_json() == {
        "mode": "custom", "proxy": "http://proxy.example.org:3128", "user": "gw",
        "password": "set", "no_proxy": [".internal"], "problem": None}  # fmt: skip
    assert_documented(app, shown)
    assert PROXY_PW.encode() not in shown.data
    for role in ("creator", "auditor"):
        other = bearer(new_token(web_vault, role))
        assert_api_error(client.get(PROXY, base_url=BASE_URL, headers=other), 403)


def test_a_tampered_proxy_row_is_a_conflict(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    with web_vault.gateway() as gateway:
        set_proxy(gateway, "custom", url="http://proxy.example.org:3128")
        with gateway.store.write():  # a database writer, without the key
            gateway.store.set_setting("proxy", '{"mode":"system"}')
    admin = bearer(new_token(web_vault, "admin"))
    refused = client.get(PROXY, base_url=BASE_URL, headers=admin)
    assert_api_error(refused, 409)
    assert_documented(app, refused)
