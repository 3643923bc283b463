-- Rosters, batches, payment lines and the ledger (ykt_kernel::intake, ::batch, ::ledger).
-- Same conventions as 0001: integers i64, money integer 分, identifiers encrypted with a
-- blind index, timestamps RFC 3339 UTC text. migrations/postgres/0002_payments.sql is the
-- same schema in PostgreSQL types.

-- One imported roster file (发放清册). The same file for the same province, project and
-- period is imported at most once.
CREATE TABLE rosters (
    id           INTEGER PRIMARY KEY,
    province     TEXT NOT NULL,
    project      TEXT NOT NULL,
    period       TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    line_count   INTEGER NOT NULL DEFAULT 0,
    accepted     INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    accepted_fen INTEGER NOT NULL DEFAULT 0,
    at           TEXT NOT NULL,
    UNIQUE (province, project, period, sha256)
) STRICT;

-- Per-line problems of a roster (errors of rejected lines, warnings of accepted ones).
-- Messages hold masked identifiers only.
CREATE TABLE roster_issues (
    roster_id   INTEGER NOT NULL REFERENCES rosters (id),
    row_no      INTEGER NOT NULL,
    column_name TEXT,
    code        TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('error', 'warning')),
    message     TEXT NOT NULL,
    name_masked TEXT NOT NULL,
    id_masked   TEXT NOT NULL
) STRICT;
CREATE INDEX roster_issues_roster ON roster_issues (roster_id, row_no);

-- A disbursement batch (发放批次): one project, one county, one current period.
CREATE TABLE batches (
    id            INTEGER PRIMARY KEY,
    province      TEXT NOT NULL,
    project       TEXT NOT NULL,
    project_name  TEXT NOT NULL,
    region        TEXT NOT NULL,
    period        TEXT NOT NULL,
    order_no      TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    maker         TEXT NOT NULL,
    roster_id     INTEGER REFERENCES rosters (id),
    funding       TEXT NOT NULL,
    control_count INTEGER NOT NULL CHECK (control_count >= 0),
    control_fen   INTEGER NOT NULL CHECK (control_fen >= 0),
    version       INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX batches_state ON batches (province, state);

-- Every workflow step taken on a batch (for maker-checker and the trace).
CREATE TABLE batch_steps (
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    seq        INTEGER NOT NULL,
    step       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    reason     TEXT,
    at         TEXT NOT NULL,
    PRIMARY KEY (batch_id, seq)
) STRICT;

-- A payment line. `dup_scope` is 0 for projects paid once per person and period, the
-- batch id for 多次/年 projects; the partial unique index is the database's guarantee of
-- "one line per person, project and period" (DOMAIN.md §3 dup.already_paid). A refunded
-- line no longer counts: the person may be paid again later.
CREATE TABLE payment_lines (
    id          INTEGER PRIMARY KEY,
    batch_id    INTEGER NOT NULL REFERENCES batches (id),
    row_no      INTEGER NOT NULL,
    person_idx  BLOB NOT NULL CHECK (length(person_idx) = 16),
    id_enc      BLOB NOT NULL,
    name        TEXT NOT NULL,
    phone_enc   BLOB,
    account_enc BLOB NOT NULL,
    bank        TEXT NOT NULL,
    region      TEXT NOT NULL,
    project     TEXT NOT NULL,
    period      TEXT NOT NULL,
    dup_scope   INTEGER NOT NULL,
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'credited', 'failed', 'refunded')),
    attempt     INTEGER NOT NULL DEFAULT 0,
    fail_reason TEXT,
    proxy_kind  TEXT,
    proxy_name  TEXT,
    warnings    TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE UNIQUE INDEX payment_lines_once ON payment_lines (project, person_idx, period, dup_scope)
    WHERE state <> 'refunded';
CREATE INDEX payment_lines_batch ON payment_lines (batch_id, state);
CREATE INDEX payment_lines_person ON payment_lines (person_idx, period);

-- Custody (代管) and receipt (代领) agreements on record (乐山办法 五).
CREATE TABLE proxy_agreements (
    person_idx BLOB NOT NULL CHECK (length(person_idx) = 16),
    kind       TEXT NOT NULL CHECK (kind IN ('custody', 'receipt')),
    proxy_name TEXT NOT NULL,
    filed_with TEXT NOT NULL,
    signed_on  TEXT NOT NULL,
    PRIMARY KEY (person_idx, kind)
) STRICT;

-- The double-entry ledger: every entry's postings sum to zero (checked on insert by the
-- kernel's Entry type and verified by ykt_store::payments::ledger_sum).
CREATE TABLE ledger_entries (
    id       INTEGER PRIMARY KEY,
    batch_id INTEGER REFERENCES batches (id),
    kind     TEXT NOT NULL,
    memo     TEXT NOT NULL,
    subject  TEXT,
    at       TEXT NOT NULL
) STRICT;
CREATE TABLE ledger_postings (
    entry_id     INTEGER NOT NULL REFERENCES ledger_entries (id),
    account_kind TEXT NOT NULL,
    owner        TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen <> 0)
) STRICT;
CREATE INDEX ledger_postings_entry ON ledger_postings (entry_id);
