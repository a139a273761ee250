"""Data-source connection testers: "Test connection" with the real drivers.

``test_connection`` connects to the data source with the credential, runs the
cheapest query that proves the login worked, and returns a
``ConnectionTestResult``.  It never raises for a refused login or an
unreachable server: those are results the person entering the credential must
see.  The driver's message is shown, with the secret removed should a driver
ever echo it.

- ``dispatch``: ``test_connection`` and ``validate_data_source``, by type.
- ``postgresql``, ``mysql``, ``sqlite``, ``http``: one tester per type.
- ``connection``: ``ConnectionCredential`` and ``ConnectionTestResult``.

What a data source and a login are is a format (``vault.format.data_source``).
"""
