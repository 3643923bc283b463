-- The public lookup's records (补贴查询, 0004_disclosure.sql) as a WITHOUT ROWID table: the
-- rows are stored in the primary key's own B-tree, so a lookup by person_key reads one tree
-- instead of the key index and then the rowid table, and the key is not stored twice.
-- Measured at 1,000,000 records (BENCHMARKS.md, eleventh round): the lookup database 214 ->
-- 120 MB. Same columns, same key, same rows; PostgreSQL keeps its heap and primary key index.
CREATE TABLE lookup_records_by_key (
    person_key   TEXT NOT NULL,
    name_masked  TEXT NOT NULL,
    project_name TEXT NOT NULL,
    period       TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL,
    date         TEXT NOT NULL,
    status       TEXT NOT NULL,
    PRIMARY KEY (person_key, project_name, period, date, amount_fen)
) STRICT, WITHOUT ROWID;

INSERT INTO lookup_records_by_key
    (person_key, name_masked, project_name, period, amount_fen, date, status)
SELECT person_key, name_masked, project_name, period, amount_fen, date, status
FROM lookup_records;

DROP TABLE lookup_records;
ALTER TABLE lookup_records_by_key RENAME TO lookup_records;
