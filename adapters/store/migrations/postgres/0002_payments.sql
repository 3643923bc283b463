-- Rosters, batches, payment lines and the ledger (ykt_kernel::intake, ::batch, ::ledger).
-- Same conventions as 0001: integers i64, money integer 分, identifiers encrypted with a
-- blind index, timestamps RFC 3339 UTC text. this is the PostgreSQL twin of
-- migrations/sqlite/0002_payments.sql.

-- One imported roster file (发放清册). The same file for the same province, project and
-- period is imported at most once.
CREATE TABLE rosters (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    province     TEXT NOT NULL,
    project      TEXT NOT NULL,
    period       TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    line_count   BIGINT NOT NULL DEFAULT 0,
    accepted     BIGINT NOT NULL DEFAULT 0,
    rejected     BIGINT NOT NULL DEFAULT 0,
    accepted_fen BIGINT NOT NULL DEFAULT 0,
    at           TEXT NOT NULL,
    UNIQUE (province, project, period, sha256)
);

-- Per-line problems of a roster (errors of rejected lines, warnings of accepted ones).
-- Messages hold masked identifiers only.
CREATE TABLE roster_issues (
    roster_id   BIGINT NOT NULL REFERENCES rosters (id),
    row_no      BIGINT NOT NULL,
    column_name TEXT,
    code        TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('error', 'warning')),
    message     TEXT NOT NULL,
    name_masked TEXT NOT NULL,
    id_masked   TEXT NOT NULL
);
CREATE INDEX roster_issues_roster ON roster_issues (roster_id, row_no);

-- A disbursement batch (发放批次): one project, one county, one current period.
CREATE TABLE batches (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    province      TEXT NOT NULL,
    project       TEXT NOT NULL,
    project_name  TEXT NOT NULL,
    region        TEXT NOT NULL,
    period        TEXT NOT NULL,
    order_no      TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    maker         TEXT NOT NULL,
    roster_id     BIGINT REFERENCES rosters (id),
    funding       TEXT NOT NULL,
    control_count BIGINT NOT NULL CHECK (control_count >= 0),
    control_fen   BIGINT NOT NULL CHECK (control_fen >= 0),
    version       BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX batches_state ON batches (province, state);

-- Every workflow step taken on a batch (for maker-checker and the trace).
CREATE TABLE batch_steps (
    batch_id   BIGINT NOT NULL REFERENCES batches (id),
    seq        BIGINT NOT NULL,
    step       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    reason     TEXT,
    at         TEXT NOT NULL,
    PRIMARY KEY (batch_id, seq)
);

-- A payment line. `dup_scope` is 0 for projects paid once per person and period, the
-- batch id for 多次/年 projects; the partial unique index is the database's guarantee of
-- "one line per person, project and period" (DOMAIN.md §3 dup.already_paid). A refunded
-- line no longer counts: the person may be paid again later.
CREATE TABLE payment_lines (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    BIGINT NOT NULL REFERENCES batches (id),
    row_no      BIGINT NOT NULL,
    person_idx  BYTEA NOT NULL CHECK (length(person_idx) = 16),
    id_enc      BYTEA NOT NULL,
    name        TEXT NOT NULL,
    phone_enc   BYTEA,
    account_enc BYTEA NOT NULL,
    bank        TEXT NOT NULL,
    region      TEXT NOT NULL,
    project     TEXT NOT NULL,
    period      TEXT NOT NULL,
    dup_scope   BIGINT NOT NULL,
    amount_fen  BIGINT NOT NULL CHECK (amount_fen > 0),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'credited', 'failed', 'refunded')),
    attempt     BIGINT NOT NULL DEFAULT 0,
    fail_reason TEXT,
    proxy_kind  TEXT,
    proxy_name  TEXT,
    warnings    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX payment_lines_once ON payment_lines (project, person_idx, period, dup_scope)
    WHERE state <> 'refunded';
CREATE INDEX payment_lines_batch ON payment_lines (batch_id, state);
CREATE INDEX payment_lines_person ON payment_lines (person_idx, period);

-- Custody (代管) and receipt (代领) agreements on record (乐山办法 五).
CREATE TABLE proxy_agreements (
    person_idx BYTEA NOT NULL CHECK (length(person_idx) = 16),
    kind       TEXT NOT NULL CHECK (kind IN ('custody', 'receipt')),
    proxy_name TEXT NOT NULL,
    filed_with TEXT NOT NULL,
    signed_on  TEXT NOT NULL,
    PRIMARY KEY (person_idx, kind)
);

-- The double-entry ledger: every entry's postings sum to zero (checked on insert by the
-- kernel's Entry type and verified by ykt_store::payments::ledger_sum).
CREATE TABLE ledger_entries (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id BIGINT REFERENCES batches (id),
    kind     TEXT NOT NULL,
    memo     TEXT NOT NULL,
    subject  TEXT,
    at       TEXT NOT NULL
);
CREATE TABLE ledger_postings (
    entry_id     BIGINT NOT NULL REFERENCES ledger_entries (id),
    account_kind TEXT NOT NULL,
    owner        TEXT NOT NULL,
    amount_fen   BIGINT NOT NULL CHECK (amount_fen <> 0)
);
CREATE INDEX ledger_postings_entry ON ledger_postings (entry_id);
