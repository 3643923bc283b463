-- Cancelling (作废) a batch that was never submitted (issue #9, "cancel"): its lines take the
-- new state `cancelled`, counted in the batch's control totals, never paid, and no longer the
-- person's line for the project and period, so a corrected roster can carry them again.
ALTER TABLE payment_lines DROP CONSTRAINT payment_lines_state_check;
ALTER TABLE payment_lines ADD CONSTRAINT payment_lines_state_check
    CHECK (state IN ('pending', 'in_flight', 'credited', 'failed', 'refunded', 'cancelled'));

-- One line per person, project and period: refunded and cancelled lines do not count.
DROP INDEX payment_lines_once;
CREATE UNIQUE INDEX payment_lines_once ON payment_lines (project, person_idx, period, dup_scope)
    WHERE state NOT IN ('refunded', 'cancelled');
