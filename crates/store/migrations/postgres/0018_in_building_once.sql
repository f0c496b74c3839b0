-- A room lies in its building however many records name the room, so the store keeps that
-- relation (`in_building`, see `STATED_ONCE` in src/lib.rs) once per room and building, under
-- the least (source, record key) that states it. Runs before this kept a row per record that
-- named the room (2.6 M of the 6.9 M relations at a million people); the later citations go,
-- as the next run from scratch would drop them, so that records resolved one at a time in the
-- meantime find the store as they leave it. `COLLATE "C"` compares bytewise, as Rust does.
DELETE FROM relations
WHERE relation = 'in_building'
  AND EXISTS (
    SELECT 1 FROM relations AS s
    WHERE s.from_key = relations.from_key
      AND s.relation = relations.relation
      AND s.to_key = relations.to_key
      AND (s.source_id COLLATE "C" < relations.source_id COLLATE "C"
           OR (s.source_id = relations.source_id
               AND s.record_key COLLATE "C" < relations.record_key COLLATE "C")));
