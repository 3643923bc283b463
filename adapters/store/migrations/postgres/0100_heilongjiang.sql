-- 黑龙江省 (heilongjiang): the message archive of the budget-system interface and the treasury
-- agent bank's per-line returns. This is the PostgreSQL twin of
-- migrations/sqlite/0100_heilongjiang.sql.

-- Every message exchanged with the budget system (预算管理一体化系统), as sent or received, body
-- encrypted; `on_date` is the platform's date of the exchange.
CREATE TABLE hlj_messages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    BIGINT REFERENCES batches (id),
    order_no    TEXT NOT NULL,
    voucher_no  TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    request     TEXT NOT NULL,
    status      BIGINT,
    body_enc    BYTEA NOT NULL,
    body_sha256 TEXT NOT NULL,
    on_date     TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX hlj_messages_order ON hlj_messages (order_no, id);

-- The treasury agent bank's return per line and attempt (first report wins).
CREATE TABLE hlj_returns (
    line_id    BIGINT NOT NULL,
    attempt    BIGINT NOT NULL CHECK (attempt >= 1),
    batch_id   BIGINT NOT NULL REFERENCES batches (id),
    voucher_no TEXT NOT NULL,
    agent_bank TEXT NOT NULL,
    card_bank  TEXT NOT NULL,
    credited   BIGINT NOT NULL CHECK (credited IN (0, 1)),
    cross_bank BIGINT NOT NULL CHECK (cross_bank IN (0, 1)),
    fee_fen    BIGINT NOT NULL CHECK (fee_fen >= 0),
    paid_fen   BIGINT NOT NULL CHECK (paid_fen >= 0),
    bank_date  TEXT NOT NULL,
    PRIMARY KEY (line_id, attempt)
);
CREATE INDEX hlj_returns_batch ON hlj_returns (batch_id);
