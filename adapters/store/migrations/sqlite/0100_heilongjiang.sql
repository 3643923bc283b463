-- 黑龙江省 (heilongjiang): the message archive of the budget-system interface and the treasury
-- agent bank's per-line returns. migrations/postgres/0100_heilongjiang.sql is the same schema
-- in PostgreSQL types.

-- Every message exchanged with the budget system (预算管理一体化系统), as sent or received: the
-- disbursement plan, the payment request, the approval, the 5201 vouchers, the bank's return
-- vouchers, refunds, status queries. The body carries payee accounts, so it is kept encrypted
-- (vault, AES-256-GCM); `on_date` is the platform's date of the exchange (the notice deadlines
-- of 塔河县方案(七) count from it).
CREATE TABLE hlj_messages (
    id          INTEGER PRIMARY KEY,
    batch_id    INTEGER REFERENCES batches (id),
    order_no    TEXT NOT NULL,
    voucher_no  TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    request     TEXT NOT NULL,
    status      INTEGER,
    body_enc    BLOB NOT NULL,
    body_sha256 TEXT NOT NULL,
    on_date     TEXT NOT NULL,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX hlj_messages_order ON hlj_messages (order_no, id);

-- The treasury agent bank's return per line and attempt (first report wins; repeats change
-- nothing): whether it was a cross-bank payment and the fee the agent bank bore
-- (黑财监〔2021〕30号 二(三)三: cross-bank fees are borne by the treasury agent bank).
CREATE TABLE hlj_returns (
    line_id    INTEGER NOT NULL,
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    voucher_no TEXT NOT NULL,
    agent_bank TEXT NOT NULL,
    card_bank  TEXT NOT NULL,
    credited   INTEGER NOT NULL CHECK (credited IN (0, 1)),
    cross_bank INTEGER NOT NULL CHECK (cross_bank IN (0, 1)),
    fee_fen    INTEGER NOT NULL CHECK (fee_fen >= 0),
    paid_fen   INTEGER NOT NULL CHECK (paid_fen >= 0),
    bank_date  TEXT NOT NULL,
    PRIMARY KEY (line_id, attempt)
) STRICT;
CREATE INDEX hlj_returns_batch ON hlj_returns (batch_id);
