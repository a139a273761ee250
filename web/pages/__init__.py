"""Server-rendered pages: sign-in, overview, credentials and their form, users,
API tokens, one's own password, entry links, and the audit trail.

No page shows a secret: the credential form's secret field is read by the
page's script, sealed in the browser and sent as an EncryptedCredential.
"""

from web.pages import (
    account,
    audit,
    audit_export,
    credentials,
    entry_links,
    life,
    signin,
    tokens,
    users,
)
from web.pages.blueprint import pages

__all__ = [
    "account",
    "audit",
    "audit_export",
    "credentials",
    "entry_links",
    "life",
    "pages",
    "signin",
    "tokens",
    "users",
]
