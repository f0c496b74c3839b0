-- Searches of the golden records (by name, phone, id, address, credit code) use these
-- expression indexes; each expression is exactly the one the store's search query writes.
-- Users may also have a console password, kept only as an Argon2id hash.
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE INDEX golden_person_by_name ON golden_person ((json_extract(record, '$.fields.name.value')));
CREATE INDEX golden_person_by_phone ON golden_person ((json_extract(record, '$.fields.phone.value')));
CREATE INDEX golden_person_by_citizen_id ON golden_person ((json_extract(record, '$.fields.citizen_id.value')));
CREATE INDEX golden_person_by_residence ON golden_person ((json_extract(record, '$.fields.residence.value')));
CREATE INDEX golden_entity_by_name ON golden_entity ((json_extract(record, '$.fields.name.value')));
CREATE INDEX golden_entity_by_credit_code ON golden_entity ((json_extract(record, '$.fields.credit_code.value')));
CREATE INDEX golden_room_by_address_key ON golden_room ((json_extract(record, '$.address_key')));
CREATE INDEX golden_building_by_address_key ON golden_building ((json_extract(record, '$.address_key')));
