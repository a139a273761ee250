"""The vault schema in PostgreSQL's dialect, for a gateway cluster's shared database.

The same tables, columns, constraints and database-enforced rules as the SQLite
schema (``vault.store.schema``) at ``POSTGRES_FIRST_VERSION``: append-only audit
tables, the credential counts, the facts generation.  Triggers are PL/pgSQL
functions here; TRUNCATE, which skips row triggers, is refused as well.

Text columns sort bytewise (``COLLATE "C"``), as SQLite's do: keyset paging and
the audit page's action prefixes rely on that order, whatever the database's
locale.  ``write_lock`` is the row every write locks first
(``vault.store.postgres_engine``).

``POSTGRES_UPGRADES[n]`` take a PostgreSQL vault from n-1 to n, as ``UPGRADES``
do for SQLite; the first PostgreSQL vaults were made at schema 6, and a schema change from
then on adds its statements to both.
"""

from vault.store.schema import (
    AUDIT_SINK_TABLES,
    CREDENTIAL_LIFE_COLUMNS,
    HEALTH_TABLES,
    SCHEMA_VERSION,
    notification_tables,
)

POSTGRES_FIRST_VERSION = 6
T = 'TEXT COLLATE "C"'

_PRUNED_THROUGH = "(SELECT coalesce(max(seq), 0) FROM audit_checkpoints WHERE reason = 'prune')"
_ROLES = "CHECK (role IN ('admin', 'creator', 'auditor'))"


def _refusal(name: str, message: str, condition: str = "true") -> str:
    """A trigger function that refuses the row change when ``condition`` holds."""
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {condition} THEN
                RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$"""


def _append_only(table: str, message: str, update_when: str, delete_when: str) -> tuple[str, ...]:
    return (
        _refusal(f"{table}_no_update", message, update_when),
        _refusal(f"{table}_no_delete", message, delete_when),
        _refusal(f"{table}_no_truncate", message),
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_no_update()""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_no_delete()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {table}_no_truncate()""",
    )


# Tables whose rows the long-lived processes cache facts from (as in schema.py),
# with when a row change bumps the generation (NEW is NULL in a DELETE).
_FACTS_TABLES = (
    (
        "settings",
        "(TG_OP = 'DELETE' AND OLD.key <> 'audit_head')"
        " OR (TG_OP <> 'DELETE' AND NEW.key <> 'audit_head')",
    ),
    ("master_keys", "true"),
    ("gateway_keys", "true"),
    ("tls_identity", "true"),
    ("audit_key", "true"),
    ("member_wraps", "true"),
    # A heartbeat alone (last_seen_ms) changes nothing cached.
    (
        "members",
        "TG_OP <> 'UPDATE' OR (NEW.name, NEW.state, NEW.epoch, NEW.public_key,"
        " NEW.wrapped_private_key, NEW.mac) IS DISTINCT FROM (OLD.name, OLD.state, OLD.epoch,"
        " OLD.public_key, OLD.wrapped_private_key, OLD.mac)",
    ),
)


def _generation_triggers() -> tuple[str, ...]:
    return _generation_triggers_of(_FACTS_TABLES)


def _generation_triggers_of(tables: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    statements: list[str] = []
    for table, condition in tables:
        body = (
            f"BEGIN IF {condition} THEN"  # noqa: S608 - fixed names
            " UPDATE facts_generation SET generation = generation + 1 WHERE id = 1;"
            " END IF; RETURN NULL; END"
        )
        statements += [
            f"CREATE FUNCTION {table}_bumps_generation() RETURNS trigger"
            f" LANGUAGE plpgsql AS $$ {body} $$",
            f"""CREATE TRIGGER {table}_bumps_generation AFTER INSERT OR UPDATE OR DELETE
                ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_bumps_generation()""",
        ]
    return tuple(statements)


_CREDENTIAL_COUNTS = (
    """CREATE FUNCTION credential_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE credential_counts SET n = n - 1 WHERE gmk_version = OLD.gmk_version;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            INSERT INTO credential_counts (gmk_version, n) VALUES (NEW.gmk_version, 1)
                ON CONFLICT (gmk_version) DO UPDATE SET n = credential_counts.n + 1;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER credential_counts_after_insert_or_delete AFTER INSERT OR DELETE
        ON credentials FOR EACH ROW EXECUTE FUNCTION credential_counts_follow()""",
    """CREATE TRIGGER credential_counts_after_rewrap AFTER UPDATE OF gmk_version ON credentials
        FOR EACH ROW WHEN (OLD.gmk_version IS DISTINCT FROM NEW.gmk_version)
        EXECUTE FUNCTION credential_counts_follow()""",
)

POSTGRES_STATEMENTS: tuple[str, ...] = (
    "CREATE TABLE write_lock (id INTEGER PRIMARY KEY CHECK (id = 1))",
    "INSERT INTO write_lock (id) VALUES (1)",
    f"CREATE TABLE settings (key {T} PRIMARY KEY, value {T} NOT NULL, mac BYTEA)",
    f"""CREATE TABLE master_keys (
        version BIGINT PRIMARY KEY,
        keystore_wrapped BYTEA NOT NULL,
        recovery_wrapped BYTEA NOT NULL,
        recovery_salt BYTEA NOT NULL,
        recovery_opslimit BIGINT NOT NULL,
        recovery_memlimit BIGINT NOT NULL,
        state {T} NOT NULL CHECK (state IN ('current', 'retiring')),
        created_at {T} NOT NULL)""",
    "CREATE UNIQUE INDEX one_current_master_key ON master_keys (state) WHERE state = 'current'",
    f"""CREATE TABLE gateway_keys (
        version BIGINT PRIMARY KEY,
        key_type {T} NOT NULL,
        cert_pem {T} NOT NULL,
        thumbprint {T} NOT NULL UNIQUE,
        wrapped_private_key BYTEA NOT NULL,
        gmk_version BIGINT NOT NULL REFERENCES master_keys (version),
        state {T} NOT NULL CHECK (state IN ('current', 'legacy')),
        created_at {T} NOT NULL,
        mac BYTEA,
        wrap_version BIGINT NOT NULL DEFAULT 1)""",
    "CREATE UNIQUE INDEX one_current_gateway_key ON gateway_keys (state) WHERE state = 'current'",
    f"""CREATE TABLE credentials (
        id {T} PRIMARY KEY,
        name {T} NOT NULL UNIQUE,
        version BIGINT NOT NULL,
        type {T} NOT NULL,
        server {T} NOT NULL,
        database {T},
        auth {T} NOT NULL,
        username {T},
        gmk_version BIGINT NOT NULL REFERENCES master_keys (version),
        wrapped_dek BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        created_at {T} NOT NULL,
        updated_at {T} NOT NULL,
        owner {T},
        issued_at BIGINT,
        mac BYTEA,
        binding_version BIGINT NOT NULL DEFAULT 1,
        tls {T},
        ca_pem {T})""",
    f"""CREATE TABLE audit_events (
        seq BIGINT PRIMARY KEY,
        at {T} NOT NULL,
        actor {T} NOT NULL,
        channel {T} NOT NULL,
        action {T} NOT NULL,
        target {T},
        outcome {T} NOT NULL,
        request_id {T} NOT NULL,
        details {T} NOT NULL,
        prev_hash BYTEA,
        hash BYTEA,
        mac BYTEA)""",
    "CREATE INDEX audit_events_by_target ON audit_events (target, seq)",
    "CREATE INDEX audit_events_by_action ON audit_events (action, seq)",
    "CREATE INDEX audit_events_by_target_action ON audit_events (target, action, seq)",
    f"""CREATE TABLE users (
        name {T} PRIMARY KEY,
        role {T} NOT NULL {_ROLES},
        password_hash {T} NOT NULL,
        failed_signins BIGINT NOT NULL DEFAULT 0,
        locked_until {T},
        created_at {T} NOT NULL,
        mac BYTEA)""",
    f"""CREATE TABLE api_tokens (
        name {T} PRIMARY KEY,
        role {T} NOT NULL {_ROLES},
        token_hash BYTEA NOT NULL UNIQUE,
        created_by {T} NOT NULL,
        created_at {T} NOT NULL,
        revoked_at {T},
        mac BYTEA)""",
    f"""CREATE TABLE entry_links (
        id {T} PRIMARY KEY,
        datasource {T} NOT NULL,
        link_hash BYTEA NOT NULL UNIQUE,
        created_by {T} NOT NULL,
        created_at {T} NOT NULL,
        expires_at {T} NOT NULL,
        used_at {T},
        type {T},
        server {T},
        database {T},
        tls {T},
        ca_pem {T},
        tests_used BIGINT NOT NULL DEFAULT 0,
        mac BYTEA)""",
    f"""CREATE TABLE web_sessions (
        id_hash BYTEA PRIMARY KEY,
        user_name {T} NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf_token {T} NOT NULL,
        created_at {T} NOT NULL,
        expires_at {T} NOT NULL,
        mac BYTEA)""",
    # One TLS identity per member (keyed by the member id); a single machine's is id 1.
    f"""CREATE TABLE tls_identity (
        id {T} PRIMARY KEY,
        cert_pem {T} NOT NULL,
        wrapped_key BYTEA NOT NULL,
        gmk_version BIGINT NOT NULL REFERENCES master_keys (version),
        source {T} NOT NULL CHECK (source IN ('generated', 'imported')),
        created_at {T} NOT NULL)""",
    f"""CREATE TABLE audit_key (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        wrapped_key BYTEA NOT NULL,
        gmk_version BIGINT NOT NULL REFERENCES master_keys (version),
        keyed_from BIGINT NOT NULL,
        created_at {T} NOT NULL)""",
    f"""CREATE TABLE audit_checkpoints (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        seq BIGINT NOT NULL,
        head BYTEA NOT NULL,
        at {T} NOT NULL,
        reason {T} NOT NULL CHECK (reason IN ('interval', 'export', 'prune')),
        thumbprint {T} NOT NULL,
        signature BYTEA NOT NULL)""",
    "CREATE INDEX audit_checkpoints_by_seq ON audit_checkpoints (seq)",
    f"CREATE TABLE audit_signers (thumbprint {T} PRIMARY KEY, cert_pem {T} NOT NULL)",
    f"""CREATE TABLE audit_rotations (
        seq BIGINT PRIMARY KEY,
        head BYTEA NOT NULL,
        at {T} NOT NULL,
        from_thumbprint {T} NOT NULL,
        to_thumbprint {T} NOT NULL,
        from_signature BYTEA NOT NULL,
        to_signature BYTEA NOT NULL)""",
    f"""CREATE TABLE audit_verified (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        through_seq BIGINT,
        head BYTEA,
        passed_at {T},
        passed_by {T},
        signed_through BIGINT,
        signed_at {T},
        checked_at {T} NOT NULL,
        checked_by {T} NOT NULL,
        failed_seq BIGINT,
        problem {T},
        mac BYTEA NOT NULL)""",
    "CREATE TABLE credential_counts (gmk_version BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
    """CREATE TABLE facts_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation BIGINT NOT NULL)""",
    "INSERT INTO facts_generation (id, generation) VALUES (1, 1)",
    f"""CREATE TABLE members (
        id {T} PRIMARY KEY,
        name {T} NOT NULL UNIQUE,
        software_version {T} NOT NULL,
        keystore_kind {T} NOT NULL,
        public_key BYTEA NOT NULL,
        wrapped_private_key BYTEA NOT NULL,
        state {T} NOT NULL CHECK (state IN ('enabled', 'disabled')),
        epoch BIGINT NOT NULL,
        joined_at {T} NOT NULL,
        last_seen_ms BIGINT,
        mac BYTEA)""",
    f"""CREATE TABLE member_wraps (
        member_id {T} NOT NULL REFERENCES members (id) ON DELETE CASCADE,
        gmk_version BIGINT NOT NULL,
        wrapped BYTEA NOT NULL,
        PRIMARY KEY (member_id, gmk_version))""",
    f"""CREATE TABLE leases (
        name {T} PRIMARY KEY,
        holder {T} NOT NULL,
        token BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL)""",
    *_append_only(
        "audit_events",
        "audit entries are append-only",
        "OLD.hash IS NOT NULL",
        f"OLD.seq > {_PRUNED_THROUGH}",
    ),
    *_append_only(
        "audit_checkpoints",
        "audit checkpoints are append-only",
        "true",
        f"OLD.seq >= {_PRUNED_THROUGH}",
    ),
    *_append_only("audit_rotations", "audit rotation records are append-only", "true", "true"),
    *_CREDENTIAL_COUNTS,
    *_generation_triggers(),
)

POSTGRES_UPGRADES: dict[int, tuple[str, ...]] = {
    # 7: credentials that warn before they break (issue 18), as in schema.py.
    7: (
        *(
            statement.replace(" TEXT", f" {T}").replace(" INTEGER", " BIGINT")
            for statement in CREDENTIAL_LIFE_COLUMNS
        ),
        *(
            statement.replace(" TEXT", f" {T}")
            .replace(" INTEGER", " BIGINT")
            .replace(" BLOB", " BYTEA")
            for statement in notification_tables(
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
            )
        ),
        *(
            statement.replace(" TEXT", f" {T}")
            .replace(" INTEGER", " BIGINT")
            .replace(" BLOB", " BYTEA")
            for statement in HEALTH_TABLES
        ),
    ),
    # 8: audit sinks (issue 19), as in schema.py.
    8: (
        *(
            statement.replace(" TEXT", f" {T}")
            .replace(" INTEGER", " BIGINT")
            .replace(" BLOB", " BYTEA")
            for statement in AUDIT_SINK_TABLES
        ),
        *_generation_triggers_of((("audit_sinks", "true"),)),
    ),
}

if POSTGRES_FIRST_VERSION + len(POSTGRES_UPGRADES) != SCHEMA_VERSION:
    raise RuntimeError("a schema change needs its PostgreSQL statements too")
