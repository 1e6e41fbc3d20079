-- Safe: a lock_timeout, then an instant ADD COLUMN with a constant default.
SET lock_timeout = '2s';

ALTER TABLE orders ADD COLUMN note text;
ALTER TABLE orders ADD COLUMN priority integer NOT NULL DEFAULT 0;
