-- Sichuan (四川省, 单位零余额账户发放): publicity and objections, authorised payment plans and
-- procedural reviews, treasury vouchers (8202), agency agreements with cooperating banks, the
-- payment instruction and result files, recoveries, dual verification and month-end checks.
-- migrations/postgres/0200_sichuan.sql is the same schema in PostgreSQL types. Dates named
-- `*_on` are the platform's business dates (YYYY-MM-DD, the configured "today"); `at` columns
-- are RFC 3339 UTC timestamps. No column holds a personal identifier in clear: lists keep
-- masked names and IDs, lines are referenced by id.

-- 《补贴资金发放委托代理协议》 between a department and its cooperating bank (川财办〔2018〕61号
-- 三(三)). `project` covers its sub-items; `region` is the department's county (12 digits).
CREATE TABLE sichuan_agency_agreements (
    id              INTEGER PRIMARY KEY,
    agreement_no    TEXT NOT NULL UNIQUE,
    region          TEXT NOT NULL,
    project         TEXT NOT NULL,
    department      TEXT NOT NULL,
    zb_account_no   TEXT NOT NULL,
    zb_account_name TEXT NOT NULL,
    zb_bank         TEXT NOT NULL,
    bank            TEXT NOT NULL,
    terms           TEXT NOT NULL,
    signed_on       TEXT NOT NULL,
    valid_until     TEXT NOT NULL,
    actor           TEXT NOT NULL,
    at              TEXT NOT NULL,
    CHECK (valid_until >= signed_on)
) STRICT;
CREATE INDEX sichuan_agency_agreements_scope ON sichuan_agency_agreements (region, project);

-- A publicity of a batch: before payment (`pre`, 乐山办法 四(二)1) or after (`post`, 四(六)).
-- For `pre`, `ends_on` is the last day of the period and `closed_on` the day the township
-- submitted; for `post`, `ends_on` is the deadline (payment + 5 days).
CREATE TABLE sichuan_publicity (
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    stage      TEXT NOT NULL CHECK (stage IN ('pre', 'post')),
    starts_on  TEXT NOT NULL,
    ends_on    TEXT NOT NULL,
    closed_on  TEXT,
    notices    INTEGER NOT NULL,
    line_count INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (batch_id, stage)
) STRICT;

-- The lines as publicised before payment (masked), for the dual verification. A line taken
-- out on an upheld objection keeps its row with `excluded` = 1.
CREATE TABLE sichuan_publicity_lines (
    batch_id    INTEGER NOT NULL REFERENCES batches (id),
    line_id     INTEGER NOT NULL,
    village     TEXT NOT NULL,
    name_masked TEXT NOT NULL,
    id_masked   TEXT NOT NULL,
    note        TEXT NOT NULL,
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    excluded    INTEGER NOT NULL DEFAULT 0 CHECK (excluded IN (0, 1)),
    PRIMARY KEY (batch_id, line_id)
) STRICT;

-- Objections (异议) raised during the pre-payment publicity; every one must be resolved before
-- the township submits. `raised_by` is stored masked.
CREATE TABLE sichuan_objections (
    id          INTEGER PRIMARY KEY,
    batch_id    INTEGER NOT NULL REFERENCES batches (id),
    line_id     INTEGER,
    raised_by   TEXT NOT NULL,
    content     TEXT NOT NULL,
    raised_on   TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'upheld', 'dismissed')),
    resolution  TEXT,
    resolved_by TEXT,
    resolved_on TEXT,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX sichuan_objections_batch ON sichuan_objections (batch_id, status);

-- The department's declaration of its authorised payment plan (申报授权支付用款计划): the count and
-- amount it declared, one row per declaration (a returned batch is declared again).
CREATE TABLE sichuan_plans (
    id            INTEGER PRIMARY KEY,
    batch_id      INTEGER NOT NULL REFERENCES batches (id),
    declared_count INTEGER NOT NULL CHECK (declared_count >= 0),
    declared_fen  INTEGER NOT NULL CHECK (declared_fen >= 0),
    declared_by   TEXT NOT NULL,
    declared_on   TEXT NOT NULL,
    at            TEXT NOT NULL
) STRICT;
CREATE INDEX sichuan_plans_batch ON sichuan_plans (batch_id, id);

-- Finance's procedural reviews: the three figures compared and the verdict.
CREATE TABLE sichuan_reviews (
    id            INTEGER PRIMARY KEY,
    batch_id      INTEGER NOT NULL REFERENCES batches (id),
    plan_id       INTEGER REFERENCES sichuan_plans (id),
    summary_count INTEGER NOT NULL,
    summary_fen   INTEGER NOT NULL,
    detail_count  INTEGER NOT NULL,
    detail_fen    INTEGER NOT NULL,
    declared_count INTEGER NOT NULL,
    declared_fen  INTEGER NOT NULL,
    passed        INTEGER NOT NULL CHECK (passed IN (0, 1)),
    findings      TEXT NOT NULL,
    reviewer      TEXT NOT NULL,
    reviewed_on   TEXT NOT NULL,
    at            TEXT NOT NULL
) STRICT;
CREATE INDEX sichuan_reviews_batch ON sichuan_reviews (batch_id, id);

-- Vouchers exchanged with the treasury (8202 layout, XML in GB18030): `plan` funds the
-- zero-balance account, `return` (red-letter) sends money back to the treasury.
CREATE TABLE sichuan_vouchers (
    voucher_no  TEXT PRIMARY KEY,
    batch_id    INTEGER NOT NULL REFERENCES batches (id),
    kind        TEXT NOT NULL CHECK (kind IN ('plan', 'return')),
    amount_fen  INTEGER NOT NULL,
    vou_date    TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    xml         BLOB NOT NULL,
    status      TEXT NOT NULL,
    status_note TEXT NOT NULL DEFAULT '',
    paid_on     TEXT,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX sichuan_vouchers_batch ON sichuan_vouchers (batch_id);

-- Files exchanged with the cooperating bank: payment instructions sent and result files
-- received. A result file is `accepted`, a `repeat` of an accepted one (nothing applied
-- twice) or `rejected` whole (truncated or inconsistent: nothing applied).
CREATE TABLE sichuan_bank_files (
    id         INTEGER PRIMARY KEY,
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    direction  TEXT NOT NULL CHECK (direction IN ('instruction', 'result')),
    file_name  TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    line_count INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('sent', 'accepted', 'repeat', 'rejected')),
    note       TEXT NOT NULL DEFAULT '',
    on_date    TEXT NOT NULL,
    at         TEXT NOT NULL,
    UNIQUE (direction, file_name)
) STRICT;
CREATE INDEX sichuan_bank_files_batch ON sichuan_bank_files (batch_id, id);

-- Each line of an accepted result file as the bank reported it (the bank side of the dual
-- verification, and whether the free SMS went out).
CREATE TABLE sichuan_bank_lines (
    file_id    INTEGER NOT NULL REFERENCES sichuan_bank_files (id),
    line_id    INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    credited   INTEGER NOT NULL CHECK (credited IN (0, 1)),
    reason     TEXT,
    value_date TEXT NOT NULL,
    sms_sent   INTEGER NOT NULL CHECK (sms_sent IN (0, 1)),
    PRIMARY KEY (file_id, line_id, attempt)
) STRICT;
CREATE INDEX sichuan_bank_lines_line ON sichuan_bank_lines (line_id);

-- Credited payments recovered later (duplicate or deceased person) into the zero-balance
-- account, returned to the treasury at month end (乐山办法 四(五)3 按月清零).
CREATE TABLE sichuan_recoveries (
    id           INTEGER PRIMARY KEY,
    batch_id     INTEGER NOT NULL REFERENCES batches (id),
    line_id      INTEGER NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('duplicate', 'deceased')),
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_by  TEXT NOT NULL CHECK (approved_by <> requested_by),
    recovered_on TEXT NOT NULL,
    returned_on  TEXT,
    return_ref   TEXT,
    at           TEXT NOT NULL
) STRICT;

-- The post-payment dual verification of a batch (publicity against bank credits).
CREATE TABLE sichuan_verifications (
    batch_id          INTEGER PRIMARY KEY REFERENCES batches (id),
    paid_on           TEXT NOT NULL,
    deadline          TEXT NOT NULL,
    published_on      TEXT NOT NULL,
    on_time           INTEGER NOT NULL CHECK (on_time IN (0, 1)),
    publicised_count  INTEGER NOT NULL,
    publicised_fen    INTEGER NOT NULL,
    credited_count    INTEGER NOT NULL,
    credited_fen      INTEGER NOT NULL,
    differences       TEXT NOT NULL,
    at                TEXT NOT NULL
) STRICT;

-- Month-end checks of the zero-balance accounts (乐山办法 四(五)3).
CREATE TABLE sichuan_month_end (
    id          INTEGER PRIMARY KEY,
    month       TEXT NOT NULL,
    scope       TEXT NOT NULL,
    checked_on  TEXT NOT NULL,
    balance_fen INTEGER NOT NULL,
    outstanding TEXT NOT NULL,
    passed      INTEGER NOT NULL CHECK (passed IN (0, 1)),
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL
) STRICT;
