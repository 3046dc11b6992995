-- sqlite_workload.sql: a deterministic sqlite3 workload (run by Scripts/reliability.sh sqlite-git
-- with and without LD_PRELOAD=libgoalloc.so; the two outputs must be identical).
-- Scripts/reliability.sh appends a few thousand generated single-row statements after this file.
.headers on
.mode list
PRAGMA cache_size = 200;          -- a small page cache: pages come and go through malloc
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;

CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, score REAL, note BLOB);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customer(id),
                     item TEXT, qty INTEGER, price REAL, created TEXT);
CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE VIRTUAL TABLE doc USING fts5(title, body);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO customer SELECT i, 'customer-' || i || '-' || substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26, 1 + i % 7),
  CASE i % 7 WHEN 0 THEN 'Oslo' WHEN 1 THEN 'Lima' WHEN 2 THEN 'Pune' WHEN 3 THEN 'Kyiv'
             WHEN 4 THEN 'Bern' WHEN 5 THEN 'Doha' ELSE 'Nuuk' END,
  (i * 7919 % 10007) / 100.0, zeroblob(i % 300) FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO orders SELECT i, 1 + (i * 31 % 20000), 'item-' || (i % 977), 1 + i % 13,
  round((i % 1000) * 1.37, 2), date('2020-01-01', '+' || (i % 1500) || ' days') FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO kv SELECT printf('key-%08d', i * 2654435761 % 100000007), hex(zeroblob(i % 200)) || i FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO doc SELECT 'title ' || i, 'alpha beta gamma ' || (i % 17) || ' delta epsilon word' || (i % 101)
  || ' ' || substr(replace(hex(zeroblob(50)), '00', 'ab '), 1, 3 * (i % 50)) FROM n;

CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_created ON orders(created, item);
CREATE INDEX customer_city ON customer(city, score);

SELECT count(*), sum(qty), round(sum(qty * price), 2) FROM orders;
SELECT city, count(*), round(avg(score), 3), min(name), max(name) FROM customer GROUP BY city ORDER BY city;
SELECT c.city, count(o.id) AS n, round(sum(o.qty * o.price), 2) AS total
  FROM customer c JOIN orders o ON o.customer = c.id GROUP BY c.city ORDER BY total DESC;
SELECT item, sum(qty) AS q FROM orders GROUP BY item ORDER BY q DESC, item LIMIT 15;
SELECT strftime('%Y', created) AS y, count(*), round(sum(price), 2) FROM orders GROUP BY y ORDER BY y;
SELECT id, name, score, rank() OVER (PARTITION BY city ORDER BY score DESC, id) AS r
  FROM customer WHERE id % 997 = 0 ORDER BY id;
SELECT customer, sum(qty) OVER (ORDER BY id ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) FROM orders
  WHERE id BETWEEN 100 AND 140;
SELECT group_concat(name, '|') FROM (SELECT name FROM customer WHERE city = 'Bern' ORDER BY score DESC LIMIT 40);
SELECT json_group_array(json_object('id', id, 'city', city, 'score', score))
  FROM (SELECT * FROM customer WHERE id % 1999 = 0);
SELECT json_extract(j, '$[3].city'), json_array_length(j)
  FROM (SELECT json_group_array(json_object('id', id, 'city', city)) AS j FROM customer WHERE id < 500);
SELECT count(*) FROM doc WHERE doc MATCH 'gamma AND word42';
SELECT title FROM doc WHERE doc MATCH 'epsilon NEAR word7' ORDER BY rank LIMIT 5;
SELECT k, length(v) FROM kv ORDER BY k LIMIT 10;
SELECT count(*), sum(length(v)) FROM kv;
SELECT upper(name), lower(city), length(note), replace(name, 'customer', 'C') FROM customer WHERE id IN (1, 2, 3, 500, 19999);
SELECT printf('%.3f|%08d|%s', score, id, quote(substr(name, 1, 12))) FROM customer WHERE id % 4001 = 0;

WITH RECURSIVE fib(a, b, n) AS (SELECT 0, 1, 0 UNION ALL SELECT b, a + b, n + 1 FROM fib WHERE n < 80)
SELECT n, a FROM fib WHERE n % 10 = 0;
WITH RECURSIVE s(x) AS (SELECT 'x' UNION ALL SELECT x || char(65 + length(x) % 26) FROM s WHERE length(x) < 2000)
SELECT length(group_concat(x)), substr(max(x), 1990) FROM s;

BEGIN;
UPDATE customer SET score = score * 1.5, note = zeroblob(500) WHERE id % 3 = 0;
DELETE FROM orders WHERE id % 5 = 0;
INSERT INTO orders (customer, item, qty, price, created)
  SELECT customer, item || '-copy', qty * 2, price, created FROM orders WHERE id % 11 = 0;
COMMIT;
BEGIN;
DELETE FROM customer WHERE id % 4 = 1 AND NOT EXISTS (SELECT 1 FROM orders WHERE customer = customer.id);
UPDATE kv SET v = v || v WHERE k < 'key-00050000';
ROLLBACK;
SAVEPOINT a;
UPDATE orders SET qty = qty + 100 WHERE id < 1000;
RELEASE a;

SELECT count(*), sum(qty), round(sum(qty * price), 2) FROM orders;
SELECT count(*), round(sum(score), 2), sum(length(note)) FROM customer;
SELECT count(*), sum(length(v)) FROM kv;

CREATE TEMP TABLE big AS SELECT o.*, c.name, c.city FROM orders o JOIN customer c ON c.id = o.customer;
SELECT count(*), count(DISTINCT name), count(DISTINCT item) FROM big;
SELECT city, item, count(*) AS n FROM big GROUP BY city, item HAVING n > 30 ORDER BY n DESC, city, item LIMIT 20;
SELECT * FROM big ORDER BY price DESC, id LIMIT 5;
DROP TABLE big;

DROP INDEX orders_created;
REINDEX;
ANALYZE;
VACUUM;
PRAGMA integrity_check;
PRAGMA foreign_key_check;
SELECT count(*) FROM sqlite_schema;
