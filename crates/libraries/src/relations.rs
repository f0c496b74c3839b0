//! Relations between the libraries' entities, read off the records that link them.
//!
//! A record that mentions several entities relates them: a birth certificate relates the child to
//! its mother and father, a rental contract the tenant and the landlord to the room, the market
//! register a legal representative to the company, social insurance an employee to the employer,
//! a residence or registered address a person to a room, a room mention a room to its building,
//! and a company's register entry the company to the building at its address. Each relation
//! keeps the record that states it; a room lies in its building whatever record says so, so
//! that relation keeps only the least (see `tongban_store::STATED_ONCE`). Pure: links in,
//! relations out.

use foldhash::{HashMap, HashMapExt as _};
use rayon::prelude::*;
use tongban_store::{LinkRef, RelationRef};

/// A link as relations read it: a mention's record and role, and the entity it links to. Both
/// the links a run keeps (interned, `build::Link`) and those incremental resolution borrows
/// ([`LinkRef`]) are read through it. `'s` is how long their text is.
pub trait LinkText<'s>: Sync {
    fn source_id(&self) -> &'s str;
    fn record_key(&self) -> &'s str;
    fn role(&self) -> &'s str;
    fn entity_key(&self) -> &'s str;
}

impl<'s> LinkText<'s> for LinkRef<'s> {
    fn source_id(&self) -> &'s str {
        self.source_id
    }
    fn record_key(&self) -> &'s str {
        self.record_key
    }
    fn role(&self) -> &'s str {
        self.role
    }
    fn entity_key(&self) -> &'s str {
        self.entity_key
    }
}

/// The links of one record, as a slice of a kind's links: a resolution run writes a record's
/// mentions one after another, so they are found by where they start and end rather than
/// gathered into a list of their own (ten million small lists at a million people).
type ByRecord<'s> = HashMap<(&'s str, &'s str), (u32, u32)>;

/// A kind's links indexed by record, and the links found out of place (see [`index`]). `'l` is
/// how long the links are borrowed, `'s` how long their text is.
type Indexed<'l, 's, L> = (ByRecord<'s>, Vec<&'l L>);

/// Consecutive links of the same record, as (where they start, source, record key, the links).
fn runs<'l, 's, L: LinkText<'s>>(
    links: &'l [L],
) -> impl Iterator<Item = (u32, &'s str, &'s str, &'l [L])> {
    links
        .chunk_by(|a, b| a.source_id() == b.source_id() && a.record_key() == b.record_key())
        .scan(0u32, |at, run| {
            let start = *at;
            *at += run.len() as u32;
            Some((start, run[0].source_id(), run[0].record_key(), run))
        })
}

/// Where each record's links lie. Should a record's links not be consecutive (they always are
/// when they come from a run), its later links are kept in `scattered`, so nothing is lost.
fn index<'l, 's, L: LinkText<'s>>(links: &'l [L]) -> Indexed<'l, 's, L> {
    let mut into = ByRecord::with_capacity(links.len());
    let mut scattered = Vec::new();
    for (start, source, key, run) in runs(links) {
        match into.entry((source, key)) {
            std::collections::hash_map::Entry::Occupied(_) => scattered.extend(run),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((start, start + run.len() as u32));
            }
        }
    }
    (into, scattered)
}

/// The links of one record in a kind, wherever they lie.
fn of_record<'l, 's, L: LinkText<'s>>(
    links: &'l [L],
    (by, scattered): &Indexed<'l, 's, L>,
    source: &str,
    key: &str,
) -> Vec<&'l L> {
    let mut found: Vec<&L> = match by.get(&(source, key)) {
        Some(&(a, b)) => links[a as usize..b as usize].iter().collect(),
        None => Vec::new(),
    };
    if !scattered.is_empty() {
        found.extend(
            scattered
                .iter()
                .filter(|l| l.source_id() == source && l.record_key() == key),
        );
    }
    found
}

/// Every record of a kind once, in the order its links come, with all its links: a record whose
/// links are split is taken whole at its first run.
fn records<'l, 's, L: LinkText<'s>>(
    links: &'l [L],
    index: &Indexed<'l, 's, L>,
) -> impl Iterator<Item = (&'s str, &'s str, Vec<&'l L>)> {
    runs(links)
        .filter(|(start, source, key, _)| {
            index.0.get(&(*source, *key)).map(|r| r.0) == Some(*start)
        })
        .map(|(_, source, key, _)| (source, key, of_record(links, index, source, key)))
}

/// Keeps a relation unless an end is missing or it relates an entity to itself.
fn push<'s>(
    out: &mut Vec<RelationRef<'s>>,
    from: &'s str,
    relation: &'static str,
    to: &'s str,
    source: &'s str,
    key: &'s str,
) {
    if !from.is_empty() && !to.is_empty() && from != to {
        out.push(RelationRef {
            from_key: from,
            relation,
            to_key: to,
            source_id: source,
            record_key: key,
        });
    }
}

/// The entities of one role among a record's links.
fn of<'x, 's, L: LinkText<'s>>(list: &'x [&L], role: &'x str) -> impl Iterator<Item = &'s str> {
    list.iter()
        .filter(move |l| l.role() == role)
        .map(|l| l.entity_key())
}

/// Every relation the records state between the linked entities, sorted, without duplicates
/// (a stated-once relation under its least record).
/// They borrow the links' text: millions are made at a million people.
pub fn derive<'s, L: LinkText<'s>>(
    persons: &[L],
    entities: &[L],
    rooms: &[L],
    buildings: &[L],
) -> Vec<RelationRef<'s>> {
    let (p, e, r, b) = (
        index(persons),
        index(entities),
        index(rooms),
        index(buildings),
    );
    let mut out: Vec<RelationRef<'s>> = Vec::new();
    let sink = &mut out;
    // Records are taken one at a time from the people's links; a record that names nobody
    // relates no person, so it is never needed.
    for (source, key, people) in records(persons, &p) {
        let ents = of_record(entities, &e, source, key);
        let places = of_record(rooms, &r, source, key);
        for s in of(&people, "subject") {
            for (role, relation) in [
                ("spouse", "spouse"),
                ("mother", "mother"),
                ("father", "father"),
                ("guardian", "guardian"),
            ] {
                for other in of(&people, role) {
                    push(sink, s, relation, other, source, key);
                }
            }
            for employer in of(&ents, "employer") {
                push(sink, s, "employee_of", employer, source, key);
            }
            for room in of(&places, "residence") {
                push(sink, s, "lives_in", room, source, key);
            }
            for room in of(&places, "registered") {
                push(sink, s, "registered_in", room, source, key);
            }
        }
        for room in of(&places, "room") {
            for t in of(&people, "tenant") {
                push(sink, t, "rents", room, source, key);
            }
            for l in of(&people, "landlord") {
                push(sink, l, "lets", room, source, key);
            }
        }
        for room in of(&places, "subject") {
            for o in of(&people, "owner") {
                push(sink, o, "owns", room, source, key);
            }
        }
        for company in of(&ents, "subject") {
            for rep in of(&people, "legal_rep") {
                push(sink, rep, "legal_rep_of", company, source, key);
            }
        }
    }
    // A company lies at the premises its own register entry gives.
    for (source, key, ents) in records(entities, &e) {
        let places = of_record(buildings, &b, source, key);
        for company in of(&ents, "subject") {
            for building in of(&places, "premises") {
                push(sink, company, "located_at", building, source, key);
            }
        }
    }
    // A room lies in the building its mentions name. Both come from the same place mentions in
    // the same order (rooms leave out premises, which name only a building), so the two lists
    // are walked side by side; a building link with no room link beside it is looked up.
    let mut rest = rooms.iter().peekable();
    for building in buildings {
        match rest.peek() {
            Some(room) if same_mention(*room, building) => {
                push(
                    sink,
                    room.entity_key(),
                    "in_building",
                    building.entity_key(),
                    room.source_id(),
                    room.record_key(),
                );
                rest.next();
            }
            _ => {}
        }
    }
    let unmatched: Vec<&L> = rest.collect();
    if !unmatched.is_empty() {
        let map: HashMap<(&str, &str, &str), &str> = buildings
            .iter()
            .map(|b| ((b.source_id(), b.record_key(), b.role()), b.entity_key()))
            .collect();
        for room in unmatched {
            if let Some(b) = map.get(&(room.source_id(), room.record_key(), room.role())) {
                push(
                    sink,
                    room.entity_key(),
                    "in_building",
                    b,
                    room.source_id(),
                    room.record_key(),
                );
            }
        }
    }
    out.par_sort_unstable();
    // A room's building is kept once, under its least record, as the store keeps it.
    out.dedup_by(|next, kept| tongban_store::stated_again(kept, next));
    out
}

/// Whether two links are of the same mention: same record and role.
fn same_mention<'s, L: LinkText<'s>>(a: &L, b: &L) -> bool {
    a.source_id() == b.source_id() && a.record_key() == b.record_key() && a.role() == b.role()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(
        source: &'static str,
        key: &'static str,
        role: &'static str,
        entity: &'static str,
    ) -> LinkRef<'static> {
        LinkRef {
            source_id: source,
            record_key: key,
            role,
            entity_key: entity,
        }
    }

    #[test]
    fn records_relate_what_they_mention() {
        let persons = vec![
            l("health_births", "B1", "subject", "Pchild"),
            l("health_births", "B1", "mother", "Pmum"),
            l("housing_rentals", "Z1", "tenant", "Pmum"),
            l("housing_rentals", "Z1", "landlord", "Powner"),
            l("market_entities", "C1", "legal_rep", "Powner"),
        ];
        let entities = vec![l("market_entities", "C1", "subject", "E1")];
        let rooms = vec![l("housing_rentals", "Z1", "room", "R1")];
        let buildings = vec![
            l("housing_rentals", "Z1", "room", "B1"),
            l("market_entities", "C1", "premises", "B7"),
        ];
        let rel = derive(&persons, &entities, &rooms, &buildings);
        let has = |f: &str, r: &str, t: &str| {
            rel.iter()
                .any(|x| x.from_key == f && x.relation == r && x.to_key == t)
        };
        assert!(has("Pchild", "mother", "Pmum"));
        assert!(has("Pmum", "rents", "R1"));
        assert!(has("Powner", "lets", "R1"));
        assert!(has("Powner", "legal_rep_of", "E1"));
        assert!(has("R1", "in_building", "B1"));
        assert!(has("E1", "located_at", "B7"));
        assert_eq!(rel.len(), 6);

        // Links need not come record by record: scattered, they relate the same entities.
        let scatter = |links: &[LinkRef<'static>]| -> Vec<LinkRef<'static>> {
            let (even, odd): (Vec<_>, Vec<_>) = links
                .iter()
                .copied()
                .enumerate()
                .partition(|(i, _)| i % 2 == 0);
            odd.into_iter().chain(even).rev().map(|(_, l)| l).collect()
        };
        let scattered = derive(
            &scatter(&persons),
            &scatter(&entities),
            &scatter(&rooms),
            &scatter(&buildings),
        );
        assert_eq!(scattered, rel);

        // A record's rooms, entities and buildings split by another record's are all found.
        let persons = vec![l("police_household", "K", "subject", "P")];
        let rooms = vec![
            l("police_household", "K", "residence", "R1"),
            l("police_household", "K2", "residence", "R2"),
            l("police_household", "K", "registered", "R3"),
        ];
        let rel = derive(&persons, &[], &rooms, &[]);
        assert!(
            rel.iter()
                .any(|x| x.relation == "lives_in" && x.to_key == "R1")
        );
        assert!(
            rel.iter()
                .any(|x| x.relation == "registered_in" && x.to_key == "R3")
        );
        let entities = vec![l("market_entities", "C", "subject", "E1")];
        let buildings = vec![
            l("market_entities", "C", "premises", "B7"),
            l("market_entities", "D", "premises", "B8"),
            l("market_entities", "C", "other", "B9"),
        ];
        let rel = derive(&[], &entities, &[], &buildings);
        assert!(
            rel.iter()
                .any(|x| x.relation == "located_at" && x.to_key == "B7")
        );
    }

    #[test]
    fn a_room_lies_in_its_building_once_and_residents_by_every_record() {
        // Three records name the same room: each says who lives there, but the room's building
        // is kept once, under the least of them whatever order the links come in.
        let persons = vec![
            l("police_household", "K9", "subject", "P1"),
            l("grid_collection", "G5", "subject", "P1"),
            l("grid_collection", "G2", "subject", "P2"),
        ];
        let rooms = vec![
            l("police_household", "K9", "residence", "R1"),
            l("grid_collection", "G5", "residence", "R1"),
            l("grid_collection", "G2", "residence", "R1"),
        ];
        let buildings = vec![
            l("police_household", "K9", "residence", "B1"),
            l("grid_collection", "G5", "residence", "B1"),
            l("grid_collection", "G2", "residence", "B1"),
        ];
        let rel = derive(&persons, &[], &rooms, &buildings);
        let of = |relation: &str| -> Vec<(&str, &str, &str)> {
            rel.iter()
                .filter(|x| x.relation == relation)
                .map(|x| (x.from_key, x.source_id, x.record_key))
                .collect()
        };
        assert_eq!(of("in_building"), [("R1", "grid_collection", "G2")]);
        assert_eq!(
            of("lives_in"),
            [
                ("P1", "grid_collection", "G5"),
                ("P1", "police_household", "K9"),
                ("P2", "grid_collection", "G2")
            ]
        );
        let reversed = |v: &[LinkRef<'static>]| v.iter().rev().copied().collect::<Vec<_>>();
        assert_eq!(
            derive(
                &reversed(&persons),
                &[],
                &reversed(&rooms),
                &reversed(&buildings)
            ),
            rel
        );
    }
}
