-- Where a paging bank's results were read up to (`BankAgent::collect_page`'s cursor, opaque
-- to the platform): written only in the transaction that records that page's results, so a
-- crash between a fetch and its commit asks for the same page again.
ALTER TABLE batches ADD COLUMN results_cursor TEXT;
