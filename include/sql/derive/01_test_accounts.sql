-- Leads matching the configured test accounts, by customer id (with or without the platform prefix),
-- email, or email domain. Every later step leaves these leads out.
DELETE FROM loyalty.test_account;

INSERT INTO loyalty.test_account (workspace_id, lead_id, matched_rule)
SELECT workspace_id,
       lead_id,
       CASE
           WHEN customer_id = ANY (%(test_customer_ids)s::text[])
             OR platform_customer_id = ANY (%(test_customer_ids)s::text[]) THEN 'customer id ' || customer_id
           WHEN email = ANY (%(test_emails)s::text[]) THEN 'email ' || email
           ELSE 'email domain ' || split_part(email, '@', 2)
       END
FROM nector.customers
WHERE customer_id = ANY (%(test_customer_ids)s::text[])
   OR platform_customer_id = ANY (%(test_customer_ids)s::text[])
   OR email = ANY (%(test_emails)s::text[])
   OR split_part(email, '@', 2) = ANY (%(test_email_domains)s::text[]);
