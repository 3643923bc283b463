-- Henan: a released order's detail (第二十二条 "根据“发放单号”获取补贴发放明细"), materialised
-- when it is released: the bank file's bytes (the GB18030 CSV lines the bank pulls), in chunks
-- of about 1 MiB, each sealed with AES-256-GCM under a key derived for the order, the round and
-- a random salt of this materialisation (`detail_salt`), its nonce the chunk's sequence number,
-- its position (order, round, seq, first and last line, lines) bound as associated data. No
-- personal data in clear: the accounts in the lines are inside the ciphertext.
--
-- `detail_lines`/`detail_fen`: what the detail lists (the lines in flight when it was written);
-- `detail_mark`: the audit log's last entry then, so a pull can tell whether a result or a
-- new dispatch has changed the lines in flight since (then it filters, or reads the lines).
-- NULL for releases recorded before this migration (served from the lines, as before).
ALTER TABLE henan_releases ADD COLUMN detail_lines INTEGER;
ALTER TABLE henan_releases ADD COLUMN detail_fen INTEGER;
ALTER TABLE henan_releases ADD COLUMN detail_salt BLOB;
ALTER TABLE henan_releases ADD COLUMN detail_mark INTEGER;

CREATE TABLE henan_release_chunks (
    order_no   TEXT NOT NULL,
    round      INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    last_line  INTEGER NOT NULL,
    lines      INTEGER NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (order_no, round, seq)
) STRICT;
CREATE INDEX henan_release_chunks_last ON henan_release_chunks (order_no, round, last_line);
