-- Landing table for one export file: every record as COPY parsed it, all text, numbered in file order.
-- {columns} are the contract columns plus one column per unknown header.
CREATE TEMP TABLE raw_records (
    record_number bigint GENERATED ALWAYS AS IDENTITY,
    {columns}
) ON COMMIT DROP
