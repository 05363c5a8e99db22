-- Tier Changed: every VIP tier change, with its direction by tier rank (NULL when a rank is unknown).
SELECT change.workspace_id,
       change.event_id AS source_id,
       change.lead_id,
       change.changed_at AS occurred_at,
       change.previous_tier,
       change.new_tier,
       CASE WHEN new_tier.rank > previous_tier.rank THEN 'up'
            WHEN new_tier.rank < previous_tier.rank THEN 'down' END AS direction,
       change.tier_expires_at
FROM nector.tier_changes AS change
LEFT JOIN nector.tiers AS new_tier
       ON new_tier.workspace_id = change.workspace_id AND new_tier.tier_name = change.new_tier
LEFT JOIN nector.tiers AS previous_tier
       ON previous_tier.workspace_id = change.workspace_id AND previous_tier.tier_name = change.previous_tier
