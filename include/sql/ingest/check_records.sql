-- Typed values of every record and the number of the first check it fails (NULL when it passes all).
-- cleaned: trimmed text, empty as NULL, normalised; typed: cast where the text is valid, else NULL.
CREATE TEMP TABLE checked_records ON COMMIT DROP AS
SELECT typed.*,
       {failed_check} AS failed_check
FROM (
    SELECT cleaned.*,
           {typed_columns}
    FROM (
        SELECT record_number,
               {cleaned_columns}
        FROM raw_records
    ) AS cleaned
) AS typed
