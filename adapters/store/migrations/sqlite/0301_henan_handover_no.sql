-- Henan: the bank's own number for each hand-over (交易结果交接, 第二十六条), so that a
-- hand-over re-sent because its answer was lost (the platform crashed after recording it)
-- is recognised: the same number answers the recorded hand-over, and the same number with
-- other totals is refused. NULL for hand-overs of banks that send no number (and for those
-- recorded before this column existed).
ALTER TABLE henan_handovers ADD COLUMN handover_no INTEGER;
CREATE UNIQUE INDEX henan_handovers_handover_no ON henan_handovers (order_no, handover_no);
