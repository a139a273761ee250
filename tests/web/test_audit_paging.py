"""Paging the audit trail both ways (API and page): ``before`` goes to older events,
``after`` back to newer ones, and the page links both, with strict cursors."""

from __future__ import annotations

import itertools
import re
from html import unescape
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.web.api_helpers import API, assert_api_error, bearer, new_token
from tests.web_fixtures import BASE_URL, WebVault, sign_in

AUDIT = f"{API}/audit"


@pytest.fixture
def auditor(web_vault: WebVault) -> dict[str, str]:
    headers = bearer(new_token(web_vault, "auditor"))
    with web_vault.gateway() as gateway, gateway.store.write():
        for i in range(20):
            gateway.audit.record("credential.tested", f"db-{i % 4}")
    return headers


def _page(client: FlaskClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = client.get(f"{AUDIT}?{query}", base_url=BASE_URL, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    page: dict[str, Any] = response.get_json()
    return page


def _seqs(page: dict[str, Any]) -> list[int]:
    return [event["seq"] for event in page["events"]]


def test_after_pages_forward_over_the_pages_before_went_back(
    client: FlaskClient, auditor: dict[str, str]
) -> None:
    everything = _seqs(_page(client, auditor, "limit=1000"))
    pages = [_page(client, auditor, "limit=4")]
    while pages[-1]["next_before"] is not None and len(pages) < 20:
        pages.append(_page(client, auditor, f"limit=4&before={pages[-1]['next_before']}"))
    assert [seq for page in pages for seq in _seqs(page)] == everything
    # Back up: each older page's newest entry leads to the page above it.
    for newer, older in itertools.pairwise(pages):
        if len(_seqs(older)) == 4:
            up = _page(client, auditor, f"limit=4&after={_seqs(older)[0]}")
            assert _seqs(up) == _seqs(newer)
            assert up["next_before"] == _seqs(newer)[-1]
    oldest = _page(client, auditor, "limit=3&after=0")
    assert _seqs(oldest) == sorted(everything)[:3][::-1]  # the oldest three, newest first


def test_filters_hold_when_paging_forward(client: FlaskClient, auditor: dict[str, str]) -> None:
    mine = _seqs(_page(client, auditor, "credential=db-1&limit=1000"))
    assert len(mine) == 5
    assert _seqs(_page(client, auditor, f"credential=db-1&after={mine[3]}&limit=2")) == mine[1:3]


@pytest.mark.parametrize(
    "query",
    ["after=-1", "after=abc", "after=1.0", "after=", "after=99999999999999999999",
     "after=1&after=2", "after=1&before=5", "after=%EF%BC%91"],
)  # fmt: skip
def test_hostile_after_values_are_one_clear_400(
    client: FlaskClient, auditor: dict[str, str], query: str
) -> None:
    response = client.get(f"{AUDIT}?{query}", base_url=BASE_URL, headers=auditor)
    assert_api_error(response, 400, "invalid_input")


def test_the_page_links_newer_older_and_newest(
    client: FlaskClient, auditor: dict[str, str]
) -> None:
    sign_in(client, "otto")  # recorded too: the trail is read after it
    everything = _seqs(_page(client, auditor, "limit=1000"))

    def links(url: str) -> tuple[list[int], dict[str, str]]:
        html = client.get(url, base_url=BASE_URL).get_data(as_text=True)
        shown = [int(seq) for seq in re.findall(r"<tr><td>(\d+)</td>", html)]
        found = re.findall(r'<a class="(newest|newer|older)" href="([^"]+)"', html)
        return shown, {kind: unescape(href) for kind, href in found}

    top, top_links = links("/audit?limit=5")
    assert top == everything[:5] and set(top_links) == {"older"}
    second, second_links = links(top_links["older"])
    assert second == everything[5:10] and set(second_links) == {"newest", "newer", "older"}
    back, _ = links(second_links["newer"])
    assert back == top
    assert second_links["newest"] == "/audit?limit=5"
