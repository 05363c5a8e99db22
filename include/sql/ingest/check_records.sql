-- Typed values of every record and the number of the first check it fails (NULL when it passes all).
-- Only the typed values are stored: the cleaned text is needed by the checks alone.
-- cleaned: trimmed text, empty as NULL, normalised; typed: cast where the text is valid, else NULL.
-- _extra: the values of columns the contract does not know, by their header name.
-- OFFSET 0 keeps each level a separate step, so the planner does not copy a cleaning or cast
-- expression into every place that reads its result and evaluate it again there.
CREATE TEMP TABLE checked_records ON COMMIT DROP AS
SELECT record_number,
       {typed_names},
       _extra,
       {failed_check} AS failed_check
FROM (
    SELECT cleaned.*,
           {typed_columns}
    FROM (
        SELECT record_number,
               {cleaned_columns},
               {extra} AS _extra
        FROM raw_records
        OFFSET 0
    ) AS cleaned
    OFFSET 0
) AS typed
