-- The payment cycle after intake: dispatch attempts, bank results, anomalies, corrections,
-- refunds. this is the PostgreSQL twin of
-- migrations/sqlite/0003_cycle.sql.

-- The agent bank a batch is paid through, and the treasury's reference for its funding.
ALTER TABLE batches ADD COLUMN agent_bank TEXT;
ALTER TABLE batches ADD COLUMN treasury_ref TEXT;

-- Every attempt to pay a line: the account it was sent to and what the bank said. A
-- corrected line is paid again as a new attempt of the same line, never a new line.
CREATE TABLE line_attempts (
    line_id       BIGINT NOT NULL REFERENCES payment_lines (id),
    attempt       BIGINT NOT NULL CHECK (attempt >= 1),
    account_enc   BYTEA NOT NULL,
    amount_fen    BIGINT NOT NULL,
    dispatched_at TEXT NOT NULL,
    outcome       TEXT CHECK (outcome IN ('credited', 'failed')),
    reason        TEXT,
    bank_date     TEXT,
    settled_at    TEXT,
    PRIMARY KEY (line_id, attempt)
);

-- Results that changed nothing because something was wrong with them: a different outcome
-- for a settled attempt, a stale attempt, an unknown line, a wrong amount. Flagged, never
-- applied silently.
CREATE TABLE anomalies (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id BIGINT REFERENCES batches (id),
    line_id  BIGINT,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX anomalies_batch ON anomalies (batch_id);

-- A failed line corrected by the department (濮阳规程 第二十三条: the beneficiary's or guardian's
-- signature and the department head's sign-off). `changed` names the fields, never values.
CREATE TABLE corrections (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line_id            BIGINT NOT NULL REFERENCES payment_lines (id),
    after_attempt      BIGINT NOT NULL,
    changed            TEXT NOT NULL,
    reason             TEXT NOT NULL,
    beneficiary_signed TEXT,
    head_signoff       TEXT,
    actor              TEXT NOT NULL,
    at                 TEXT NOT NULL
);

-- A line that truly cannot be paid, refunded through the original channel on the
-- department's request with finance's agreement (two different people).
CREATE TABLE refunds (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line_id      BIGINT NOT NULL UNIQUE REFERENCES payment_lines (id),
    amount_fen   BIGINT NOT NULL CHECK (amount_fen > 0),
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_by  TEXT NOT NULL CHECK (approved_by <> requested_by),
    reference    TEXT,
    at           TEXT NOT NULL
);
