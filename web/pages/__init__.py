"""Server-rendered pages: sign-in, overview, credentials and their form, users,
entry links, and the audit trail.

No page shows a secret: the credential form's secret field is read by the
page's script, sealed in the browser and sent as an EncryptedCredential.
"""

from web.pages import audit, audit_export, credentials, entry_links, signin, users
from web.pages.blueprint import pages

__all__ = ["audit", "audit_export", "credentials", "entry_links", "pages", "signin", "users"]
