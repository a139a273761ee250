"""The credential list in pages (API and page): keyset paging by name, strict cursors.

The whole list took 2.1 s and 27 MB at 100k credentials; a page is an index
range.  Every hostile paging parameter is one 400, never a 500 and never a
wider answer.
"""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.store_engines import EngineVaults
from tests.vault.keys.rotation_helpers import insert_credentials
from tests.web.api_helpers import API, assert_api_error, bearer, new_token
from tests.web_fixtures import BASE_URL, WebVault, sign_in

pytestmark = pytest.mark.contract

_LINK = re.compile(r'<([^>]*)>; rel="([a-z]+)"')


def _links(response: TestResponse) -> dict[str, str]:
    return {rel: url for url, rel in _LINK.findall(response.headers.get("Link", ""))}


def _names(response: TestResponse) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [row["name"] for row in response.get_json()]


@pytest.fixture
def admin(web_vault: WebVault) -> dict[str, str]:
    return bearer(new_token(web_vault, "admin"))


def test_pages_follow_each_other_by_name_both_ways(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    insert_credentials(web_vault.data_dir, 7)
    everything = [f"ds-{i:05d}" for i in range(7)]
    seen: list[list[str]] = []
    url: str | None = f"{API}/credentials?limit=3"
    while url is not None:
        response = client.get(url, base_url=BASE_URL, headers=admin)
        seen.append(_names(response))
        links = _links(response)
        assert ("first" in links) == (len(seen) > 1)
        url = links.get("next")
    assert seen == [everything[0:3], everything[3:6], everything[6:7]]
    last = client.get(f"{API}/credentials?limit=3&after=ds-00005", base_url=BASE_URL, headers=admin)
    back = client.get(_links(last)["prev"], base_url=BASE_URL, headers=admin)
    assert _names(back) == everything[3:6]
    assert _links(back)["prev"] == f"{API}/credentials?before=ds-00003&limit=3"
    between = client.get(f"{API}/credentials?after=ds-00002x", base_url=BASE_URL, headers=admin)
    assert _names(between) == everything[3:]  # a cursor need not name a stored credential


def test_the_default_page_is_100_and_a_small_vault_answers_as_before(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    insert_credentials(web_vault.data_dir, 3)
    small = client.get(f"{API}/credentials", base_url=BASE_URL, headers=admin)
    assert _names(small) == ["ds-00000", "ds-00001", "ds-00002"] and "Link" not in small.headers
    insert_credentials(web_vault.data_dir, 101, prefix="more")
    first = client.get(f"{API}/credentials", base_url=BASE_URL, headers=admin)
    assert len(_names(first)) == 100
    assert _links(first) == {"next": f"{API}/credentials?after=more-00096"}
    rest = client.get(_links(first)["next"], base_url=BASE_URL, headers=admin)
    assert len(_names(rest)) == 4 and "next" not in _links(rest)


HOSTILE = [
    "limit=0",
    "limit=-1",
    "limit=1001",
    "limit=99999999999999999999999999",
    "limit=abc",
    "limit=1.5",
    "limit=%201",
    "limit=%EF%BC%95",  # a fullwidth digit 5: isdigit() says yes
    "limit=",
    "after=",
    "after=..%2Fetc",
    "after=%00",
    "after=" + "a" * 129,
    "after=-leading-dash",
    "after=%C3%A9t%C3%A9",
    "before=a%27%20OR%201%3D1--",
    "after=a&after=b",
    "after=a&before=b",
    "limit=5&limit=5",
    "page=2",
    "limt=5",
    "after[]=a",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_paging_parameters_are_one_clear_400(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str], query: str
) -> None:
    insert_credentials(web_vault.data_dir, 2)
    response = client.get(f"{API}/credentials?{query}", base_url=BASE_URL, headers=admin)
    message = assert_api_error(response, 400, "invalid_input")
    assert message and "Traceback" not in message
    sign_in(client, "ada")
    page = client.get(f"/credentials?{query}", base_url=BASE_URL)
    assert page.status_code == 400 and "ds-00000" not in page.get_data(as_text=True)


def test_the_page_shows_one_page_with_links_beside_it(
    client: FlaskClient, web_vault: WebVault
) -> None:
    insert_credentials(web_vault.data_dir, 5)
    sign_in(client, "cleo")
    html = client.get("/credentials?limit=2&after=ds-00001", base_url=BASE_URL).get_data(
        as_text=True
    )
    shown = re.findall(r">(ds-\d{5})</a>", html)
    assert shown == ["ds-00002", "ds-00003"]
    assert 'href="/credentials?after=ds-00003&amp;limit=2"' in html
    assert 'href="/credentials?before=ds-00002&amp;limit=2"' in html
    assert 'href="/credentials?limit=2">First page' in html
    empty = client.get("/credentials?after=zzz", base_url=BASE_URL).get_data(as_text=True)
    assert "No credentials on this page." in empty and "First page" in empty


def test_a_page_with_a_row_changed_outside_gwvault_is_refused(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str], vaults: EngineVaults
) -> None:
    insert_credentials(web_vault.data_dir, 4)
    with vaults.sql(web_vault.data_dir) as db:
        db.execute("UPDATE credentials SET owner = 'mallory' WHERE name = 'ds-00003'")
    clean = client.get(f"{API}/credentials?limit=2", base_url=BASE_URL, headers=admin)
    assert _names(clean) == ["ds-00000", "ds-00001"]
    tampered = client.get(f"{API}/credentials?after=ds-00001", base_url=BASE_URL, headers=admin)
    assert_api_error(tampered, 409, "tampered_row")
