"""The vault database schema, as DDL statements the store runs.

``STATEMENTS`` make schema 1; ``UPGRADES[n]`` take a database from n-1 to n.  A
new vault runs them all; an older one is upgraded in one transaction when it
is opened.  No column ever holds a secret in clear: secrets and private keys
are stored only as AEAD ciphertext or wrapped keys, and bearer secrets (API
tokens, entry links, web sessions) only as their SHA-256.
"""

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

_PRUNED_THROUGH = "(SELECT coalesce(max(seq), 0) FROM audit_checkpoints WHERE reason = 'prune')"
_ROLES = "CHECK (role IN ('admin', 'creator', 'auditor'))"
# Trigger steps of the credential counts (schema 5), for the row OLD or NEW.
# Not INSERT OR IGNORE: in a trigger the outer statement's conflict clause wins,
# and under INSERT OR REPLACE that would reset the count to 0 (an upsert's DO
# NOTHING is kept); not INSERT ... SELECT ... WHERE NOT EXISTS, which reads the
# table it writes through a temporary copy and made a 100k rewrap 4x slower.
# A version's row stays at 0 when its last credential goes (status shows
# counts above 0): deleting it in every trigger cost as much again.
_COUNT_ROW = """INSERT INTO credential_counts (gmk_version, n) VALUES (NEW.gmk_version, 0)
    ON CONFLICT (gmk_version) DO NOTHING;"""
_COUNT_UP = "UPDATE credential_counts SET n = n + 1 WHERE gmk_version = NEW.gmk_version;"
_COUNT_DOWN = "UPDATE credential_counts SET n = n - 1 WHERE gmk_version = OLD.gmk_version;"
_COUNT_MOVE = """UPDATE credential_counts
    SET n = n + (gmk_version = NEW.gmk_version) - (gmk_version = OLD.gmk_version)
    WHERE gmk_version IN (OLD.gmk_version, NEW.gmk_version);"""


# Settings that change with every audit entry (the MACed note of the last one):
# no cached fact depends on them, so they leave the generation alone.
_UNCACHED_SETTINGS = "('audit_head')"
_FACTS_TABLES = ("settings", "master_keys", "gateway_keys", "tls_identity", "audit_key")


_MEMBER_FACTS = "name, state, epoch, public_key, wrapped_private_key, mac"


def _generation_trigger(table: str, event: str) -> str:
    row = "OLD" if event == "DELETE" else "NEW"
    when = f" WHEN {row}.key NOT IN {_UNCACHED_SETTINGS}" if table == "settings" else ""
    name = event.split(maxsplit=1)[0].lower()
    return (
        f"CREATE TRIGGER {table}_{name}_bumps_generation AFTER {event} ON {table}{when}"  # noqa: S608 - fixed names
        " BEGIN UPDATE facts_generation SET generation = generation + 1 WHERE id = 1; END"
    )


# A long-lived process caches facts it checked (the certificate, the private
# keys: vault.gateway_facts) and reads this one number per use to know they
# still hold.  The triggers bump it in the transaction of every change to the
# rows those facts come from, whichever process (or tool) makes it.
_FACTS_GENERATION: tuple[str, ...] = (
    """CREATE TABLE facts_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL)""",
    "INSERT INTO facts_generation (id, generation) VALUES (1, 1)",
    *(
        _generation_trigger(table, event)
        for table in _FACTS_TABLES
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
)

# The members of a gateway cluster (vault.cluster).  Each holds an X25519 key
# pair: the private key wrapped by the member's own keystore (file or PKCS#11),
# the public key sealed into the row, so any member can wrap a new GMK version
# to every other one (a rotation) and a removed member's row and wraps go.
# ``epoch`` is the cluster epoch the member joined in: a member whose epoch is
# behind the cluster's is stale and stops.  ``last_seen_ms`` is a heartbeat on
# the database clock, not sealed (display only).
CLUSTER_TABLES: tuple[str, ...] = (
    """CREATE TABLE members (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        software_version TEXT NOT NULL,
        keystore_kind TEXT NOT NULL,
        public_key BLOB NOT NULL,
        wrapped_private_key BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('enabled', 'disabled')),
        epoch INTEGER NOT NULL,
        joined_at TEXT NOT NULL,
        last_seen_ms INTEGER,
        mac BLOB)""",
    # A GMK version wrapped to one member's public key.  No foreign key to
    # master_keys: destroying a version deletes its wraps explicitly
    # (vault.keys.rotation), and a wrap must never keep a version alive.
    """CREATE TABLE member_wraps (
        member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
        gmk_version INTEGER NOT NULL,
        wrapped BLOB NOT NULL,
        PRIMARY KEY (member_id, gmk_version))""",
    # Singleton work (vault.cluster.lease): who holds it, until when on the
    # database clock, and a fencing token that rises with every new holder.
    """CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL)""",
)

# A credential's life beside its secret (vault.credential_life): disabled or
# deleted (kept for the retention window, then purged), when it expires, how
# often it is to be rotated, whom to tell.  Sealed with the row, but each only
# while set, so rows sealed before these columns existed keep their seals
# (vault.access.row_seal, LATER_SEALED_COLUMNS).
CREDENTIAL_LIFE_COLUMNS: tuple[str, ...] = (
    "ALTER TABLE credentials ADD COLUMN disabled_at TEXT",
    "ALTER TABLE credentials ADD COLUMN deleted_at TEXT",
    "ALTER TABLE credentials ADD COLUMN purge_after TEXT",
    "ALTER TABLE credentials ADD COLUMN expires_at TEXT",
    "ALTER TABLE credentials ADD COLUMN rotate_every INTEGER",
    "ALTER TABLE credentials ADD COLUMN contact TEXT",
    "CREATE INDEX credentials_by_purge ON credentials (purge_after) WHERE purge_after IS NOT NULL",
)


def notification_tables(serial_key: str) -> tuple[str, ...]:
    """The events raised for the notification sinks (vault.notify), in the
    transaction that raised them, each also an audit entry: what happened to
    which credential, never a secret."""
    return (
        f"""CREATE TABLE notify_events (
            id {serial_key},
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            at TEXT NOT NULL,
            body TEXT NOT NULL)""",
        # The admin's sinks (vault.notify.sinks): a sealed row each, the
        # webhook's HMAC key or the SMTP password wrapped by the GMK.
        """CREATE TABLE notify_sinks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('webhook', 'email')),
            config TEXT NOT NULL,
            wrapped_key BLOB,
            gmk_version INTEGER REFERENCES master_keys (version),
            created_at TEXT NOT NULL,
            mac BLOB)""",
        # Where each sink is in the queue (vault.notify.delivery): every event up
        # to through_event is delivered or given up; the next one's attempts.
        """CREATE TABLE notify_deliveries (
            sink_id TEXT PRIMARY KEY,
            through_event INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_failed_at TEXT,
            next_attempt_at TEXT,
            claimed_until TEXT,
            last_error TEXT)""",
    )


# The last scheduled or manual test of each stored credential (vault.health):
# its reason code, the driver's words (admins only), the expiry the server
# reported, when it is next due and when its reason last changed.  Sealed
# (vault.access.row_seal) and checked against the newest ``credential.tested``
# entry of its credential: a database writer can neither make a failing
# credential look healthy nor put back an older row to silence the next status
# change.  It goes with its credential (a purge leaves nothing).
HEALTH_TABLES: tuple[str, ...] = (
    """CREATE TABLE credential_status (
        credential_id TEXT PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        tested_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        server_expires_at TEXT,
        next_due_at TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        mac BLOB)""",
    "CREATE INDEX credential_status_by_due ON credential_status (next_due_at)",
)


# The audit sinks (vault.audit.sinks): a sealed row each, and where each is in
# the trail.  A sink is sent every entry after ``through_seq`` and every signed
# checkpoint after ``through_checkpoint`` (an audit_checkpoints id); the trail
# itself is the durable queue of a ``buffer`` sink.  The place is not sealed: a
# writer who moves it back only makes entries be sent again, and one who moves
# it on leaves a gap the sink's copy shows (``gwvault audit verify --against``).
AUDIT_SINK_TABLES = (
    """CREATE TABLE audit_sinks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('syslog', 'webhook')),
        policy TEXT NOT NULL CHECK (policy IN ('block', 'buffer')),
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        mac BLOB)""",
    """CREATE TABLE audit_sink_places (
        sink_id TEXT PRIMARY KEY,
        through_seq INTEGER NOT NULL,
        through_checkpoint INTEGER NOT NULL,
        sent_at TEXT,
        failing_since TEXT,
        last_error TEXT)""",
)


UPGRADES: dict[int, tuple[str, ...]] = {
    # 2: the web endpoint - accounts, API tokens, entry links, sessions, TLS.
    2: (
        f"""CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL {_ROLES},
            password_hash TEXT NOT NULL,
            failed_signins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            created_at TEXT NOT NULL)""",
        f"""CREATE TABLE api_tokens (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL {_ROLES},
            token_hash BLOB NOT NULL UNIQUE,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT)""",
        """CREATE TABLE entry_links (
            id TEXT PRIMARY KEY,
            datasource TEXT NOT NULL,
            link_hash BLOB NOT NULL UNIQUE,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT)""",
        """CREATE TABLE web_sessions (
            id_hash BLOB PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)""",
        """CREATE TABLE tls_identity (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            cert_pem TEXT NOT NULL,
            wrapped_key BLOB NOT NULL,
            gmk_version INTEGER NOT NULL REFERENCES master_keys (version),
            source TEXT NOT NULL CHECK (source IN ('generated', 'imported')),
            created_at TEXT NOT NULL)""",
        # Who may change a credential through the web: a creator only its own.
        "ALTER TABLE credentials ADD COLUMN owner TEXT",
    ),
    # 3: the tamper-evident audit trail (vault.format.audit_chain).  Entries written
    # before it are chained when the vault is opened (``VaultStore``); they
    # carry no MAC, and the verifier says so.
    3: (
        "ALTER TABLE audit_events ADD COLUMN prev_hash BLOB",
        "ALTER TABLE audit_events ADD COLUMN hash BLOB",
        "ALTER TABLE audit_events ADD COLUMN mac BLOB",
        "CREATE INDEX audit_events_by_target ON audit_events (target, seq)",
        "CREATE INDEX audit_events_by_action ON audit_events (action, seq)",
        # One random audit key, wrapped by the GMK; ``keyed_from`` (the first
        # entry it MACs) is bound into the wrap, so it cannot be moved.
        """CREATE TABLE audit_key (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            wrapped_key BLOB NOT NULL,
            gmk_version INTEGER NOT NULL REFERENCES master_keys (version),
            keyed_from INTEGER NOT NULL,
            created_at TEXT NOT NULL)""",
        """CREATE TABLE audit_checkpoints (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL,
            head BLOB NOT NULL,
            at TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (reason IN ('interval', 'export', 'prune')),
            thumbprint TEXT NOT NULL,
            signature BLOB NOT NULL)""",
        "CREATE INDEX audit_checkpoints_by_seq ON audit_checkpoints (seq)",
        # Every certificate that ever signed a checkpoint, kept after its key
        # pair is retired so old checkpoints stay checkable.
        """CREATE TABLE audit_signers (
            thumbprint TEXT PRIMARY KEY,
            cert_pem TEXT NOT NULL)""",
        # Still append-only, with two narrow exceptions: an entry from before
        # the chain gets its digest once, and entries (and checkpoints) that a
        # signed prune checkpoint covers may be deleted.
        "DROP TRIGGER audit_events_no_update",
        "DROP TRIGGER audit_events_no_delete",
        """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
            WHEN OLD.hash IS NOT NULL
            BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
        f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
            WHEN OLD.seq > {_PRUNED_THROUGH}
            BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
        """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
            BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
        f"""CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
            WHEN OLD.seq >= {_PRUNED_THROUGH}
            BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
    ),
    # 4: the trust review (issue 14).
    4: (
        # When the stored version was sealed (its EncryptedCredential's iat, or the
        # time of a plain put): a blob sealed before it is a replayed old secret.
        "ALTER TABLE credentials ADD COLUMN issued_at INTEGER",
        # An entry link names the one target its credential may be sealed for and
        # tested against (the admin's choice, not the link holder's), and counts
        # the connection tests made with it.
        "ALTER TABLE entry_links ADD COLUMN type TEXT",
        "ALTER TABLE entry_links ADD COLUMN server TEXT",
        "ALTER TABLE entry_links ADD COLUMN database TEXT",
        "ALTER TABLE entry_links ADD COLUMN tls TEXT",
        "ALTER TABLE entry_links ADD COLUMN ca_pem TEXT",
        "ALTER TABLE entry_links ADD COLUMN tests_used INTEGER NOT NULL DEFAULT 0",
        # Rows that decide access carry a MAC (vault.access.row_seal); rows from
        # before this schema get theirs once, when the key is first at hand.
        "ALTER TABLE users ADD COLUMN mac BLOB",
        "ALTER TABLE api_tokens ADD COLUMN mac BLOB",
        "ALTER TABLE entry_links ADD COLUMN mac BLOB",
        "ALTER TABLE web_sessions ADD COLUMN mac BLOB",
        "ALTER TABLE credentials ADD COLUMN mac BLOB",
        "ALTER TABLE gateway_keys ADD COLUMN mac BLOB",
        # Gateway keys wrapped from now on name their certificate in the wrap.
        "ALTER TABLE gateway_keys ADD COLUMN wrap_version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE settings ADD COLUMN mac BLOB",
        # Item 9: rotation records (vault.format.audit_chain.Rotation), signed by
        # the old and the new gateway key where signing moved from one to the
        # other.  Never updated, never pruned: they are the chain of trust from
        # the certificate an auditor holds to every key that signed.
        """CREATE TABLE audit_rotations (
            seq INTEGER PRIMARY KEY,
            head BLOB NOT NULL,
            at TEXT NOT NULL,
            from_thumbprint TEXT NOT NULL,
            to_thumbprint TEXT NOT NULL,
            from_signature BLOB NOT NULL,
            to_signature BLOB NOT NULL)""",
        """CREATE TRIGGER audit_rotations_no_update BEFORE UPDATE ON audit_rotations
            BEGIN SELECT RAISE(ABORT, 'audit rotation records are append-only'); END""",
        """CREATE TRIGGER audit_rotations_no_delete BEFORE DELETE ON audit_rotations
            BEGIN SELECT RAISE(ABORT, 'audit rotation records are append-only'); END""",
        # Item 6 (TLS policy of a data source): binding version 2 binds the TLS
        # mode and CA certificates into the at-rest AAD (vault.format.envelope).
        # Rows stored before stay version 1, and the store gives them the legacy
        # mode whatever these columns say (they are not bound at version 1).
        "ALTER TABLE credentials ADD COLUMN binding_version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE credentials ADD COLUMN tls TEXT",
        "ALTER TABLE credentials ADD COLUMN ca_pem TEXT",
    ),
    # 5: the endpoint under load (issue 15).
    5: (
        # The last full check of the audit trail (vault.audit.mark): through which
        # entry, and that entry's digest, it passed, or where it failed.  MACed
        # under a key derived from the audit key, so the page and the API check
        # only the entries after it, and a row written with plain SQL is refused.
        """CREATE TABLE audit_verified (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            through_seq INTEGER,
            head BLOB,
            passed_at TEXT,
            passed_by TEXT,
            signed_through INTEGER,
            signed_at TEXT,
            checked_at TEXT NOT NULL,
            checked_by TEXT NOT NULL,
            failed_seq INTEGER,
            problem TEXT,
            mac BLOB NOT NULL)""",
        # Credentials per GMK version, kept by the database in the transaction of
        # each change, so /status reads a few rows instead of counting them all.
        # Display only: a rotation decides from the credential rows themselves.
        # No foreign key: a count must not keep a retired GMK version alive.
        """CREATE TABLE credential_counts (
            gmk_version INTEGER PRIMARY KEY,
            n INTEGER NOT NULL)""",
        # An update is INSERT OR REPLACE: its delete fires the delete trigger
        # because the engine turns recursive_triggers on (vault.store.sqlite_engine).
        f"""CREATE TRIGGER credential_counts_after_insert AFTER INSERT ON credentials
            BEGIN {_COUNT_ROW} {_COUNT_UP} END""",
        f"""CREATE TRIGGER credential_counts_after_delete AFTER DELETE ON credentials
            BEGIN {_COUNT_DOWN} END""",
        f"""CREATE TRIGGER credential_counts_after_rewrap AFTER UPDATE OF gmk_version
            ON credentials WHEN OLD.gmk_version IS NOT NEW.gmk_version
            BEGIN {_COUNT_ROW} {_COUNT_MOVE} END""",
        """INSERT INTO credential_counts (gmk_version, n)
            SELECT gmk_version, count(*) FROM credentials GROUP BY gmk_version""",
        *_FACTS_GENERATION,
        # The newest entry of a target among a few actions (the row checks of
        # vault.access.row_seal), found without walking the target's other entries.
        "CREATE INDEX audit_events_by_target_action ON audit_events (target, action, seq)",
    ),
    # 6: gateway clusters (issue 16).  A single-machine SQLite vault has no
    # members (its keystore wraps the GMK in master_keys); the tables exist in
    # both engines so the schema and its upgrades stay one.
    6: (
        *CLUSTER_TABLES,
        # A member's own facts (its state, its wraps) are cached like the keys'
        # and re-read when they change; a heartbeat alone changes nothing cached.
        *(_generation_trigger("member_wraps", event) for event in ("INSERT", "UPDATE", "DELETE")),
        *(_generation_trigger("members", event) for event in ("INSERT", "DELETE")),
        _generation_trigger("members", f"UPDATE OF {_MEMBER_FACTS}"),
    ),
    # 7: credentials that warn before they break (issue 18).
    7: (
        *CREDENTIAL_LIFE_COLUMNS,
        *notification_tables("INTEGER PRIMARY KEY AUTOINCREMENT"),
        *HEALTH_TABLES,
    ),
    # 8: the audit trail leaves the machine as it is written (issue 19).  The
    # sinks are facts a server keeps checked: a change of one drops them.
    8: (
        *AUDIT_SINK_TABLES,
        *(_generation_trigger("audit_sinks", event) for event in ("INSERT", "UPDATE", "DELETE")),
    ),
}

SCHEMA_VERSION = max(UPGRADES)
