//! Relations between the libraries' entities, read off the records that link them.
//!
//! A record that mentions several entities relates them: a birth certificate relates the child to
//! its mother and father, a rental contract the tenant and the landlord to the room, the market
//! register a legal representative to the company, social insurance an employee to the employer,
//! a residence or registered address a person to a room, every room mention a room to its
//! building, and a company's register entry the company to the building at its address. Each relation keeps the record that states it. Pure: links in, relations out.

use std::collections::HashMap;
use tongban_store::{EntityLink, Relation};

/// (record, role) → entity key, per kind.
type ByMention<'a> = HashMap<(&'a str, &'a str), Vec<(&'a str, &'a str)>>;

fn index<'a>(links: &'a [EntityLink], into: &mut ByMention<'a>) {
    for l in links {
        into.entry((l.source_id.as_str(), l.record_key.as_str()))
            .or_default()
            .push((l.role.as_str(), l.entity_key.as_str()));
    }
}

/// Every relation the records state between the linked entities.
pub fn derive(
    persons: &[EntityLink],
    entities: &[EntityLink],
    rooms: &[EntityLink],
    buildings: &[EntityLink],
) -> Vec<Relation> {
    let (mut p, mut e, mut r, mut b) = (
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
    );
    index(persons, &mut p);
    index(entities, &mut e);
    index(rooms, &mut r);
    index(buildings, &mut b);
    let none: Vec<(&str, &str)> = Vec::new();
    let mut out = Vec::new();
    let mut push = |from: &str, relation: &str, to: &str, source: &str, key: &str| {
        if !from.is_empty() && !to.is_empty() && from != to {
            out.push(Relation {
                from_key: from.to_string(),
                relation: relation.to_string(),
                to_key: to.to_string(),
                source_id: source.to_string(),
                record_key: key.to_string(),
            });
        }
    };
    let find = |list: &[(&str, &str)], role: &str| -> Vec<String> {
        list.iter()
            .filter(|(r, _)| *r == role)
            .map(|(_, k)| k.to_string())
            .collect()
    };
    for (&(source, key), people) in &p {
        let ents = e.get(&(source, key)).unwrap_or(&none);
        let places = r.get(&(source, key)).unwrap_or(&none);
        let subject = find(people, "subject");
        for s in &subject {
            for (role, relation) in [
                ("spouse", "spouse"),
                ("mother", "mother"),
                ("father", "father"),
                ("guardian", "guardian"),
            ] {
                for other in find(people, role) {
                    push(s, relation, &other, source, key);
                }
            }
            for employer in find(ents, "employer") {
                push(s, "employee_of", &employer, source, key);
            }
            for room in find(places, "residence") {
                push(s, "lives_in", &room, source, key);
            }
            for room in find(places, "registered") {
                push(s, "registered_in", &room, source, key);
            }
        }
        for room in find(places, "room") {
            for t in find(people, "tenant") {
                push(&t, "rents", &room, source, key);
            }
            for l in find(people, "landlord") {
                push(&l, "lets", &room, source, key);
            }
        }
        for room in find(places, "subject") {
            for o in find(people, "owner") {
                push(&o, "owns", &room, source, key);
            }
        }
        for company in find(ents, "subject") {
            for rep in find(people, "legal_rep") {
                push(&rep, "legal_rep_of", &company, source, key);
            }
        }
    }
    // A company lies at the premises its own register entry gives.
    for (&(source, key), ents) in &e {
        let places = b.get(&(source, key)).unwrap_or(&none);
        for company in find(ents, "subject") {
            for building in find(places, "premises") {
                push(&company, "located_at", &building, source, key);
            }
        }
    }
    // A room lies in the building its mentions name.
    let mut building_of: HashMap<(&str, &str, &str), &str> = HashMap::new();
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
                &room.entity_key,
                "in_building",
                b,
                &room.source_id,
                &room.record_key,
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
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
