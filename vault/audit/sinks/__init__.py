"""Audit sinks: every entry leaves the machine as it commits (issue 19).

- ``errors``: ``AuditSinkUnavailableError``, the refusal of a change that a
  ``block`` sink could not take.
- ``syslog_message``: a record as one RFC 5424 message, and read back from a
  syslog file (``rfc5424_message``, ``gwvault_records``).
- ``syslog_tls``: those messages over TLS (RFC 5425 octet-counting framing) to
  one syslog server (``SyslogTlsTransport``).
"""
