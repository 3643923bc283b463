-- ykt-store foundation schema (SQLite).
--
-- Conventions shared with migrations/postgres: integers are INTEGER here and BIGINT there and
-- are decoded as i64; money is integer 分; byte strings are BLOB / BYTEA; timestamps are TEXT
-- RFC 3339 UTC; booleans are INTEGER 0/1. Tables are STRICT so a wrongly typed bind fails
-- loudly instead of being stored as something else.
--
-- Personal identifiers (resident ID, card number, bank account, phone) are never stored in
-- plain text: `*_enc` columns hold AES-256-GCM ciphertext (nonce || ciphertext || tag) and
-- `*_idx` columns a 16-byte keyed blind index (HMAC-SHA256) used for equality lookups.

-- Facts about the store itself. `vault_check` holds a key-check value (an HMAC of a fixed
-- label under the master key, never the key) so a store opened with the wrong key is refused.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- 统计用区划代码. `code` is the twelve-digit zero-padded code, `prefix` its significant digits.
CREATE TABLE regions (
    code   TEXT PRIMARY KEY CHECK (length(code) = 12),
    prefix TEXT NOT NULL UNIQUE,
    level  TEXT NOT NULL CHECK (level IN ('province', 'city', 'county', 'township', 'village')),
    name   TEXT NOT NULL
) STRICT;

-- Every bulk import (card registry snapshot, death register, region table...). The same
-- content (kind + SHA-256 + scope) is imported at most once.
CREATE TABLE imports (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    scope     TEXT NOT NULL DEFAULT '',
    row_count INTEGER NOT NULL DEFAULT 0,
    accepted  INTEGER NOT NULL DEFAULT 0,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL,
    UNIQUE (kind, sha256, scope)
) STRICT;

-- The HR&SS card registry (社保卡管理信息系统) snapshot: one current card per person.
CREATE TABLE cards (
    person_idx  BLOB PRIMARY KEY CHECK (length(person_idx) = 16),
    id_enc      BLOB NOT NULL,
    name        TEXT NOT NULL,
    card_no_enc BLOB NOT NULL,
    bank        TEXT NOT NULL,
    account_enc BLOB NOT NULL,
    account_idx BLOB NOT NULL CHECK (length(account_idx) = 16),
    status      TEXT NOT NULL CHECK (status IN ('normal', 'lost', 'cancelled', 'frozen')),
    activated   INTEGER NOT NULL CHECK (activated IN (0, 1)),
    import_id   INTEGER NOT NULL REFERENCES imports (id),
    imported_at TEXT NOT NULL
) STRICT;
CREATE INDEX cards_account_idx ON cards (account_idx);

-- The death register (死亡登记).
CREATE TABLE deaths (
    person_idx    BLOB PRIMARY KEY CHECK (length(person_idx) = 16),
    id_enc        BLOB NOT NULL,
    name          TEXT NOT NULL,
    date_of_death TEXT NOT NULL,
    import_id     INTEGER NOT NULL REFERENCES imports (id),
    imported_at   TEXT NOT NULL
) STRICT;

-- Operator accounts. `roles` is a comma-separated list of role codes, `region` the
-- twelve-digit code of the region the user may act in.
CREATE TABLE users (
    login         TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    roles         TEXT NOT NULL,
    region        TEXT NOT NULL,
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    TEXT NOT NULL
) STRICT;

-- The hash-chained audit trail (ykt_kernel::audit). Append-only: the triggers below refuse
-- any UPDATE or DELETE.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY CHECK (seq >= 1),
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
) STRICT;
CREATE INDEX audit_log_subject ON audit_log (subject, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, '审计日志只能追加，不能修改 (audit_log is append-only: UPDATE refused)');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, '审计日志只能追加，不能删除 (audit_log is append-only: DELETE refused)');
END;
