-- A record's source is checked once per stored chunk instead of once per row: the chunk's first
-- statement takes the source's lock only if the source exists, and holds its row (FOR KEY
-- SHARE) to the end of the transaction, as the foreign key did. PostgreSQL ran the foreign-key
-- check as a query of its own for every inserted record, a tenth of an ingest's time. Nothing
-- deletes sources. SQLite keeps its foreign key: there the check is a lookup in the sources
-- table's index inside SQLite's own insert, with no query of its own.
ALTER TABLE records DROP CONSTRAINT records_source_id_fkey;
