"""``gwvault proxy show|set|clear`` in-process, and a stored credential's test through the proxy.

The password comes from a file (or a pipe or prompt), never a flag; ``show``
says only that one is set; hostile input is one clear error (exit 2) and
writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.proxy_fixtures import TinyProxy
from tests.service_fixtures import HttpAuthServer
from tests.vault.cli.gwvault_process import private_file
from tests.vault.notify.test_sinks import run
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.proxy.stored import set_proxy

PROXY_PW = "CANARY-cli-proxy-pw-7c1e"


def test_set_show_and_clear_never_print_the_password(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password_file = private_file(tmp_path / "proxy-pw", PROXY_PW + "\n")
    code, out, err = run(capsys, data_dir, "proxy", "set", "custom", "--url",
                         "http://proxy.example.org:3128", "--user", "gw", "--password-file",
                         str(password_file), "--no-proxy", "localhost,.internal")  # fmt: skip
    assert (code, out) == (0, "proxy: custom (http://proxy.example.org:3128)\n"), err
    code, out, _ = run(capsys, data_dir, "proxy", "show", "--json")
    assert code == 0 and json.loads(out) == {
        "mode": "custom", "proxy": "http://proxy.example.org:3128", "user": "gw",
        "password": "set", "no_proxy": ["localhost", ".internal"], "problem": None}  # fmt: skip
    code, out, _ = run(capsys, data_dir, "proxy", "show")
    assert code == 0 and "password: set" in out and PROXY_PW not in out
    assert run(capsys, data_dir, "proxy", "clear")[:2] == (
        0, "proxy cleared: connections are direct\n")  # fmt: skip
    code, out, _ = run(capsys, data_dir, "proxy", "show", "--json")
    assert json.loads(out)["mode"] == "none"
    with Gateway.open(data_dir, make_context()) as gateway:
        actions = [e.action for e in gateway.store.audit_events() if e.action.startswith("proxy")]
        trail = " ".join(e.details for e in gateway.store.audit_events())
    assert actions == ["proxy.set", "proxy.cleared"] and PROXY_PW not in trail


@pytest.mark.parametrize(
    "args",
    [
        ["custom", "--url", "http://gw:secret@proxy.example.org:3128"],
        ["custom", "--url", "http://proxy.example.org:3128\r\nX-Injected: 1"],
        ["custom", "--url", "https://proxy.example.org:3128"],
        ["custom", "--url", "socks5://proxy.example.org:1080"],
        ["custom", "--url", "http://proxy.example.org:0"],
        ["custom", "--url", "http://proxy.example.org:99999"],
        ["custom", "--url", "http://[::1]:3128"],
        ["custom", "--url", "http://" + "p" * 600 + ".example:3128"],
        ["custom"],
        ["custom", "--url", "http://proxy.example.org:3128", "--no-proxy", "a:1"],
        ["custom", "--url", "http://proxy.example.org:3128", "--password-file", "/nonexistent"],
        ["system", "--url", "http://proxy.example.org:3128"],
    ],
)
def test_hostile_settings_are_one_clear_error_and_write_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run(capsys, data_dir, "proxy", "set", *args)
    assert code == 2 and out == "" and err.startswith("gwvault: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "secret" not in err.replace("no user or password", "")
    with Gateway.open(data_dir, make_context()) as gateway:
        assert gateway.store.setting("proxy") is None
        assert not [e for e in gateway.store.audit_events() if e.action.startswith("proxy")]


def test_a_stored_http_credential_is_tested_through_the_proxy(
    gateway: Gateway, https_auth_server: HttpAuthServer, tinyproxy: TinyProxy,
    trusted_ca_pem: str,
) -> None:  # fmt: skip
    site = https_auth_server
    source = DataSource("http", f"{site.base_url}/basic", tls="verify-full", ca_pem=trusted_ca_pem)
    service = CredentialService(gateway)
    service.put("api", source, CredentialPayload("basic", site.user,
                                                 Secret.from_text(site.password)))  # fmt: skip
    set_proxy(gateway, "custom", url=tinyproxy.url, user=tinyproxy.user,
              password=Secret.from_text(tinyproxy.password))  # fmt: skip
    port = int(site.base_url.rsplit(":", 1)[1])
    before = tinyproxy.tunnels_to(port)
    result = service.prepare_test("api", any_destination=True).run(5.0)
    assert result.ok, result.detail
    assert tinyproxy.tunnels_to(port) == before + 1
