"""Data-source connection testers: "Test connection" with the real drivers.

``test_connection`` connects to the data source with the credential, runs the
cheapest query that proves the login worked, and returns a
``ConnectionTestResult``: a stable reason code and the driver's one-line
detail, with the secret removed.  It never raises for a refused login, an
unreachable server or a destination the policy refuses: those are results.
Who may see the detail (admins only) is decided at the edges.

- ``dispatch``: ``test_connection``, ``validate_data_source``, ``open_session``
  (the agent's connection, made the same way), by type.
- ``postgresql``, ``mysql``, ``sqlserver``, ``sqlite``, ``http``: one tester per type.
- ``tls_policy``: what a credential's TLS mode means (verify before the
  password itself is ever sent).
- ``destinations``: resolve once, check every address against the caller's
  ``DestinationPolicy``, connect only to the checked addresses.
- ``connection``: ``ConnectionCredential``, ``ConnectionTestResult`` and the
  reason codes with their fixed sentences.

What a data source and a login are is a format (``vault.format.data_source``).
"""
