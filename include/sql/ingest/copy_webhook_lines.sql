-- Streams a JSON lines file in, one line per row and unchanged: the quote and delimiter are control
-- characters that do not occur in JSON text, so COPY neither splits nor unescapes the lines.
COPY webhook_lines (line) FROM STDIN WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02', ENCODING 'UTF8')
