-- Every committed change to any table but the audit log's announces itself on the channel
-- `tongban_data`, so that a store can tell when what it cached may be stale (see
-- `Store::data_generation`). Statement-level triggers: one notification per statement at most,
-- and PostgreSQL delivers one per transaction (identical notifications are folded), at commit.
-- A table added by a later migration needs the same trigger; a contract test checks every table.
CREATE FUNCTION tongban_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tongban_data', '');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT tablename FROM pg_tables
        WHERE schemaname = current_schema()
          AND tablename NOT IN ('audit_log', 'audit_checkpoints', '_sqlx_migrations')
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION tongban_data_changed()',
            t || '_announces', t);
    END LOOP;
END
$$;
