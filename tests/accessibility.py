"""An automated accessibility check of a page in the real browser: axe-core
(npm, pinned in package-lock.json, installed by ``make test``) injected into the
page and run against WCAG 2.x A and AA rules.

``assert_accessible(page)`` fails on any serious or critical violation and
names each with the elements it found; minor and moderate ones are returned for
a test that wants to look at them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.service_fixtures import require_service

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = frozenset({"serious", "critical"})
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now."""
    if not AXE.exists():
        require_service(f"axe-core not installed at {AXE} (make node_modules/.installed)")
    # The page as people see it: its stylesheet applied (the load event waits for
    # it).  Checked before that, on a loaded machine, every link is as small as
    # unstyled text, and target-size fails for the stylesheet's lateness.
    page.wait_for_load_state("load")
    # add_script_tag inlines the source; the page's CSP forbids inline script,
    # so it is evaluated through the DevTools protocol instead, as a test harness.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", RULE_TAGS
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def assert_accessible(page: Page) -> list[dict[str, Any]]:
    """Fail on a serious or critical violation; return the lesser ones."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"axe on {page.url}:\n" + json.dumps(
        [
            {
                "rule": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [node["target"] for node in v["nodes"]][:5],
            }
            for v in blocking
        ],
        indent=2,
    )
    return [v for v in violations if v["impact"] not in BLOCKING]
