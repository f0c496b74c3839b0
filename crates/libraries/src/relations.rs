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

use foldhash::HashMap;
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

/// The four kinds of links relations are read off, in this order: persons, entities, rooms,
/// buildings. A [`Stated`] relation names its ends and its record by kind and position.
pub type Kinds<'l, L> = [&'l [L]; 4];

const PERSON: u8 = 0;
const ENTITY: u8 = 1;
const ROOM: u8 = 2;
const BUILDING: u8 = 3;

/// Every relation's name; a [`Stated`] relation holds its place in this list.
const NAMES: [&str; 13] = [
    "spouse",
    "mother",
    "father",
    "guardian",
    "employee_of",
    "lives_in",
    "registered_in",
    "rents",
    "lets",
    "owns",
    "legal_rep_of",
    "located_at",
    "in_building",
];

/// Where a relation's name is in [`NAMES`]. Only the names written in [`derive_stated`] are
/// asked for, each of them in the list; one missing from it would be kept as the first, which
/// the debug assertion stops in any test or debug run that derives it.
fn name(relation: &str) -> u8 {
    let at = NAMES.iter().position(|n| *n == relation);
    debug_assert!(at.is_some(), "{relation} is not in NAMES");
    at.unwrap_or(0) as u8
}

/// A link by kind and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    kind: u8,
    at: u32,
}

/// A relation as a run holds it: its two ends and a link of the record that states it, each by
/// kind and position among the links, and its name by number. 24 bytes where a [`RelationRef`]
/// is 80: at a million people a run derives five million relations, and with their text
/// borrowed they and their sort were the largest thing a run held. Read back with
/// [`Stated::of`] from the links they were derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stated {
    /// The first eight bytes of `from`'s key, for sorting: compared as a number they order as
    /// the keys do wherever they differ, and a sort that read every key through the links it
    /// names took three times as long (37 s against 13 s at a million people).
    from_prefix: u64,
    from: u32,
    to: u32,
    by: u32,
    /// The kinds of `from`, `to` and `by`, two bits each, lowest first.
    kinds: u8,
    name: u8,
}

impl Stated {
    fn new(from: At, from_key: &str, name: u8, to: At, by: At) -> Stated {
        let mut prefix = [0u8; 8];
        let head = &from_key.as_bytes()[..from_key.len().min(8)];
        prefix[..head.len()].copy_from_slice(head);
        Stated {
            from_prefix: u64::from_be_bytes(prefix),
            from: from.at,
            to: to.at,
            by: by.at,
            kinds: from.kind | to.kind << 2 | by.kind << 4,
            name,
        }
    }

    /// This relation with the text of the links it was derived from.
    pub fn of<'s, L: LinkText<'s>>(&self, links: Kinds<'_, L>) -> RelationRef<'s> {
        let link = |kind: u8, at: u32| &links[usize::from(kind & 3)][at as usize];
        let by = link(self.kinds >> 4, self.by);
        RelationRef {
            from_key: link(self.kinds, self.from).entity_key(),
            relation: NAMES[usize::from(self.name)],
            to_key: link(self.kinds >> 2, self.to).entity_key(),
            source_id: by.source_id(),
            record_key: by.record_key(),
        }
    }
}

/// Where each record's links lie in one kind: the runs of consecutive links of the same record,
/// as (start, end), sorted by record and then start. A record is found by binary search, with
/// every run it has wherever its links lie (they are consecutive when they come from a run, and
/// then the runs are sorted already). Eight bytes a record, where a hash map by record was some
/// fifty a link.
struct ByRecord<'l, L> {
    links: &'l [L],
    runs: Vec<(u32, u32)>,
}

impl<'l, 's, L: LinkText<'s>> ByRecord<'l, L> {
    fn new(links: &'l [L]) -> Self {
        // A kind's links are counted in `u32`, as everywhere in a run (see `Stated`).
        let mut runs: Vec<(u32, u32)> = runs(links)
            .map(|(start, len)| (start, start + len))
            .collect();
        let record = |&(start, _): &(u32, u32)| record_of(&links[start as usize]);
        if !runs.is_sorted_by(|a, b| record(a) <= record(b)) {
            runs.par_sort_by(|a, b| record(a).cmp(&record(b)).then(a.0.cmp(&b.0)));
        }
        ByRecord { links, runs }
    }

    /// The runs of one record, first start first.
    fn runs_of(&self, source: &str, key: &str) -> &[(u32, u32)] {
        let at = |r: &(u32, u32)| record_of(&self.links[r.0 as usize]);
        let first = self.runs.partition_point(|r| at(r) < (source, key));
        let len = self.runs[first..]
            .iter()
            .take_while(|r| at(r) == (source, key))
            .count();
        &self.runs[first..first + len]
    }

    /// The positions of one record's links, wherever they lie.
    fn of_record(&self, source: &str, key: &str) -> Vec<u32> {
        self.runs_of(source, key)
            .iter()
            .flat_map(|&(a, b)| a..b)
            .collect()
    }

    /// Every record once, in the order its links come, with the positions of all its links: a
    /// record whose links are split is taken whole at its first run.
    fn records(&self) -> impl Iterator<Item = (&'s str, &'s str, Vec<u32>)> + '_ {
        runs(self.links).filter_map(|(start, _)| {
            let (source, key) = record_of(&self.links[start as usize]);
            let all = self.runs_of(source, key);
            (all.first().map(|r| r.0) == Some(start))
                .then(|| (source, key, all.iter().flat_map(|&(a, b)| a..b).collect()))
        })
    }

    /// The entities of one role among a record's links.
    fn of<'x>(
        &'x self,
        kind: u8,
        record: &'x [u32],
        role: &'x str,
    ) -> impl Iterator<Item = At> + 'x {
        record
            .iter()
            .filter(move |&&i| self.links[i as usize].role() == role)
            .map(move |&at| At { kind, at })
    }
}

/// A link's record.
fn record_of<'s, L: LinkText<'s>>(link: &L) -> (&'s str, &'s str) {
    (link.source_id(), link.record_key())
}

/// Consecutive links of the same record, as (where they start, how many).
fn runs<'s, L: LinkText<'s>>(links: &[L]) -> impl Iterator<Item = (u32, u32)> + '_ {
    links
        .chunk_by(|a, b| record_of(a) == record_of(b))
        .scan(0u32, |at, run| {
            let start = *at;
            *at += run.len() as u32;
            Some((start, run.len() as u32))
        })
}

/// Every relation the records state between the linked entities, sorted, without duplicates
/// (a stated-once relation under its least record), with their text borrowed from the links.
/// Incremental resolution derives a record's few relations with it; a run keeps them compact
/// ([`derive_stated`]).
pub fn derive<'s, L: LinkText<'s>>(
    persons: &[L],
    entities: &[L],
    rooms: &[L],
    buildings: &[L],
) -> Vec<RelationRef<'s>> {
    let links = [persons, entities, rooms, buildings];
    derive_stated(links).iter().map(|s| s.of(links)).collect()
}

/// As [`derive`], each relation by where its text is among the links (see [`Stated`]), in the
/// order [`Stated::of`] gives them.
pub fn derive_stated<'s, L: LinkText<'s>>(links: Kinds<'_, L>) -> Vec<Stated> {
    let [persons, entities, rooms, buildings] = links;
    let (p, e, r) = (
        ByRecord::new(persons),
        ByRecord::new(entities),
        ByRecord::new(rooms),
    );
    let text = |a: At| links[usize::from(a.kind)][a.at as usize].entity_key();
    let mut out: Vec<Stated> = Vec::new();
    // Keeps a relation unless an end is missing or it relates an entity to itself.
    let mut push = |from: At, relation: &str, to: At, by: At| {
        let (f, t) = (text(from), text(to));
        if !f.is_empty() && !t.is_empty() && f != t {
            out.push(Stated::new(from, f, name(relation), to, by));
        }
    };
    // Records are taken one at a time from the people's links; a record that names nobody
    // relates no person, so it is never needed.
    for (source, key, people) in p.records() {
        let Some(&first) = people.first() else {
            continue;
        };
        let by = At {
            kind: PERSON,
            at: first,
        };
        let ents = e.of_record(source, key);
        let places = r.of_record(source, key);
        for s in p.of(PERSON, &people, "subject") {
            for role in ["spouse", "mother", "father", "guardian"] {
                for other in p.of(PERSON, &people, role) {
                    push(s, role, other, by);
                }
            }
            for employer in e.of(ENTITY, &ents, "employer") {
                push(s, "employee_of", employer, by);
            }
            for room in r.of(ROOM, &places, "residence") {
                push(s, "lives_in", room, by);
            }
            for room in r.of(ROOM, &places, "registered") {
                push(s, "registered_in", room, by);
            }
        }
        for room in r.of(ROOM, &places, "room") {
            for t in p.of(PERSON, &people, "tenant") {
                push(t, "rents", room, by);
            }
            for l in p.of(PERSON, &people, "landlord") {
                push(l, "lets", room, by);
            }
        }
        for room in r.of(ROOM, &places, "subject") {
            for o in p.of(PERSON, &people, "owner") {
                push(o, "owns", room, by);
            }
        }
        for company in e.of(ENTITY, &ents, "subject") {
            for rep in p.of(PERSON, &people, "legal_rep") {
                push(rep, "legal_rep_of", company, by);
            }
        }
    }
    drop(p);
    // A company lies at the premises its own register entry gives.
    let b = ByRecord::new(buildings);
    for (source, key, ents) in e.records() {
        let Some(&first) = ents.first() else {
            continue;
        };
        let by = At {
            kind: ENTITY,
            at: first,
        };
        let places = b.of_record(source, key);
        for company in e.of(ENTITY, &ents, "subject") {
            for building in b.of(BUILDING, &places, "premises") {
                push(company, "located_at", building, by);
            }
        }
    }
    drop((e, r, b));
    // A room lies in the building its mentions name. Both come from the same place mentions in
    // the same order (rooms leave out premises, which name only a building), so the two lists
    // are walked side by side; a building link with no room link beside it is looked up.
    let room_at = |at: usize| At {
        kind: ROOM,
        at: at as u32,
    };
    let mut rest = rooms.iter().enumerate().peekable();
    for (at, building) in buildings.iter().enumerate() {
        match rest.peek() {
            Some((r, room)) if same_mention(*room, building) => {
                let room = room_at(*r);
                let building = At {
                    kind: BUILDING,
                    at: at as u32,
                };
                push(room, "in_building", building, room);
                rest.next();
            }
            _ => {}
        }
    }
    let unmatched: Vec<usize> = rest.map(|(at, _)| at).collect();
    if !unmatched.is_empty() {
        let map: HashMap<(&str, &str, &str), usize> = buildings
            .iter()
            .enumerate()
            .map(|(at, b)| ((b.source_id(), b.record_key(), b.role()), at))
            .collect();
        for at in unmatched {
            let room = &rooms[at];
            if let Some(&b) = map.get(&(room.source_id(), room.record_key(), room.role())) {
                let building = At {
                    kind: BUILDING,
                    at: b as u32,
                };
                push(room_at(at), "in_building", building, room_at(at));
            }
        }
    }
    out.par_sort_unstable_by(|a, b| {
        a.from_prefix
            .cmp(&b.from_prefix)
            .then_with(|| a.of(links).cmp(&b.of(links)))
    });
    // A room's building is kept once, under its least record, as the store keeps it.
    out.dedup_by(|next, kept| tongban_store::stated_again(&kept.of(links), &next.of(links)));
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

    proptest::proptest! {
        /// Whatever the keys (sharing their first eight bytes or not) and however the links
        /// come, the relations are sorted as the store orders them, each once, and the same.
        #[test]
        fn relations_are_sorted_whatever_the_keys_and_link_order(
            persons in proptest::collection::vec((0..3usize, 0..4usize, 0..6usize, 0..6usize), 0..24),
            rooms in proptest::collection::vec((0..3usize, 0..4usize, 0..2usize, 0..6usize), 0..12),
            rotate in 0..24usize,
        ) {
            const SOURCES: [&str; 3] = ["health_births", "housing_rentals", "police_household"];
            const KEYS: [&str; 4] = ["K1", "K2", "K10", "K"];
            const PERSON_ROLES: [&str; 6] = ["subject", "mother", "spouse", "tenant", "landlord", "owner"];
            const ROOM_ROLES: [&str; 2] = ["residence", "room"];
            // Entity keys alike in their first eight bytes, shorter and longer than eight.
            const ENTITIES: [&str; 6] = ["P", "PPPPPPPP", "PPPPPPPPa", "PPPPPPPPb", "PPPPPPP", "PPPPPPPPPPPPPPPPa"];
            let persons: Vec<LinkRef<'static>> = persons
                .iter()
                .map(|&(s, k, r, e)| l(SOURCES[s], KEYS[k], PERSON_ROLES[r], ENTITIES[e]))
                .collect();
            let rooms: Vec<LinkRef<'static>> = rooms
                .iter()
                .map(|&(s, k, r, e)| l(SOURCES[s], KEYS[k], ROOM_ROLES[r], ENTITIES[e]))
                .collect();
            let rel = derive(&persons, &[], &rooms, &[]);
            proptest::prop_assert!(rel.windows(2).all(|w| w[0] < w[1]));
            let mut turned = persons.clone();
            if !turned.is_empty() {
                let by = rotate % turned.len();
                turned.rotate_left(by);
            }
            turned.reverse();
            proptest::prop_assert_eq!(derive(&turned, &[], &rooms, &[]), rel);
        }
    }

    /// A run holds millions of relations at once; each is kept in 24 bytes (see [`Stated`]).
    #[test]
    fn a_stated_relation_is_small() {
        assert_eq!(std::mem::size_of::<Stated>(), 24);
        assert!(NAMES.iter().all(|n| NAMES[usize::from(name(n))] == *n));
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
