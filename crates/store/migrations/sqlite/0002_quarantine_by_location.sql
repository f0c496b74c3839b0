-- Two identical rows at different places of a file are two deliveries: hold each once (a re-run
-- of the same file meets the same places, so it still holds nothing twice).
DROP INDEX quarantine_held;
CREATE UNIQUE INDEX quarantine_held ON quarantine (source_id, raw_hash, location) WHERE status = 'held';
