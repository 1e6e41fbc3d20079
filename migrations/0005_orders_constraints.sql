SET lock_timeout = '2s';

-- Safe: NOT VALID is instant; validation in its own transaction only takes
-- SHARE UPDATE EXCLUSIVE.
ALTER TABLE orders ADD CONSTRAINT orders_total_non_negative CHECK (total >= 0) NOT VALID;

-- Hazard: validates every row while holding ACCESS EXCLUSIVE.
ALTER TABLE orders ADD CONSTRAINT orders_status_known
    CHECK (status IN ('new', 'paid', 'shipped', 'cancelled'));

-- Hazard: SET NOT NULL scans the whole table under ACCESS EXCLUSIVE.
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
