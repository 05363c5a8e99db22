-- Synthetic staging data for the derive benchmark, generated inside Postgres. Parameters: %(customers)s
-- leads and %(ledger_rows)s wallet transactions, with coupons, referrals, reviews and tier changes in
-- proportion, all before %(as_of)s. setseed makes random() repeat, so every run builds the same data.
SELECT setseed(0.42);

INSERT INTO sync.export_file (path, sha256, status, currency_code)
VALUES ('benchmark', 'benchmark', 'loaded', 'INR');

INSERT INTO nector.tiers (workspace_id, tier_name, rank, criteria_type, threshold_value, updated_at, _export_file_id)
SELECT 'bench-brand', tier_name, rank, 'ltv', threshold, %(as_of)s - interval '400 days',
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (VALUES ('Bronze', 1, 0), ('Silver', 2, 3000), ('Gold', 3, 10000), ('Platinum', 4, 25000)) AS t (tier_name, rank, threshold);

-- Lead number i gets a fixed uuid, so the other tables can pick leads by number.
CREATE TEMPORARY TABLE bench_lead AS
SELECT i, md5('lead-' || i)::uuid AS lead_id
FROM generate_series(1, %(customers)s) AS i;
CREATE UNIQUE INDEX ON bench_lead (i);
ANALYZE bench_lead;

INSERT INTO nector.customers (workspace_id, lead_id, customer_id, name, email, country, dob, gender, referral_code,
                              tier, coins_available, email_opt_in, created_at, updated_at, platform,
                              platform_customer_id, _export_file_id)
SELECT 'bench-brand',
       l.lead_id,
       'shopify-' || (7000000000000 + l.i),
       'Customer ' || l.i,
       CASE WHEN l.i %% 20 = 0 THEN NULL ELSE 'c' || l.i || '@example.com' END,
       'ind',
       CASE WHEN l.i %% 10 = 0 THEN NULL
            WHEN l.i %% 997 = 0 THEN date '1996-02-29'
            ELSE date '1970-01-01' + (random() * 12000)::int END,
       (ARRAY['male', 'female', 'other'])[1 + l.i %% 3],
       'REF' || l.i,
       (ARRAY['Bronze', 'Bronze', 'Bronze', 'Silver', 'Silver', 'Gold', 'Platinum'])[1 + l.i %% 7],
       0,
       l.i %% 4 <> 0,
       created_at,
       created_at,
       'shopify',
       (7000000000000 + l.i)::text,
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (SELECT *, %(as_of)s - make_interval(days => 30 + (random() * 700)::int) AS created_at FROM bench_lead) AS l;

-- Credits are 60%% of the ledger and each debit is smaller than the average credit, so most balances
-- stay positive. Credits expire a year after they were earned.
INSERT INTO nector.wallet_transactions (workspace_id, wallettransaction_id, lead_id, customer_id, wallet_type,
                                        operation, type, status, amount, title, expire_at, created_at,
                                        updated_at, _export_file_id)
SELECT 'bench-brand',
       gen_random_uuid(),
       l.lead_id,
       'shopify-' || (7000000000000 + l.i),
       'coins',
       CASE WHEN kind < 0.62 THEN 'cr' ELSE 'dr' END,
       CASE WHEN kind < 0.60 THEN 'reward' WHEN kind < 0.62 THEN 'adjust' WHEN kind < 0.82 THEN 'redeem'
            WHEN kind < 0.95 THEN 'expire' ELSE 'revert' END,
       CASE WHEN g.n %% 100 = 0 THEN 'pending' WHEN g.n %% 331 = 0 THEN 'failed' ELSE 'success' END,
       CASE WHEN kind < 0.62 THEN 50 + (random() * 450)::int ELSE 10 + (random() * 150)::int END,
       'Benchmark transaction',
       CASE WHEN kind < 0.62 THEN created_at + interval '365 days' END,
       created_at,
       created_at,
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (SELECT n, random() AS kind, 1 + (random() * (%(customers)s - 1))::int AS lead_number,
             %(as_of)s - make_interval(secs => random() * 700 * 86400) AS created_at
      FROM generate_series(1, %(ledger_rows)s) AS n) AS g
JOIN bench_lead AS l ON l.i = g.lead_number;

INSERT INTO nector.coupons (workspace_id, coupon_id, lead_id, code, source, status, used_at, expire_at, created_at,
                            updated_at, coins_spent, fiat_class, fiat_value, _export_file_id)
SELECT 'bench-brand', gen_random_uuid(), l.lead_id, 'CODE-' || g.n,
       (ARRAY['redeem', 'redeem', 'referral_referee', 'trigger'])[1 + g.n %% 4],
       CASE WHEN used THEN 'used' ELSE 'issued' END,
       CASE WHEN used THEN created_at + interval '3 days' END,
       created_at + interval '30 days',
       created_at, created_at, 100, 'amount', 100,
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (SELECT n, random() < 0.6 AS used, 1 + (random() * (%(customers)s - 1))::int AS lead_number,
             %(as_of)s - make_interval(secs => random() * 400 * 86400) AS created_at
      FROM generate_series(1, %(customers)s) AS n) AS g
JOIN bench_lead AS l ON l.i = g.lead_number;

INSERT INTO nector.referrals (workspace_id, referral_id, referred_by_lead_id, referred_to_lead_id, referral_code,
                              status, referrer_reward_type, referrer_reward_value, created_at, completed_at,
                              updated_at, _export_file_id)
SELECT 'bench-brand', gen_random_uuid(), referrer.lead_id, friend.lead_id, 'REF' || referrer.i,
       status, 'coins', 200, created_at,
       CASE WHEN status = 'completed' THEN created_at + interval '2 days' END,
       created_at + interval '2 days',
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (SELECT n, (ARRAY['created', 'completed', 'completed', 'cancelled'])[1 + n %% 4] AS status,
             1 + (random() * (%(customers)s - 1))::int AS referrer_number,
             1 + (random() * (%(customers)s - 1))::int AS friend_number,
             %(as_of)s - make_interval(secs => random() * 400 * 86400) AS created_at
      FROM generate_series(1, %(customers)s * 3 / 10) AS n) AS g
JOIN bench_lead AS referrer ON referrer.i = g.referrer_number
JOIN bench_lead AS friend ON friend.i = g.friend_number;

INSERT INTO nector.reviews (workspace_id, review_id, lead_id, rating, created_at, updated_at, _export_file_id)
SELECT 'bench-brand', gen_random_uuid(), l.lead_id, 1 + g.n %% 5, created_at, created_at,
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (SELECT n, 1 + (random() * (%(customers)s - 1))::int AS lead_number,
             %(as_of)s - make_interval(secs => random() * 400 * 86400) AS created_at
      FROM generate_series(1, %(customers)s / 2) AS n) AS g
JOIN bench_lead AS l ON l.i = g.lead_number;

INSERT INTO nector.tier_changes (workspace_id, event_id, lead_id, previous_tier, new_tier, changed_at, _export_file_id)
SELECT 'bench-brand', 'tier-' || g.n, l.lead_id,
       (ARRAY['Bronze', 'Silver', 'Gold', 'Platinum'])[1 + g.n %% 3],
       (ARRAY['Silver', 'Gold', 'Platinum', 'Bronze'])[1 + g.n %% 4],
       changed_at,
       (SELECT max(export_file_id) FROM sync.export_file)
FROM (SELECT n, 1 + (random() * (%(customers)s - 1))::int AS lead_number,
             %(as_of)s - make_interval(secs => random() * 400 * 86400) AS changed_at
      FROM generate_series(1, %(customers)s * 3 / 10) AS n) AS g
JOIN bench_lead AS l ON l.i = g.lead_number;

DROP TABLE bench_lead;
