//! Relations between the libraries' entities, read off the records that link them.
//!
//! A record that mentions several entities relates them: a birth certificate relates the child to
//! its mother and father, a rental contract the tenant and the landlord to the room, the market
//! register a legal representative to the company, social insurance an employee to the employer,
//! a residence or registered address a person to a room, every room mention a room to its
//! building, and a company's register entry the company to the building at its address. Each relation keeps the record that states it. Pure: links in, relations out.

use foldhash::{HashMap, HashMapExt as _};
use rayon::prelude::*;
use tongban_store::{EntityLink, Relation};

/// (record, role) → entity key, per kind.
type ByMention<'a> = HashMap<(&'a str, &'a str), Vec<(&'a str, &'a str)>>;

fn index(links: &[EntityLink]) -> ByMention<'_> {
    let mut into = ByMention::with_capacity(links.len());
    for l in links {
        into.entry((l.source_id.as_str(), l.record_key.as_str()))
            .or_default()
            .push((l.role.as_str(), l.entity_key.as_str()));
    }
    into
}

/// Keeps a relation unless an end is missing or it relates an entity to itself.
fn push<'a>(
    out: &mut Vec<Borrowed<'a>>,
    from: &'a str,
    relation: &'static str,
    to: &'a str,
    source: &'a str,
    key: &'a str,
) {
    if !from.is_empty() && !to.is_empty() && from != to {
        out.push((from, relation, to, source, key));
    }
}

/// A relation with borrowed parts, in [`Relation`]'s field order so that both sort alike:
/// (from, relation, to, source, record key). Millions are made at a million people, so they are
/// sorted and deduplicated before any of them is copied into owned strings.
type Borrowed<'a> = (&'a str, &'static str, &'a str, &'a str, &'a str);

/// Every relation the records state between the linked entities, sorted, without duplicates.
pub fn derive<'a>(
    persons: &'a [EntityLink],
    entities: &'a [EntityLink],
    rooms: &'a [EntityLink],
    buildings: &'a [EntityLink],
) -> Vec<Relation> {
    let (p, e, r, b) = (
        index(persons),
        index(entities),
        index(rooms),
        index(buildings),
    );
    let none: Vec<(&str, &str)> = Vec::new();
    let mut out: Vec<Borrowed<'a>> = Vec::new();
    let sink = &mut out;
    /// The entities of one role among a record's mentions.
    fn of<'l, 'a>(
        list: &'l [(&'a str, &'a str)],
        role: &'l str,
    ) -> impl Iterator<Item = &'a str> + 'l {
        list.iter()
            .filter(move |(r, _)| *r == role)
            .map(|(_, k)| *k)
    }
    for (&(source, key), people) in &p {
        let ents = e.get(&(source, key)).unwrap_or(&none);
        let places = r.get(&(source, key)).unwrap_or(&none);
        for s in of(people, "subject") {
            for (role, relation) in [
                ("spouse", "spouse"),
                ("mother", "mother"),
                ("father", "father"),
                ("guardian", "guardian"),
            ] {
                for other in of(people, role) {
                    push(sink, s, relation, other, source, key);
                }
            }
            for employer in of(ents, "employer") {
                push(sink, s, "employee_of", employer, source, key);
            }
            for room in of(places, "residence") {
                push(sink, s, "lives_in", room, source, key);
            }
            for room in of(places, "registered") {
                push(sink, s, "registered_in", room, source, key);
            }
        }
        for room in of(places, "room") {
            for t in of(people, "tenant") {
                push(sink, t, "rents", room, source, key);
            }
            for l in of(people, "landlord") {
                push(sink, l, "lets", room, source, key);
            }
        }
        for room in of(places, "subject") {
            for o in of(people, "owner") {
                push(sink, o, "owns", room, source, key);
            }
        }
        for company in of(ents, "subject") {
            for rep in of(people, "legal_rep") {
                push(sink, rep, "legal_rep_of", company, source, key);
            }
        }
    }
    // A company lies at the premises its own register entry gives.
    for (&(source, key), ents) in &e {
        let places = b.get(&(source, key)).unwrap_or(&none);
        for company in of(ents, "subject") {
            for building in of(places, "premises") {
                push(sink, company, "located_at", building, source, key);
            }
        }
    }
    // A room lies in the building its mentions name.
    let mut building_of: HashMap<(&str, &str, &str), &str> =
        HashMap::with_capacity(buildings.len());
    for b in buildings {
        building_of.insert((&b.source_id, &b.record_key, &b.role), &b.entity_key);
    }
    for room in rooms {
        if let Some(b) = building_of.get(&(
            room.source_id.as_str(),
            room.record_key.as_str(),
            room.role.as_str(),
        )) {
            push(
                sink,
                &room.entity_key,
                "in_building",
                b,
                &room.source_id,
                &room.record_key,
            );
        }
    }
    out.par_sort_unstable();
    out.dedup();
    out.into_par_iter()
        .map(|(from, relation, to, source, key)| Relation {
            from_key: from.to_string(),
            relation: relation.to_string(),
            to_key: to.to_string(),
            source_id: source.to_string(),
            record_key: key.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(source: &str, key: &str, role: &str, entity: &str) -> EntityLink {
        EntityLink {
            source_id: source.into(),
            record_key: key.into(),
            role: role.into(),
            entity_key: entity.into(),
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
    }
}
