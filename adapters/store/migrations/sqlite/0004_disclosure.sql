-- Disclosure (公示公开 / 补贴查询): notices as published (masked text only) and the records of
-- the public personal lookup, keyed by the person's blind index (never the ID itself).
-- migrations/postgres/0004_disclosure.sql is the same schema in PostgreSQL types.

CREATE TABLE notices (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    region       TEXT NOT NULL,
    project_name TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_on TEXT NOT NULL,
    until        TEXT,
    withdrawn_at TEXT
) STRICT;
CREATE INDEX notices_region ON notices (region, published_on);

CREATE TABLE lookup_records (
    person_key   TEXT NOT NULL,
    name_masked  TEXT NOT NULL,
    project_name TEXT NOT NULL,
    period       TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL,
    date         TEXT NOT NULL,
    status       TEXT NOT NULL,
    PRIMARY KEY (person_key, project_name, period, date, amount_fen)
) STRICT;
