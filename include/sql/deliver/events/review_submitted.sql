-- Review Submitted: every review a lead wrote.
SELECT review.workspace_id,
       review.review_id::text AS source_id,
       review.lead_id,
       review.created_at AS occurred_at,
       review.rating,
       review.reference_product_id,
       review.reference_product_name,
       review.is_verified
FROM nector.reviews AS review
