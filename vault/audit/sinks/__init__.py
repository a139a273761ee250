"""Audit sinks: every entry leaves the machine as it commits (issue 19).

- ``errors``: ``AuditSinkUnavailableError``, the refusal of a change that a
  ``block`` sink could not take.
- ``syslog_tls``: RFC 5424 messages over TLS (RFC 5425 octet-counting framing).
"""
