-- Hazard: CONCURRENTLY cannot run inside a transaction block.
BEGIN;
SET LOCAL lock_timeout = '2s';
CREATE INDEX CONCURRENTLY customers_created_at_idx ON customers (created_at);
COMMIT;
