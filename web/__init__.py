"""The HTTPS setting-credentials endpoint (arrives with its own issue)."""
