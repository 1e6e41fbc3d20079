-- Hazard: blocks every write to orders while the index builds,
-- and waits for the lock with no timeout.
CREATE INDEX orders_created_at_idx ON orders (created_at);
