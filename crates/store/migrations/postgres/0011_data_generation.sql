-- Every committed change to the libraries' golden records announces itself on the channel
-- `tongban_data`, so that a store can tell when the golden records it keeps parsed may be stale
-- (see `Store::data_generation`). Statement-level triggers: one notification per statement at
-- most, and PostgreSQL delivers one per transaction (identical notifications are folded), at
-- commit. Only these tables announce: a transaction that notifies takes a lock that serialises
-- commits across the server, which ingest chunks and the other writes need not pay, and a
-- commit to another table does not make a kept golden record stale. A table whose rows a store
-- starts to cache needs the same trigger (a contract test lists the tables that must have it).
CREATE FUNCTION tongban_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tongban_data', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER golden_person_announces AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON golden_person FOR EACH STATEMENT EXECUTE FUNCTION tongban_data_changed();
CREATE TRIGGER golden_entity_announces AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON golden_entity FOR EACH STATEMENT EXECUTE FUNCTION tongban_data_changed();
CREATE TRIGGER golden_room_announces AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON golden_room FOR EACH STATEMENT EXECUTE FUNCTION tongban_data_changed();
CREATE TRIGGER golden_building_announces AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON golden_building FOR EACH STATEMENT EXECUTE FUNCTION tongban_data_changed();
