-- Faster row checks, schema drift, quarantine and physical line numbers.

-- True when the first ten characters (YYYY-MM-DD) name a real calendar day. With the ISO 8601
-- pattern checked first, a value passing both casts to date or timestamptz without an error, so
-- the loader needs no exception handler per value. Inlined by the planner: plain SQL, IMMUTABLE.
CREATE FUNCTION nector.is_calendar_day(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substr(value, 9, 2)::int <= CASE
        WHEN substr(value, 6, 2)::int IN (4, 6, 9, 11) THEN 30
        WHEN substr(value, 6, 2)::int = 2 THEN
            CASE WHEN (substr(value, 1, 4)::int % 4 = 0 AND substr(value, 1, 4)::int % 100 <> 0)
                      OR substr(value, 1, 4)::int % 400 = 0 THEN 29 ELSE 28 END
        ELSE 31
    END
$$;

-- The checks above replace these; a function with an exception block costs a subtransaction per call.
DROP FUNCTION nector.try_timestamptz(text);
DROP FUNCTION nector.try_date(text);

-- Every staging row already comes from a file recorded in sync.export_file; a foreign key check per
-- row would only slow the load down.
ALTER TABLE nector.tiers DROP CONSTRAINT tiers__export_file_id_fkey;
ALTER TABLE nector.customers DROP CONSTRAINT customers__export_file_id_fkey;
ALTER TABLE nector.wallet_transactions DROP CONSTRAINT wallet_transactions__export_file_id_fkey;
ALTER TABLE nector.coupons DROP CONSTRAINT coupons__export_file_id_fkey;
ALTER TABLE nector.referrals DROP CONSTRAINT referrals__export_file_id_fkey;
ALTER TABLE nector.reviews DROP CONSTRAINT reviews__export_file_id_fkey;
ALTER TABLE nector.tier_changes DROP CONSTRAINT tier_changes__export_file_id_fkey;

-- Columns a file has beyond the contract, kept per row instead of dropped.
ALTER TABLE nector.tiers ADD COLUMN _extra jsonb;
ALTER TABLE nector.customers ADD COLUMN _extra jsonb;
ALTER TABLE nector.wallet_transactions ADD COLUMN _extra jsonb;
ALTER TABLE nector.coupons ADD COLUMN _extra jsonb;
ALTER TABLE nector.referrals ADD COLUMN _extra jsonb;
ALTER TABLE nector.reviews ADD COLUMN _extra jsonb;
ALTER TABLE nector.tier_changes ADD COLUMN _extra jsonb;

ALTER TABLE sync.export_file DROP CONSTRAINT export_file_status_check;
ALTER TABLE sync.export_file ADD CONSTRAINT export_file_status_check
    CHECK (status IN ('loaded', 'rejected', 'quarantined', 'dismissed'));
ALTER TABLE sync.export_file ADD COLUMN unknown_columns text[];
COMMENT ON COLUMN sync.export_file.status IS 'loaded; rejected (whole file, see reason); quarantined (too many bad records, none loaded); dismissed (an operator accepted a rejected or quarantined file, so runs skip it).';
COMMENT ON COLUMN sync.export_file.unknown_columns IS 'Header names the contract does not know; their values are kept in the staging rows'' _extra column.';

ALTER TABLE sync.rejected_row ADD COLUMN line_number bigint;
COMMENT ON COLUMN sync.rejected_row.line_number IS 'Physical line of the file the record starts on, 1 = header.';
