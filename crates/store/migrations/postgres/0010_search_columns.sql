-- Searches through plain columns rather than expressions over the JSON: each golden-record
-- table gains a stored generated column per search path (`search_name` is
-- `(record::jsonb) #>> '{fields,name,value}'`, the very expression 0009 indexed), and the search
-- indexes move onto those columns. Building an index over an expression parsed every record's
-- JSON once per index after every resolution run; the generated columns parse it as the row is
-- written, and the indexes sort plain text. A search compares the same value as before.

DROP INDEX golden_person_by_name;
ALTER TABLE golden_person ADD COLUMN search_name TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{fields,name,value}') STORED;
CREATE INDEX golden_person_by_name ON golden_person (search_name);

DROP INDEX golden_person_by_phone;
ALTER TABLE golden_person ADD COLUMN search_phone TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{fields,phone,value}') STORED;
CREATE INDEX golden_person_by_phone ON golden_person (search_phone);

DROP INDEX golden_person_by_citizen_id;
ALTER TABLE golden_person ADD COLUMN search_citizen_id TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{fields,citizen_id,value}') STORED;
CREATE INDEX golden_person_by_citizen_id ON golden_person (search_citizen_id);

DROP INDEX golden_person_by_residence;
ALTER TABLE golden_person ADD COLUMN search_residence TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{fields,residence,value}') STORED;
CREATE INDEX golden_person_by_residence ON golden_person (search_residence);

DROP INDEX golden_entity_by_name;
ALTER TABLE golden_entity ADD COLUMN search_name TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{fields,name,value}') STORED;
CREATE INDEX golden_entity_by_name ON golden_entity (search_name);

DROP INDEX golden_entity_by_credit_code;
ALTER TABLE golden_entity ADD COLUMN search_credit_code TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{fields,credit_code,value}') STORED;
CREATE INDEX golden_entity_by_credit_code ON golden_entity (search_credit_code);

DROP INDEX golden_room_by_address_key;
ALTER TABLE golden_room ADD COLUMN search_address_key TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{address_key}') STORED;
CREATE INDEX golden_room_by_address_key ON golden_room (search_address_key);

DROP INDEX golden_building_by_address_key;
ALTER TABLE golden_building ADD COLUMN search_address_key TEXT
    GENERATED ALWAYS AS ((record::jsonb) #>> '{address_key}') STORED;
CREATE INDEX golden_building_by_address_key ON golden_building (search_address_key);
