-- Every item the sender marks sent was a new entry in the index on (kind, status, sequence), which
-- nothing reads by status but the lookup of dead letters. A partial index of the dead items serves
-- that lookup, and a sent item no longer adds an index entry.
DROP INDEX IF EXISTS sync.webengage_outbox_kind_status_sequence_idx;
CREATE INDEX webengage_outbox_dead ON sync.webengage_outbox (kind) WHERE status = 'dead';
