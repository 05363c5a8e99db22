-- name: vip
-- description: Current VIP tier is one of `tiers`, or the workspace's highest-ranked tier when
--   `tiers` is empty.
-- attribute: loyalty_vip (boolean)
-- parameter: tiers (text[], default []): Tier names that count as VIP; empty means the top-ranked tier.
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
JOIN (SELECT workspace_id, max(rank) AS top_rank FROM nector.tiers GROUP BY workspace_id) AS top USING (workspace_id)
WHERE CASE WHEN cardinality(%(tiers)s::text[]) > 0 THEN profile.tier = ANY (%(tiers)s::text[])
           ELSE profile.tier_rank = top.top_rank END
