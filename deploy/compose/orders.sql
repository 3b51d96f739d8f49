-- The shop's orders table, created by PostgreSQL at first start; the generator's
-- --orders-format sql writes into it (pipewatch_traffic::ORDERS_TABLE_SQL: a test holds
-- the two the same).
CREATE TABLE IF NOT EXISTS orders (order_id text PRIMARY KEY, customer_id text NOT NULL, channel text NOT NULL, total numeric(10, 2) NOT NULL, currency text NOT NULL, created_at timestamptz);
