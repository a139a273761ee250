"""Audit sinks: every entry leaves the machine as it commits (issue 19).

- ``config``: what a sink is configured with; ``standing``: the sinks standing, checked,
  and their lag; ``registry``: add, list, remove; ``stream``: what a sink is sent next;
  ``forwarding``: block sinks inside the commit; ``delivery``: buffer sinks behind it;
  ``transports``: webhook (and syslog); ``against``: ``audit verify --against``.
- ``errors``: ``AuditSinkUnavailableError``, the refusal of a change that a
  ``block`` sink could not take.
- ``syslog_message``: a record as one RFC 5424 message, and read back from a
  syslog file (``rfc5424_message``, ``gwvault_records``).
- ``syslog_tls``: those messages over TLS (RFC 5425 octet-counting framing) to
  one syslog server (``SyslogTlsTransport``).
"""
