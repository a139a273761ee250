"""The audit page in real Chromium, as an auditor and an admin use it: local
times with UTC on hover, who acted and the details laid out readably at
1280 px, filters that survive paging, and the Export button whose download
verifies with ``gwvault audit verify-export``.  A creator sees none of it.

The page's screenshot is kept at test-artifacts/audit-page.png (the README's
docs/audit-page.png is a copy of it).
"""

from __future__ import annotations

import datetime
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accessibility import assert_accessible
from tests.vault.cli.gwvault_process import GWVAULT
from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer, WebVault
from vault.audit.trail import Outcome
from vault.context import Channel, RequestContext

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ZONE = "Asia/Kolkata"  # UTC+05:30 all year: a half-hour offset shows any rounding
LINK_ID = str(uuid.UUID(int=0x3F2A9C1E_5B7D_4E21_9A0C_D4E5F6A7B8C9))
THUMBPRINT = "kX3vP8qL2mN7rT1wY6zA0bC4dE9fG5hJ8kL2mN7rT1w"
BATCH_IDS = ",".join(str(uuid.UUID(int=n << 64 | n)) for n in range(1, 6))
# Each (actor, channel, action, target, outcome, details) the trail gets, oldest first.
TRAIL: list[tuple[str, Channel, str, str | None, Outcome, dict[str, Any]]] = [
    ("token:ci", "api", "credential.created", "sales-db", "ok",
     {"credential_id": str(uuid.UUID(int=7)), "version": 1, "type": "postgresql",
      "auth": "password", "key_version": 1, "input": "encrypted-credential",
      "tls": "verify-full", "tls_weakened_from": None}),
    (f"entry-link:{LINK_ID}", "web", "credential.tested", "sales-db", "failed",
     {"reason": "auth-failed", "stored": False,
      "detail": 'password authentication failed for user "etl_loader" on the server'}),
    ("user:cleo", "web", "credential.rejected", "hr-db", "refused", {"reason": "stale-seal"}),
    ("os:root", "cli", "credential.rewrapped", None, "ok",
     {"from_versions": "1", "to_version": 2, "count": 5, "credential_ids": BATCH_IDS}),
    ("os:root", "cli", "cert.retired", None, "ok", {"version": 1, "thumbprint": THUMBPRINT}),
]  # fmt: skip


@pytest.fixture
def trail(web_vault: WebVault) -> None:
    """The entries of TRAIL, each recorded as its own caller."""
    with web_vault.gateway() as gateway, gateway.store.write():
        for actor, channel, action, target, outcome, details in TRAIL:
            caller = gateway.acting_as(RequestContext(actor=actor, channel=channel))
            caller.audit.record(action, target or gateway.gateway_id, outcome, **details)


@pytest.fixture
def wide_page(chromium: Browser) -> Iterator[Page]:
    """A 1280 px wide page in a browser set to India's time zone and British dates."""
    context = chromium.new_context(
        ignore_https_errors=True,
        timezone_id=ZONE,
        locale="en-GB",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def _row(page: Page, action: str) -> Any:
    return page.locator("table.audit tbody tr", has=page.locator(f"td.action:text-is('{action}')"))


@pytest.mark.usefixtures("trail")
def test_times_are_local_with_utc_on_hover(wide_page: Page, live_server: LiveServer) -> None:
    sign_in(wide_page, live_server, "otto")
    wide_page.goto(f"{live_server.url}/audit")
    times = wide_page.locator("table.audit time")
    assert times.count() >= len(TRAIL)
    for index in range(times.count()):
        time = times.nth(index)
        utc = datetime.datetime.fromisoformat(str(time.get_attribute("datetime")))
        local = utc.astimezone(ZoneInfo(ZONE))
        assert time.inner_text() == local.strftime("%d/%m/%Y, %H:%M:%S")
        assert time.get_attribute("title") == utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert_accessible(wide_page)


# Per row at 1280 px: the actor cell's and action cell's line count, each column's
# width, the table against its box, and every short word in the details (one line each).
MEASURE = """() => {
  const lines = el => { const r = document.createRange(); r.selectNodeContents(el);
    return new Set([...r.getClientRects()].map(q => Math.round(q.top))).size; };
  const table = document.querySelector("table.audit");
  const rows = [...table.tBodies[0].rows].map(tr => ({
    action: tr.querySelector("td.action").textContent,
    actorLines: lines(tr.querySelector("td.actor .actor-name, td.actor code") ),
    actorKindTop: tr.querySelector("td.actor .actor-kind")?.getBoundingClientRect().top ?? null,
    actorNameTop: tr.querySelector("td.actor .actor-name")?.getBoundingClientRect().top ?? null,
    actionLines: lines(tr.querySelector("td.action")),
    height: tr.getBoundingClientRect().height,
  }));
  const words = [...table.querySelectorAll("dl.details dd")]
    .filter(dd => !dd.querySelector("code, dl") && !/\\s/.test(dd.textContent.trim()))
    .map(dd => ({text: dd.textContent.trim(), lines: lines(dd)}));
  return {
    rows, words,
    columns: [...table.tHead.rows[0].cells].map(th =>
      [th.textContent, th.getBoundingClientRect().width, lines(th)]),
    tableWidth: table.getBoundingClientRect().width,
    boxWidth: table.parentElement.clientWidth,
    viewport: window.innerWidth,
  };
}"""


@pytest.mark.usefixtures("trail")
def test_the_table_is_readable_at_1280_px(wide_page: Page, live_server: LiveServer) -> None:
    sign_in(wide_page, live_server, "otto")
    wide_page.goto(f"{live_server.url}/audit")
    measured = wide_page.evaluate(MEASURE)
    assert measured["viewport"] == 1280
    assert measured["tableWidth"] <= measured["boxWidth"] + 1  # no sideways scrolling
    for header, width, lines in measured["columns"]:
        # No column squeezed: each at least 40 px and its heading on one line.
        assert width >= 40 and lines == 1, (header, width, measured["columns"])
    for row in measured["rows"]:
        assert row["actionLines"] == 1, row
        if row["actorNameTop"] is not None:  # "user ada" (or "anonymous") on one line
            assert row["actorLines"] == 1, row
            assert row["actorKindTop"] in (None, row["actorNameTop"]), row
        assert row["height"] < 260, row  # the tallest, credential.created, has 8 short pairs
    assert {w["text"] for w in measured["words"]} >= {"postgresql", "verify-full", "stale-seal"}
    for word in measured["words"]:
        assert word["lines"] == 1, word  # a short token never breaks inside
    ARTIFACTS.mkdir(exist_ok=True)
    wide_page.screenshot(path=str(ARTIFACTS / "audit-page.png"), full_page=True)


@pytest.mark.usefixtures("trail")
def test_actor_details_and_outcome_are_laid_out(wide_page: Page, live_server: LiveServer) -> None:
    sign_in(wide_page, live_server, "ada")
    wide_page.goto(f"{live_server.url}/audit")
    created, tested = _row(wide_page, "credential.created"), _row(wide_page, "credential.tested")
    expect(created.locator("td.actor")).to_have_text("token ci")
    expect(tested.locator("td.actor")).to_have_text(f"entry link {LINK_ID}")
    expect(tested.locator("td.actor code.identifier")).to_have_text(LINK_ID)
    expect(_row(wide_page, "credential.rejected").locator("td.actor")).to_have_text("user cleo")
    expect(_row(wide_page, "cert.retired").locator("td.actor")).to_have_text("OS user root")
    # Key/value pairs, in the stored (canonical, sorted) order.
    keys = created.locator("dl.details dt").all_inner_texts()
    values = created.locator("dl.details dd").all_inner_texts()
    assert dict(zip(keys, values, strict=True)) == {
        key: "none" if value is None else str(value) for key, value in TRAIL[0][5].items()
    }
    assert keys == sorted(keys)
    expect(created.locator("dd code.identifier")).to_have_text(str(uuid.UUID(int=7)))
    expect(created.locator("dt:text-is('tls_weakened_from') + dd .none")).to_have_text("none")
    expect(tested.locator("dt:text-is('detail') + dd")).to_have_text(str(TRAIL[1][5]["detail"]))
    retired = _row(wide_page, "cert.retired")
    expect(retired.locator("dd code.identifier")).to_have_text(THUMBPRINT)
    batch = _row(wide_page, "credential.rewrapped").locator("dt:text-is('credential_ids') + dd")
    expect(batch).to_have_text(BATCH_IDS)  # the stored text, commas and all
    assert batch.locator("code.identifier").count() == 5
    # The outcome is a word and a sign in a distinct shape, not only a colour.
    for action, outcome in [("credential.created", "ok"), ("credential.tested", "failed"),
                            ("credential.rejected", "refused")]:  # fmt: skip
        badge = _row(wide_page, action).locator(f".outcome.outcome-{outcome}")
        expect(badge).to_contain_text(outcome)
    styles = wide_page.evaluate(
        """() => Object.fromEntries(["ok", "refused", "failed"].map(o => {
             const s = getComputedStyle(document.querySelector(`.outcome-${o}`));
             return [o, [s.borderStyle, s.backgroundColor, s.color].join(" ")]; }))"""
    )
    assert len(set(styles.values())) == 3, styles
    assert_accessible(wide_page)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.usefixtures("trail")
def test_paging_keeps_the_filter_and_the_form_shows_it(
    wide_page: Page, live_server: LiveServer
) -> None:
    sign_in(wide_page, live_server, "otto")
    wide_page.goto(f"{live_server.url}/audit?limit=2")
    wide_page.fill("input[name=action]", "credential.*")
    wide_page.click("form.filters button[type=submit]")
    assert _query(wide_page.url) == {"action": ["credential.*"], "limit": ["2"]}
    first = wide_page.locator("td.action").all_inner_texts()
    assert first == ["credential.rewrapped", "credential.rejected"]
    wide_page.click("a.older")
    assert _query(wide_page.url)["action"] == ["credential.*"]
    assert _query(wide_page.url)["limit"] == ["2"]
    expect(wide_page.locator("input[name=action]")).to_have_value("credential.*")
    assert wide_page.locator("td.action").all_inner_texts() == [
        "credential.tested",
        "credential.created",
    ]
    assert_accessible(wide_page)
    # The form, submitted from a later page, keeps the page size and drops the cursor.
    wide_page.fill("input[name=credential]", "sales-db")
    wide_page.click("form.filters button[type=submit]")
    assert _query(wide_page.url) == {
        "credential": ["sales-db"],
        "action": ["credential.*"],
        "limit": ["2"],
    }
    # Bad input: the form again, with what was typed and one message.
    wide_page.fill("input[name=since]", "last tuesday")
    wide_page.click("form.filters button[type=submit]")
    expect(wide_page.locator("p.error[role=alert]")).to_contain_text("since must be")
    expect(wide_page.locator("input[name=since]")).to_have_value("last tuesday")
    expect(wide_page.locator("input[name=credential]")).to_have_value("sales-db")
    assert wide_page.locator("table.audit").count() == 0
    assert_accessible(wide_page)


@pytest.mark.parametrize("name", ["otto", "ada"])
@pytest.mark.usefixtures("trail")
def test_the_export_downloads_and_verifies_with_the_cli(
    wide_page: Page, live_server: LiveServer, tmp_path: Path, name: str
) -> None:
    sign_in(wide_page, live_server, name)
    wide_page.goto(f"{live_server.url}/audit?action=credential.*")
    button = wide_page.get_by_role("button", name="Export the whole trail")
    expect(wide_page.locator("#export-note")).to_contain_text("whatever the filter")
    with wide_page.expect_download() as started:
        button.click()
    download = started.value
    assert re.fullmatch(r"gwvault-audit-gw-test-\d{8}T\d{6}Z\.jsonl", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    cert = tmp_path / "gateway.pem"
    with live_server.web_vault.gateway() as gateway:
        cert.write_bytes(gateway.certificate().pem)
    verified = subprocess.run(
        [str(GWVAULT), "audit", "verify-export", str(saved), "--cert", str(cert)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("export of gateway gw-test (")
    assert f"by user:{name}" in verified.stdout and "\nOK: " in verified.stdout
    # The whole trail, whatever the filter: every recorded action is in it.
    text = saved.read_text()
    assert all(f'"action":"{action}"' in text for _a, _c, action, *_ in TRAIL)
    assert '"action":"user.added"' in text
    # The export is itself in the trail, as the one who pressed the button.
    wide_page.goto(f"{live_server.url}/audit?action=audit.exported")
    expect(wide_page.locator("td.actor").first).to_have_text(f"user {name}")
    assert_accessible(wide_page)


def test_a_creator_has_no_audit_link_and_gets_a_403_page(
    wide_page: Page, live_server: LiveServer
) -> None:
    sign_in(wide_page, live_server, "cleo")
    expect(wide_page.get_by_role("navigation", name="Main")).to_be_visible()
    assert wide_page.locator("a[href='/audit']").count() == 0
    response = wide_page.goto(f"{live_server.url}/audit")
    assert response is not None and response.status == 403
    expect(wide_page.locator("h1")).to_have_text("403")
    expect(wide_page.locator("p.error[role=alert]")).to_contain_text("audit.read")
    expect(wide_page).to_have_title("Error 403 · gwvault")
    expect(
        wide_page.get_by_role("navigation", name="Main")
    ).to_be_visible()  # a page, not a dead end
    assert wide_page.locator("form.export").count() == 0
    assert_accessible(wide_page)


@pytest.mark.usefixtures("trail")
def test_a_narrow_window_scrolls_the_table_not_the_page(
    chromium: Browser, live_server: LiveServer
) -> None:
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 720, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, live_server, "otto")
        page.goto(f"{live_server.url}/audit")
        page_width, region_scrolls = page.evaluate(
            """() => { const region = document.querySelector(".table-scroll");
                       return [document.documentElement.scrollWidth,
                               region.scrollWidth > region.clientWidth]; }"""
        )
        assert page_width <= 720 and region_scrolls
        assert_accessible(page)  # the scrolling region can be reached from the keyboard
    finally:
        context.close()
