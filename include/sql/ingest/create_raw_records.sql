-- Landing table for one export file: every record as COPY parsed it, all text, numbered in file order.
-- The columns are the contract's plus one per unknown header.
CREATE TEMP TABLE raw_records (
    record_number bigint GENERATED ALWAYS AS IDENTITY,
    {columns}
) ON COMMIT DROP
