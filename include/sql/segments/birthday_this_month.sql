-- name: birthday_this_month
-- description: Has a date of birth in the calendar month of as_of, in the merchant's time zone.
--   Customers born on 29 February are members every February.
-- attribute: loyalty_birthday_this_month (boolean)
-- entry event: Birthday Reward Live
-- event data: birthday (date): This year's birthday; 28 February in a year without 29 February.
-- event data: coin_balance (number): Coin balance at as_of.
WITH month AS (
    SELECT date_trunc('month', %(as_of)s)::date AS first_day,
           extract(day FROM date_trunc('month', %(as_of)s) + interval '1 month - 1 day')::int AS days
)
SELECT profile.workspace_id,
       profile.lead_id,
       profile.coin_balance,
       month.first_day + least(extract(day FROM profile.birth_date)::int, month.days) - 1 AS birthday
FROM loyalty.customer_profile AS profile
CROSS JOIN month
WHERE extract(month FROM profile.birth_date) = extract(month FROM month.first_day)
