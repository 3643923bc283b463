-- Sichuan: the refund request a red-letter voucher was sent for (`TK-<order>-<line>-<attempt>`,
-- the platform's key of the refund, also written into the voucher's purpose), so a retried
-- refund finds the voucher it sent before by index instead of reading and searching every
-- voucher of the batch (issue #8: at a million lines a batch has thousands of refunds, and
-- that search made the corrections quadratic). NULL for vouchers that are not line refunds
-- (plans, month-end returns of recoveries) and for vouchers recorded before this migration
-- (those are still found by their text).
ALTER TABLE sichuan_vouchers ADD COLUMN request_no TEXT;
CREATE INDEX sichuan_vouchers_request ON sichuan_vouchers (batch_id, request_no);
