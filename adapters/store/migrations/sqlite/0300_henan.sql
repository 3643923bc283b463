-- Henan (河南省, 濮阳规程 under 豫财监〔2021〕38号): the project library and its change requests,
-- the agent banks, the orders pushed to the budget system, the bank pulling the detail and
-- posting results, hand-overs and statements. migrations/postgres/0300_henan.sql is the same
-- schema in PostgreSQL types. Dates called `*_on` are business dates (YYYY-MM-DD, the
-- platform's "today"); `at` columns are RFC 3339 UTC timestamps of the write.

-- 补贴项目库 (第十条): only projects here, with status `active`, can be paid. `entry` is the
-- project's definition as JSON (the fields of the 调整变更申请表).
CREATE TABLE henan_library (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    entry      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'withdrawn')),
    version    INTEGER NOT NULL CHECK (version >= 1),
    request_id INTEGER,
    updated_on TEXT NOT NULL,
    at         TEXT NOT NULL
) STRICT;

-- Every version of every library entry: the initial library (`seed`) and each applied change.
CREATE TABLE henan_library_history (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('seed', 'add', 'modify', 'withdraw')),
    entry      TEXT NOT NULL,
    status     TEXT NOT NULL,
    request_id INTEGER,
    actor      TEXT NOT NULL,
    on_date    TEXT NOT NULL,
    at         TEXT NOT NULL,
    UNIQUE (code, version)
) STRICT;

-- 惠民惠农财政补贴项目调整变更申请表 (第十二条) and the steps taken on it.
CREATE TABLE henan_change_requests (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('add', 'modify', 'withdraw')),
    code       TEXT NOT NULL,
    entry      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    region     TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('filed', 'reviewed', 'rechecked', 'applied', 'rejected')),
    filed_by   TEXT NOT NULL,
    filed_on   TEXT NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0,
    at         TEXT NOT NULL
) STRICT;
CREATE TABLE henan_change_steps (
    request_id INTEGER NOT NULL REFERENCES henan_change_requests (id),
    seq        INTEGER NOT NULL,
    step       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    office     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    note       TEXT,
    on_date    TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
) STRICT;

-- 备选代发金融机构 (第十五条) and each county's choice of one or two (第十六条).
CREATE TABLE henan_candidate_banks (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    agreement_no   TEXT NOT NULL,
    connected      INTEGER NOT NULL CHECK (connected IN (0, 1)),
    free_interbank INTEGER NOT NULL CHECK (free_interbank IN (0, 1)),
    added_by       TEXT NOT NULL,
    added_on       TEXT NOT NULL,
    at             TEXT NOT NULL
) STRICT;
CREATE TABLE henan_county_banks (
    county       TEXT NOT NULL,
    bank         TEXT NOT NULL REFERENCES henan_candidate_banks (code),
    agreement_no TEXT NOT NULL,
    selected_by  TEXT NOT NULL,
    selected_on  TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (county, bank)
) STRICT;

-- One credential per bank for the bank interface: only the SHA-256 of the (random, 256-bit)
-- token is kept; issuing a new one replaces the old.
CREATE TABLE henan_bank_credentials (
    bank         TEXT PRIMARY KEY REFERENCES henan_candidate_banks (code),
    token_sha256 TEXT NOT NULL UNIQUE,
    issued_by    TEXT NOT NULL,
    at           TEXT NOT NULL
) STRICT;

-- 补贴资金发放申请 (第二十一条): the batch's agent bank and budget unit, what was pushed to the
-- budget system and what it answered.
CREATE TABLE henan_orders (
    batch_id     INTEGER PRIMARY KEY REFERENCES batches (id),
    order_no     TEXT NOT NULL UNIQUE,
    bank         TEXT NOT NULL REFERENCES henan_candidate_banks (code),
    budget_unit  TEXT NOT NULL,
    assigned_by  TEXT NOT NULL,
    assigned_on  TEXT NOT NULL,
    pushed_on    TEXT,
    push_message TEXT,
    request_no   TEXT,
    indicator    TEXT,
    funded_on    TEXT,
    at           TEXT NOT NULL
) STRICT;

-- Each time the detail of an order is made available to pull (first release, re-pulls of
-- corrected lines), and whether the bank was notified.
CREATE TABLE henan_releases (
    order_no   TEXT NOT NULL,
    round      INTEGER NOT NULL,
    lines      INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    notified   TEXT NOT NULL,
    on_date    TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (order_no, round)
) STRICT;

-- Each pull of an order's detail by its bank (第二十二条): a page or a stream, from which line,
-- how many lines were served, and whether the transfer completed.
CREATE TABLE henan_pulls (
    id          INTEGER PRIMARY KEY,
    order_no    TEXT NOT NULL,
    bank        TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('page', 'stream')),
    after_line  INTEGER NOT NULL,
    last_line   INTEGER,
    lines       INTEGER NOT NULL DEFAULT 0,
    complete    INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
    at          TEXT NOT NULL,
    finished_at TEXT
) STRICT;
CREATE INDEX henan_pulls_order ON henan_pulls (order_no, id);

-- The results as the bank posted them (第二十三条), one per line and attempt, with the SMS it
-- sent (第八条(五)); and every post, applied or refused.
CREATE TABLE henan_results (
    line_id     INTEGER NOT NULL REFERENCES payment_lines (id),
    attempt     INTEGER NOT NULL,
    order_no    TEXT NOT NULL,
    bank        TEXT NOT NULL,
    amount_fen  INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('credited', 'failed')),
    reason      TEXT,
    bank_date   TEXT NOT NULL,
    sms_text    TEXT,
    sms_at      TEXT,
    sms_ok      INTEGER CHECK (sms_ok IN (0, 1)),
    post_id     INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (line_id, attempt)
) STRICT;
CREATE INDEX henan_results_order ON henan_results (order_no, bank_date);
CREATE TABLE henan_result_posts (
    id         INTEGER PRIMARY KEY,
    order_no   TEXT NOT NULL,
    bank       TEXT NOT NULL,
    results    INTEGER NOT NULL,
    applied    INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    refused    INTEGER NOT NULL,
    error      TEXT,
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX henan_result_posts_order ON henan_result_posts (order_no, id);

-- 交易结果交接 (第二十六条): the bank's stamped results per order and round (the results it
-- posted since its previous hand-over: posts up to `upto_post`), what the platform recorded for
-- the same posts, what differs, and the department's check.
CREATE TABLE henan_handovers (
    order_no       TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    bank           TEXT NOT NULL,
    handler        TEXT NOT NULL,
    received_on    TEXT NOT NULL,
    bank_credited  INTEGER NOT NULL,
    bank_credited_fen INTEGER NOT NULL,
    bank_failed    INTEGER NOT NULL,
    bank_failed_fen INTEGER NOT NULL,
    sys_credited   INTEGER NOT NULL,
    sys_credited_fen INTEGER NOT NULL,
    sys_failed     INTEGER NOT NULL,
    sys_failed_fen INTEGER NOT NULL,
    upto_post      INTEGER NOT NULL,
    discrepancy    TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL CHECK (state IN ('open', 'confirmed', 'disputed')),
    done_on        TEXT,
    done_by        TEXT,
    note           TEXT,
    at             TEXT NOT NULL,
    PRIMARY KEY (order_no, seq)
) STRICT;

-- 台账对账: the bank's per-project ledger for a month (每月对账) or a year (次年1月汇总核对),
-- compared with the platform's figures; `lines` is the comparison as JSON.
CREATE TABLE henan_statements (
    bank        TEXT NOT NULL,
    period      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('monthly', 'annual')),
    received_on TEXT NOT NULL,
    lines       TEXT NOT NULL,
    matches     INTEGER NOT NULL CHECK (matches IN (0, 1)),
    at          TEXT NOT NULL,
    PRIMARY KEY (bank, period)
) STRICT;

-- Business dates of signed corrections and refunds (the cycle's tables keep timestamps), for
-- the monthly report, with who signed (第二十三条).
CREATE TABLE henan_line_events (
    id         INTEGER PRIMARY KEY,
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    line_id    INTEGER NOT NULL REFERENCES payment_lines (id),
    kind       TEXT NOT NULL CHECK (kind IN ('correction', 'refund')),
    signed_by  TEXT,
    head       TEXT,
    amount_fen INTEGER NOT NULL,
    on_date    TEXT NOT NULL,
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX henan_line_events_batch ON henan_line_events (batch_id);
