-- Relations between base-library entities (person↔person, person↔entity, person↔room,
-- room↔building), each with the record that states it. Rebuilt as a whole with the libraries.
CREATE TABLE relations (
    from_key   TEXT NOT NULL,
    relation   TEXT NOT NULL,
    to_key     TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    PRIMARY KEY (from_key, relation, to_key, source_id, record_key)
);
CREATE INDEX relations_to ON relations (to_key);
