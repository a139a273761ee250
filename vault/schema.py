"""The vault database schema (version 1), as DDL statements the store runs.

No column ever holds a secret in clear: secrets and private keys are stored
only as AEAD ciphertext or wrapped keys.
"""

SCHEMA_VERSION = 1

STATEMENTS: tuple[str, ...] = (
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE master_keys (
        version INTEGER PRIMARY KEY,
        keystore_wrapped BLOB NOT NULL,
        recovery_wrapped BLOB NOT NULL,
        recovery_salt BLOB NOT NULL,
        recovery_opslimit INTEGER NOT NULL,
        recovery_memlimit INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('current', 'retiring')),
        created_at TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX one_current_master_key ON master_keys (state) WHERE state = 'current'",
    """CREATE TABLE gateway_keys (
        version INTEGER PRIMARY KEY,
        key_type TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        thumbprint TEXT NOT NULL UNIQUE,
        wrapped_private_key BLOB NOT NULL,
        gmk_version INTEGER NOT NULL REFERENCES master_keys (version),
        state TEXT NOT NULL CHECK (state IN ('current', 'legacy')),
        created_at TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX one_current_gateway_key ON gateway_keys (state) WHERE state = 'current'",
    """CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        server TEXT NOT NULL,
        database TEXT,
        auth TEXT NOT NULL,
        username TEXT,
        gmk_version INTEGER NOT NULL REFERENCES master_keys (version),
        wrapped_dek BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        channel TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        outcome TEXT NOT NULL,
        request_id TEXT NOT NULL,
        details TEXT NOT NULL)""",
    # Append-only, enforced by the database too: no code path can rewrite history
    # by mistake.  (Someone who can write the file can drop these triggers; the
    # audit issue adds the MAC chain that detects that.)
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
)
