"""The HTTPS server of the endpoint: TLS, HTTP/1.1 and worker processes.

- ``limits``: how long and how much each phase of a connection may take.
- ``tls``: the TLS context (1.2 floor, AEAD suites only).
- ``listener``: one event loop's accept, per-address counting and handshakes.
- ``connection``: reading whole requests within their deadlines (h11), answering them.
- ``wsgi_call``: one complete request through the WSGI app, in a worker thread.
- ``workers``: worker processes forked from the parent that unlocked the vault.
"""
