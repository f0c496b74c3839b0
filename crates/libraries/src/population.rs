//! Residents and floating population per community (实有人口: 户籍人口 and 流动人口), read off
//! the libraries.
//!
//! Where a person lives and where they are registered are relations (lives in, rents,
//! registered in a room); a room lies in a building, and a building in the community its golden
//! record names (the registers number buildings within communities). A person counts once, in
//! the community where they live — by their residence records, else the room they rent, else
//! where they are registered — as a registered resident when a household-register entry places
//! them in a room the area's registers know, and otherwise as floating population. The deceased
//! (a household entry cancelled on death, or a death registration) are counted apart. The
//! counting is pure ([`count`]); [`population`] reads what it needs from the store.

use crate::Result;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use tongban_store::{Relation, Store};

/// One community's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommunityPopulation {
    pub code: String,
    pub name: String,
    /// Registered residents living here (户籍人口).
    pub registered: u64,
    /// People living here who are registered elsewhere (流动人口).
    pub floating: u64,
}

/// The figures of every community, and the people who could not be placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Population {
    pub communities: Vec<CommunityPopulation>,
    /// Living persons with no residence or registration in a room of a known community.
    pub unplaced: u64,
    /// Persons known to have died.
    pub deceased: u64,
    /// The community each placed living person and each legal entity with known premises
    /// lies in, for figures broken down by jurisdiction (not printed with the counts).
    #[serde(skip)]
    pub placed: HashMap<String, String>,
}

impl Population {
    pub fn registered(&self) -> u64 {
        self.communities.iter().map(|c| c.registered).sum()
    }
    pub fn floating(&self) -> u64 {
        self.communities.iter().map(|c| c.floating).sum()
    }
}

/// The most common value (ties: the smallest).
fn most_common<'a>(values: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(v, _)| v)
}

/// Count. `community_of_building` maps building keys to community codes, `persons` lists every
/// person key, `deceased` those known to have died, and `relations` are the libraries' (a
/// company's `located_at` relation places it, for [`Population::placed`]).
pub fn count(
    community_of_building: &HashMap<String, String>,
    persons: &[String],
    deceased: &HashSet<String>,
    relations: &[Relation],
) -> Population {
    let mut out = Population::default();
    let mut building_of_room: HashMap<&str, &str> = HashMap::new();
    let mut lives: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut rents: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut registered: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in relations {
        let into = match r.relation.as_str() {
            "in_building" => {
                building_of_room.insert(&r.from_key, &r.to_key);
                continue;
            }
            "lives_in" => &mut lives,
            "rents" => &mut rents,
            "registered_in" => &mut registered,
            "located_at" => {
                if let Some(c) = community_of_building
                    .get(&r.to_key)
                    .filter(|c| !c.is_empty())
                {
                    out.placed.insert(r.from_key.clone(), c.clone());
                }
                continue;
            }
            _ => continue,
        };
        into.entry(&r.from_key).or_default().push(&r.to_key);
    }
    let community = |room: &&str| -> Option<&str> {
        building_of_room
            .get(room)
            .and_then(|b| community_of_building.get(*b))
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    };
    let communities_in = |map: &HashMap<&str, Vec<&str>>, person: &str| -> Option<&str> {
        most_common(map.get(person)?.iter().filter_map(community))
    };
    let mut by_community: BTreeMap<&str, CommunityPopulation> = BTreeMap::new();
    for person in persons {
        if deceased.contains(person) {
            out.deceased += 1;
            continue;
        }
        let home = communities_in(&lives, person);
        let rented = communities_in(&rents, person);
        let hukou = communities_in(&registered, person);
        let Some(place) = home.or(rented).or(hukou) else {
            out.unplaced += 1;
            continue;
        };
        out.placed.insert(person.clone(), place.to_string());
        let entry = by_community
            .entry(place)
            .or_insert_with(|| CommunityPopulation {
                code: place.to_string(),
                name: tongban_standards::division::by_code(place)
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
                ..CommunityPopulation::default()
            });
        if hukou.is_some() {
            entry.registered += 1;
        } else {
            entry.floating += 1;
        }
    }
    out.communities = by_community.into_values().collect();
    out
}

/// Whether a person's golden record says they died.
fn is_deceased(record: &Value) -> bool {
    let field = |name: &str| {
        record
            .pointer(&format!("/fields/{name}/value"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    field("household_status").contains("死亡") || !field("deceased_on").is_empty()
}

/// Read the libraries and count.
pub async fn population(store: &dyn Store) -> Result<Population> {
    const PAGE: i64 = 50_000;
    let mut community_of_building = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .golden_page("building", after.as_deref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.entity_key.clone());
        for g in page {
            let record: Value = serde_json::from_str(&g.record).unwrap_or_default();
            let community = record
                .get("community")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            community_of_building.insert(g.entity_key, community);
        }
    }
    let mut persons = Vec::new();
    let mut deceased = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.golden_page("person", after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.entity_key.clone());
        for g in page {
            let record: Value = serde_json::from_str(&g.record).unwrap_or_default();
            if is_deceased(&record) {
                deceased.insert(g.entity_key.clone());
            }
            persons.push(g.entity_key);
        }
    }
    let mut relations = Vec::new();
    let mut after: Option<Relation> = None;
    loop {
        let page = store.relations_page(after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.clone());
        relations.extend(page.into_iter().filter(|r| {
            matches!(
                r.relation.as_str(),
                "in_building" | "lives_in" | "rents" | "registered_in" | "located_at"
            )
        }));
    }
    Ok(count(
        &community_of_building,
        &persons,
        &deceased,
        &relations,
    ))
}

/// Where a place lies: the community a register puts it in, and the smallest division its
/// addresses name (a street, else a county). A place no register puts in a community (a
/// company's premises at a door number, 唯华路1092号) is still within its street, so that the
/// street's and the district's officials see it; a community's worker does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaceDivision {
    pub community: String,
    pub division: String,
}

/// Communities and divisions of places (rooms and buildings) already looked up, by place key.
/// Places keep them until the libraries are rebuilt, so a long-lived cache is worth keeping
/// beside a server (cleared now and then); a one-off lookup passes a fresh one.
pub type PlaceCommunities = std::sync::Mutex<HashMap<String, PlaceDivision>>;

fn cached(places: &PlaceCommunities, key: &str) -> Option<PlaceDivision> {
    places.lock().ok().and_then(|m| m.get(key).cloned())
}

fn remember(places: &PlaceCommunities, key: &str, place: &PlaceDivision) {
    if let Ok(mut m) = places.lock() {
        m.insert(key.to_string(), place.clone());
    }
}

/// The community a person lives in, as [`count`] places them: by their residence records,
/// else the room they rent, else where they are registered (the first found); where none of
/// those places is in a community, the division the first of them lies in.
pub async fn community_of(store: &dyn Store, person: &str) -> Result<Option<String>> {
    community_of_entity(store, "person", person, &PlaceCommunities::default()).await
}

/// The community and division of a building: its golden record's.
async fn building_place(
    store: &dyn Store,
    building: &str,
    places: &PlaceCommunities,
) -> Result<PlaceDivision> {
    if let Some(p) = cached(places, building) {
        return Ok(p);
    }
    let record = store
        .golden_record("building", building)
        .await?
        .and_then(|g| serde_json::from_str::<Value>(&g.record).ok());
    let text = |field: &str| {
        record
            .as_ref()
            .and_then(|r| r.get(field))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let p = PlaceDivision {
        community: text("community"),
        division: text("division"),
    };
    remember(places, building, &p);
    Ok(p)
}

/// The community of a room: its building's (the first that has one), else the division of the
/// first building that names one.
async fn room_place(
    store: &dyn Store,
    room: &str,
    places: &PlaceCommunities,
) -> Result<PlaceDivision> {
    if let Some(p) = cached(places, room) {
        return Ok(p);
    }
    let mut found = PlaceDivision::default();
    // A room's own relations go from it (to its building); those to it (its residents) are
    // many and not needed here.
    for b in store
        .relations_from(room)
        .await?
        .iter()
        .filter(|b| b.relation == "in_building" && b.from_key == room)
    {
        let p = building_place(store, &b.to_key, places).await?;
        if !p.community.is_empty() {
            found = p;
            break;
        }
        if found.division.is_empty() {
            found.division = p.division;
        }
    }
    remember(places, room, &found);
    Ok(found)
}

/// The community any library entity lies in: a person where they live (see [`community_of`]),
/// a company where its premises are, a room by its building, a building by its own record.
/// Where no register puts the place in a community, the division its address names (a street,
/// else a county) stands in, so that jurisdictions above the community still cover it.
/// `places` keeps the communities of the rooms and buildings looked up on the way.
pub async fn community_of_entity(
    store: &dyn Store,
    kind: &str,
    key: &str,
    places: &PlaceCommunities,
) -> Result<Option<String>> {
    // Only people and companies are placed by their own relations.
    let relations = match kind {
        "person" | "entity" => store.relations_from(key).await?,
        _ => Vec::new(),
    };
    community_from_relations(store, kind, key, &relations, places).await
}

/// [`community_of_entity`] for a person or company whose relations from it (as
/// [`Store::relations_from`] gives them) were read already, e.g. together with its golden
/// record; a room or building is looked up as there.
pub async fn community_from_relations(
    store: &dyn Store,
    kind: &str,
    key: &str,
    relations: &[Relation],
    places: &PlaceCommunities,
) -> Result<Option<String>> {
    let (order, is_room): (&[&str], bool) = match kind {
        "person" => (&["lives_in", "rents", "registered_in"], true),
        "entity" => (&["located_at"], false),
        "room" => return Ok(best(room_place(store, key, places).await?)),
        "building" => return Ok(best(building_place(store, key, places).await?)),
        _ => return Ok(None),
    };
    // The first place in a community decides; failing that, the first place's division.
    let mut division = String::new();
    for relation in order {
        for r in relations
            .iter()
            .filter(|r| r.relation == *relation && r.from_key == key)
        {
            let p = if is_room {
                room_place(store, &r.to_key, places).await?
            } else {
                building_place(store, &r.to_key, places).await?
            };
            if !p.community.is_empty() {
                return Ok(Some(p.community));
            }
            if division.is_empty() {
                division = p.division;
            }
        }
    }
    Ok((!division.is_empty()).then_some(division))
}

/// A place's community, else its division.
fn best(p: PlaceDivision) -> Option<String> {
    if !p.community.is_empty() {
        Some(p.community)
    } else if !p.division.is_empty() {
        Some(p.division)
    } else {
        None
    }
}

/// The generator's own figures per community, from `truth/persons.csv`: (registered, floating)
/// of the living, by the community where they live.
pub fn truth_by_community(truth_dir: &std::path::Path) -> Result<BTreeMap<String, (u64, u64)>> {
    let path = truth_dir.join("persons.csv");
    let err = |message: String| crate::LibraryError::Truth {
        file: path.display().to_string(),
        message,
    };
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| err(e.to_string()))?;
    let headers = rdr.headers().map_err(|e| err(e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| err(format!("no column {name:?}")))
    };
    let (floating, community, death) =
        (col("floating")?, col("community_code")?, col("death_date")?);
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (line, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| err(format!("line {}: {e}", line + 2)))?;
        if !row.get(death).unwrap_or("").is_empty() {
            continue;
        }
        let entry = out
            .entry(row.get(community).unwrap_or("").to_string())
            .or_default();
        if row.get(floating) == Some("1") {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(from: &str, relation: &str, to: &str) -> Relation {
        Relation {
            from_key: from.into(),
            relation: relation.into(),
            to_key: to.into(),
            source_id: "s".into(),
            record_key: "1".into(),
        }
    }

    #[test]
    fn people_count_where_they_live_as_registered_or_floating() {
        let buildings: HashMap<String, String> = [
            ("B1".to_string(), "320576052001".to_string()),
            ("B2".to_string(), "320576052002".to_string()),
        ]
        .into();
        let relations = vec![
            rel("R1", "in_building", "B1"),
            rel("R2", "in_building", "B2"),
            // Registered in R1 and living there.
            rel("Pa", "registered_in", "R1"),
            rel("Pa", "lives_in", "R1"),
            // Registered in R1 but living in R2: counts in R2, as registered.
            rel("Pb", "registered_in", "R1"),
            rel("Pb", "lives_in", "R2"),
            // Renting in R2, registered nowhere here: floating.
            rel("Pc", "rents", "R2"),
            // Registered only: counts where registered.
            rel("Pd", "registered_in", "R2"),
        ];
        let persons: Vec<String> = ["Pa", "Pb", "Pc", "Pd", "Pe", "Pf"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let deceased: HashSet<String> = ["Pf".to_string()].into();
        let p = count(&buildings, &persons, &deceased, &relations);
        let figures: Vec<(&str, u64, u64)> = p
            .communities
            .iter()
            .map(|c| (c.code.as_str(), c.registered, c.floating))
            .collect();
        assert_eq!(
            figures,
            vec![("320576052001", 1, 0), ("320576052002", 2, 1)]
        );
        assert_eq!((p.unplaced, p.deceased), (1, 1));
        assert_eq!((p.registered(), p.floating()), (3, 1));
    }
}
