-- Cancelling (作废) a batch that was never submitted (issue #9, "cancel"): its lines take the
-- new state `cancelled`, counted in the batch's control totals, never paid, and no longer the
-- person's line for the project and period, so a corrected roster can carry them again.

-- The state column's CHECK gains `cancelled`. SQLite cannot alter a CHECK constraint; a
-- constraint that only admits more values may be changed in the stored schema text, the
-- procedure of https://sqlite.org/lang_altertable.html#otheralter ("removing CHECK ...
-- constraints"): every row already satisfies the new constraint, the file format is unchanged.
-- It runs in the migration's transaction; the DDL below bumps the schema cookie, so every other
-- connection reloads the schema, and RESET reloads it on this one.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, '''failed'', ''refunded''))', '''failed'', ''refunded'', ''cancelled''))')
 WHERE type = 'table' AND name = 'payment_lines';
PRAGMA writable_schema = RESET;

-- One line per person, project and period: refunded and cancelled lines do not count.
DROP INDEX payment_lines_once;
CREATE UNIQUE INDEX payment_lines_once ON payment_lines (project, person_idx, period, dup_scope)
    WHERE state NOT IN ('refunded', 'cancelled');
