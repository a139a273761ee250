"""The entry page a one-time link opens."""

from __future__ import annotations

from web.access import entry_caller
from web.api import target_json
from web.pages.blueprint import pages
from web.pages.credentials import credential_form


@pages.get("/entry/<secret>")
def entry(secret: str) -> str:
    link = entry_caller(secret)
    target = target_json(link.target)
    return credential_form(
        name=link.datasource, record=target, entry_secret=secret, fixed_target=True
    )
