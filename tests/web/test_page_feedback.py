"""What a person sees after acting: a flash message exactly once, never text a
link could plant; the sign-in form keeps the name after a wrong password; the
favicon is served."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.web_fixtures import BASE_URL, sign_in
from web.flash import FLASH_COOKIE_PREFIX, MESSAGES

FLASH_COOKIE = f"{FLASH_COOKIE_PREFIX}443"


def _flash_text(client: FlaskClient, path: str = "/") -> str | None:
    html = client.get(path, base_url=BASE_URL).get_data(as_text=True)
    marker = '<p class="flash" role="status">'
    return html.split(marker, 1)[1].split("</p>", 1)[0] if marker in html else None


def test_sign_out_says_so_once(client: FlaskClient) -> None:
    csrf = sign_in(client, "ada")
    response = client.post(
        "/signout",
        data={"csrf_token": csrf},
        base_url=BASE_URL,
        headers={"Origin": BASE_URL},
    )
    assert response.status_code == 302
    set_cookie = next(h for h in response.headers.getlist("Set-Cookie") if FLASH_COOKIE in h)
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in set_cookie
    assert "Domain" not in set_cookie  # __Host-: this host only
    assert _flash_text(client, "/signin") == MESSAGES["signed-out"]
    assert _flash_text(client, "/signin") is None  # shown once


def test_a_flash_cookie_carries_a_code_never_text(client: FlaskClient) -> None:
    sign_in(client, "ada")
    # A cookie somebody planted with text of their own shows nothing.
    client.set_cookie(FLASH_COOKIE, "Your vault is compromised: call 555", domain="localhost")
    assert _flash_text(client) is None
    client.set_cookie(FLASH_COOKIE, "user-added:<script>x</script>", domain="localhost")
    # The subject is escaped like any page text.
    assert _flash_text(client) == "Added user &lt;script&gt;x&lt;/script&gt;."
    client.set_cookie(FLASH_COOKIE, "user-added:" + "x" * 500, domain="localhost")
    assert _flash_text(client) is None


def test_a_wrong_password_keeps_the_name_never_the_password(client: FlaskClient) -> None:
    response = client.post(
        "/signin",
        data={"name": "ada", "password": "not her passphrase at all"},
        base_url=BASE_URL,
        headers={"Origin": BASE_URL},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert 'name="name" value="ada"' in html
    assert "not her passphrase" not in html


def test_the_favicon_is_served(client: FlaskClient) -> None:
    response = client.get("/favicon.ico", base_url=BASE_URL, follow_redirects=True)
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
