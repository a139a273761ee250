"""gwvault: the credential vault of an on-premises data gateway."""
