-- Streams the file in. The columns follow the file's header order; the header line itself is skipped.
COPY raw_records ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')
