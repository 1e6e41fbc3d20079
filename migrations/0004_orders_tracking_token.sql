SET lock_timeout = '2s';

-- Hazard: a volatile default rewrites the whole table under ACCESS EXCLUSIVE.
ALTER TABLE orders
    ADD COLUMN tracking_token uuid DEFAULT gen_random_uuid();
