-- Reliability (issue #9, "Faults").

-- When an attempt was handed to the bank. An attempt is marked in flight in one transaction
-- and recorded as sent in another, after the bank accepted it: a crash in between leaves
-- attempts in flight that the bank may never have received; the next dispatch sends exactly
-- those again (the bank deduplicates by line and attempt) before it sends anything new.
ALTER TABLE line_attempts ADD COLUMN sent_at TEXT;
-- Attempts recorded before this column existed were sent.
UPDATE line_attempts SET sent_at = dispatched_at;

-- Idempotency keys of the JSON API's mutating requests (`Idempotency-Key` header): one
-- effect per key and user. The first request claims the key (status NULL while it runs);
-- its response is stored and replayed to every repeat with the same request; a repeat with
-- another method, path or body is refused.
CREATE TABLE idempotency_keys (
    login          TEXT NOT NULL,
    idem_key       TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status         BIGINT,
    content_type   TEXT,
    response       BYTEA,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (login, idem_key)
);
