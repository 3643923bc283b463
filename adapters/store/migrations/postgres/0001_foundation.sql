-- ykt-store foundation schema (PostgreSQL). Keep in step with migrations/sqlite: same tables,
-- same columns, same constraints; integers are BIGINT (decoded as i64), byte strings BYTEA,
-- timestamps TEXT RFC 3339 UTC, booleans BIGINT 0/1, money integer 分.
--
-- Personal identifiers are never stored in plain text: `*_enc` columns hold AES-256-GCM
-- ciphertext (nonce || ciphertext || tag), `*_idx` columns a 16-byte keyed blind index.

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE regions (
    code   TEXT PRIMARY KEY CHECK (length(code) = 12),
    prefix TEXT NOT NULL UNIQUE,
    level  TEXT NOT NULL CHECK (level IN ('province', 'city', 'county', 'township', 'village')),
    name   TEXT NOT NULL
);

CREATE TABLE imports (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind      TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    scope     TEXT NOT NULL DEFAULT '',
    row_count BIGINT NOT NULL DEFAULT 0,
    accepted  BIGINT NOT NULL DEFAULT 0,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL,
    UNIQUE (kind, sha256, scope)
);

CREATE TABLE cards (
    person_idx  BYTEA PRIMARY KEY CHECK (length(person_idx) = 16),
    id_enc      BYTEA NOT NULL,
    name        TEXT NOT NULL,
    card_no_enc BYTEA NOT NULL,
    bank        TEXT NOT NULL,
    account_enc BYTEA NOT NULL,
    account_idx BYTEA NOT NULL CHECK (length(account_idx) = 16),
    status      TEXT NOT NULL CHECK (status IN ('normal', 'lost', 'cancelled', 'frozen')),
    activated   BIGINT NOT NULL CHECK (activated IN (0, 1)),
    import_id   BIGINT NOT NULL REFERENCES imports (id),
    imported_at TEXT NOT NULL
);
CREATE INDEX cards_account_idx ON cards (account_idx);

CREATE TABLE deaths (
    person_idx    BYTEA PRIMARY KEY CHECK (length(person_idx) = 16),
    id_enc        BYTEA NOT NULL,
    name          TEXT NOT NULL,
    date_of_death TEXT NOT NULL,
    import_id     BIGINT NOT NULL REFERENCES imports (id),
    imported_at   TEXT NOT NULL
);

CREATE TABLE users (
    login         TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    roles         TEXT NOT NULL,
    region        TEXT NOT NULL,
    password_hash TEXT,
    disabled      BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    TEXT NOT NULL
);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY CHECK (seq >= 1),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);

-- Append-only: refuse UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '审计日志只能追加，不能修改或删除 (audit_log is append-only: % refused)', TG_OP;
END;
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
