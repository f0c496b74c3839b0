-- The search columns of the golden records (0010) become plain columns that the store fills as
-- it writes each record (`tongban_store::search_values`). As generated columns PostgreSQL parsed
-- the record as `jsonb` once per column: for a person, four parses of about 1.6 KB of JSON,
-- most of the time it took to write the person library. The values already stored are kept.
-- Whatever writes a golden record from outside the store must now fill its search columns
-- too (tongban_store::search_values), or searches will not find it by its new values.
ALTER TABLE golden_person ALTER COLUMN search_name DROP EXPRESSION;
ALTER TABLE golden_person ALTER COLUMN search_phone DROP EXPRESSION;
ALTER TABLE golden_person ALTER COLUMN search_citizen_id DROP EXPRESSION;
ALTER TABLE golden_person ALTER COLUMN search_residence DROP EXPRESSION;
ALTER TABLE golden_entity ALTER COLUMN search_name DROP EXPRESSION;
ALTER TABLE golden_entity ALTER COLUMN search_credit_code DROP EXPRESSION;
ALTER TABLE golden_room ALTER COLUMN search_address_key DROP EXPRESSION;
ALTER TABLE golden_building ALTER COLUMN search_address_key DROP EXPRESSION;
