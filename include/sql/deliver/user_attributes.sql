-- Every profile with a WebEngage userId, the values of its user attributes (segment attributes in
-- segment_values), and the hash of the attributes WebEngage last accepted for that user.
SELECT profile.workspace_id,
       profile.lead_id,
       profile.user_id,
       split_part(btrim(profile.name), ' ', 1) AS first_name,
       CASE WHEN strpos(btrim(profile.name), ' ') > 0
            THEN btrim(substr(btrim(profile.name), strpos(btrim(profile.name), ' ') + 1)) END AS last_name,
       profile.email,
       profile.mobile_e164,
       customer.dob AS birth_date,
       customer.gender,
       customer.email_opt_in,
       customer.sms_opt_in,
       customer.whatsapp_opt_in,
       customer.referral_code,
       profile.tier,
       profile.coin_balance,
       profile.lifetime_coins_earned,
       profile.lifetime_coins_redeemed,
       profile.coins_expiring_soon,
       profile.next_coin_expiry_at,
       profile.unused_coupon_count,
       profile.next_coupon_expiry_at,
       profile.completed_referral_count,
       profile.review_count,
       profile.last_activity_at,
       segments.segment_values,
       state.payload_hash AS sent_payload_hash
FROM loyalty.customer_profile AS profile
JOIN nector.customers AS customer
  ON customer.workspace_id = profile.workspace_id AND customer.lead_id = profile.lead_id
-- Segment name -> attribute value (true for boolean segments) of the segments the lead is a member of.
LEFT JOIN (SELECT workspace_id, lead_id, jsonb_object_agg(segment, coalesce(attribute_value, 'true')) AS segment_values
           FROM loyalty.segment_member
           GROUP BY workspace_id, lead_id) AS segments
       ON segments.workspace_id = profile.workspace_id AND segments.lead_id = profile.lead_id
LEFT JOIN sync.webengage_user_state AS state
       ON state.workspace_id = profile.workspace_id AND state.user_id = profile.user_id
WHERE profile.user_id IS NOT NULL
ORDER BY profile.workspace_id, profile.user_id
