"""The HTTPS server of the endpoint: TLS, HTTP/1.1 and worker processes.

- ``limits``: how long and how much each phase of a connection may take.
- ``tls``: the TLS context (1.2 floor, AEAD suites only).
- ``listener``: one event loop's accept, per-address counting and handshakes.
- ``connection``: reading whole requests within their deadlines (h11), answering them.
- ``wsgi_call``: one complete request through the WSGI app, in a worker thread.
- ``workers``: worker processes forked from the parent that unlocked the vault.
- ``systemd_notify``: READY=1, STOPPING=1 and STATUS= to the service manager (sd_notify).
- ``readiness``: ready means a TLS handshake with the port completes, not merely bound.
"""
