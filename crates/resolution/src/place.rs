//! Rooms and buildings: every mention of a place, grouped by its canonical address key.
//!
//! A room is the same room when its canonical key (`county|compound|building|unit|room`, from the
//! standards library's address parser) is the same, however the address was written; a rental
//! contract's room code also names the housing register's room directly. Buildings group by the
//! first three parts of the key. No probabilities here: an address that parses to the same key is
//! the same place, one that does not parse to a room stays a place of its own. Pure functions.

use crate::cluster::{NO_TAG, UnionFind};
use crate::fields::Fields;
use crate::interned::{Text, intern};
use crate::person::RecordView;
use std::collections::HashMap;

/// One mention of a room (or, for the building register, of a building).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlaceMention {
    pub source: Text,
    pub record_key: Text,
    /// "subject" (the housing registers), "room" (a rental), "residence" or "registered" (where
    /// a person lives or is registered).
    pub role: Text,
    pub room_key: Text,
    pub building_key: Text,
    /// A code naming the housing register's room: that record's own key, or a rental's room code.
    pub room_code: Text,
    /// The community (division code) the record places it in, when it says.
    pub community: Text,
    /// The smallest division the address itself names: its street (街道/镇) when it says,
    /// else its county. A place that no register puts in a community (a company at a door
    /// number, 唯华路1092号) still lies within a street, and jurisdictions are drawn by it.
    pub division: Text,
}

impl PlaceMention {
    /// Whether the mention belongs in the room library. A company's premises name a building,
    /// never a room; the building register's own records (role "subject" without a room code:
    /// every room register record carries its key as its room code) name a building too. Left in,
    /// each building record became a room of its own without an address key (14,509 of them in
    /// the synthetic city of 1 M people).
    pub fn names_room(&self) -> bool {
        self.role != "premises" && !(self.role == "subject" && self.room_code.is_empty())
    }
}

/// The role, in the same record, of the person whose home a place mention tells of: a record's
/// subject, or for a rental's room its tenant (a tenant lives in the room they rent, and the
/// contract names it in full by the register's room code).
pub fn household_person_role(place_role: &str) -> &'static str {
    if place_role == "room" {
        "tenant"
    } else {
        "subject"
    }
}

/// A record's place in maps by record: its source's and key's interned numbers, eight bytes
/// where the two texts' references took thirty-two (there is an entry for every record naming a
/// person, four million in the synthetic city of 1 M people).
pub fn record_number(source: Text, record_key: Text) -> u64 {
    (u64::from(source.number()) << 32) | u64::from(record_key.number())
}

/// Whether a place mention says where its person (see [`household_person_role`]) lives: a
/// residence, a registered address or a rented room.
pub fn tells_home(place_role: &str) -> bool {
    matches!(place_role, "residence" | "registered" | "room")
}

/// Generic endings of compound names that clerks often leave out (华庭花园 written 华庭).
///
/// All of them are candidates when a name is written without one: with only four listed, 御苑
/// (for 御苑公寓) was taken for the only one of 御苑花园, 御苑新村 and 御苑家园 that has the room,
/// and the 3 M synthetic city merged rooms of different compounds.
const COMPOUND_ENDINGS: &[&str] = &[
    "花园", "小区", "家园", "新村", "公寓", "雅苑", "名邸", "佳园", "人家", "苑",
];

/// Whether `name` ends with a generic ending of two or more characters (御苑花园), and so is
/// written in full. A name ending in 苑 alone may be a name written without its ending (御苑 for
/// 御苑花园) as well as a full one.
pub fn written_in_full(name: &str) -> bool {
    COMPOUND_ENDINGS
        .iter()
        .any(|e| e.chars().count() > 1 && name.ends_with(e))
}

/// What is known about places from the mentions seen so far: the compound names of each county
/// and the room and building keys written (to resolve a compound written without its generic
/// ending) and the units in which each building has a room of a given number (to resolve an
/// address written without its unit). The batch run builds it from every mention; incremental
/// resolution adds one at a time.
#[derive(Debug, Default, Clone)]
pub struct PlaceContext {
    /// (county, compound) names seen.
    known: crate::FastSet<(&'static str, &'static str)>,
    /// Room and building keys seen, as written, by their interned texts' numbers.
    keys: crate::FastSet<u32>,
    /// (building key, room) → units seen with a unit written.
    units: HashMap<(String, String), Vec<String>>,
}

impl PlaceContext {
    pub fn from_mentions(mentions: &[PlaceMention]) -> PlaceContext {
        let mut ctx = PlaceContext::default();
        for m in mentions {
            ctx.add_names(m);
        }
        for m in mentions {
            ctx.add_units(m);
        }
        ctx
    }

    /// Learn the compound names and the keys a mention uses.
    pub fn add_names(&mut self, m: &PlaceMention) {
        // Keys are interned, so their parts live as long as the program and are kept by
        // reference (a copy of each name for every mention cost 2.7 s of the 1 M city's room
        // grouping).
        for key in [m.room_key, m.building_key] {
            let mut parts = key.as_str().split('|');
            if let (Some(county), Some(name), Some(_)) = (parts.next(), parts.next(), parts.next())
                && !name.is_empty()
            {
                self.known.insert((county, name));
                self.keys.insert(key.number());
            }
        }
    }

    /// Learn the unit a mention's room key gives, if it gives one. Returns whether it is the
    /// first unit known for its building and room number: the same room written without its
    /// unit then stands for this one.
    pub fn add_units(&mut self, m: &PlaceMention) -> bool {
        let parts: Vec<&str> = m.room_key.split('|').collect();
        if parts.len() == 5 && !parts[3].is_empty() {
            let building = &m.room_key[..m.room_key.len() - parts[3].len() - parts[4].len() - 2];
            let seen = self
                .units
                .entry((building.to_string(), parts[4].to_string()))
                .or_default();
            if !seen.iter().any(|u| u == parts[3]) {
                seen.push(parts[3].to_string());
                return seen.len() == 1;
            }
        }
        false
    }

    /// The key `parts` stand for with the compound written in full: the one known name that
    /// adds a generic ending to it, or, when several are known (华庭花园 and 华庭新村), the one
    /// of them in which the key itself (the same building, unit and room) was seen written in
    /// full. `None` when no name fits or the key fits several.
    fn full_key(&self, parts: &[&str]) -> Option<String> {
        let (county, name) = (parts[0], parts[1]);
        if name.is_empty() || written_in_full(name) {
            return None;
        }
        let mut names = self.full_names(county, name);
        let with = |full: &str| {
            let mut parts = parts.to_vec();
            parts[1] = full;
            parts.join("|")
        };
        let first = names.next()?;
        let Some(second) = names.next() else {
            return Some(with(&first));
        };
        let mut seen = [first, second]
            .into_iter()
            .chain(names)
            .map(|full| with(&full))
            // Interning the few keys asked about here (compounds written without their
            // ending) lets the set hold numbers, four bytes a key.
            .filter(|key| self.keys.contains(&intern(key).number()));
        match (seen.next(), seen.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// A key with its compound written in full, when exactly one known name fits (see
    /// [`PlaceContext::full_key`]).
    pub fn rewrite_key(&self, key: &mut Text) {
        let parts: Vec<&str> = key.split('|').collect();
        if parts.len() < 3 {
            return;
        }
        if let Some(full) = self.full_key(&parts) {
            *key = intern(&full);
        }
    }

    /// A mention's room and building keys with their compound written in full. The building
    /// follows the room: a room key that settles which of two compounds is meant (only one has
    /// that room) settles it for the building key too, where the building number alone may
    /// fit both.
    pub fn rewrite_place(&self, m: &mut PlaceMention) {
        let written = m.room_key;
        self.rewrite_key(&mut m.room_key);
        if m.room_key != written
            && let (Some(full), Some(short)) =
                (m.room_key.split('|').nth(1), written.split('|').nth(1))
        {
            let mut parts: Vec<&str> = m.building_key.split('|').collect();
            if parts.len() >= 3 && parts[1] == short {
                parts[1] = full;
                m.building_key = intern(&parts.join("|"));
                return;
            }
        }
        self.rewrite_key(&mut m.building_key);
    }

    /// Whether `key`, a full room key, names one room as it stands (its compound not one of
    /// several that its name could be): only such a key settles another mention.
    pub fn key_names_one_room(&self, key: Text) -> bool {
        let parts: Vec<&str> = key.split('|').collect();
        parts.len() == 5 && !parts[3].is_empty() && !self.ambiguous_compound(parts[0], parts[1])
    }

    /// The known compounds of `county` that `name` with a generic ending added is.
    fn full_names<'a>(
        &'a self,
        county: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = String> + 'a {
        COMPOUND_ENDINGS
            .iter()
            .map(move |e| format!("{name}{e}"))
            .filter(move |full| self.knows(county, full))
    }

    /// Whether the compound `name` is known in `county`.
    fn knows(&self, county: &str, name: &str) -> bool {
        // The set holds references that live for the program; a set is covariant in its
        // elements, so it can be asked about references that live less.
        let known: &crate::FastSet<(&str, &str)> = &self.known;
        known.contains(&(county, name))
    }

    /// Whether a compound name written without its generic ending could be several known
    /// compounds of the county (御湾 for 御湾花园 and 御湾新村). A key that
    /// [`PlaceContext::rewrite_key`] left with such a name names no room by itself.
    fn ambiguous_compound(&self, county: &str, name: &str) -> bool {
        !name.is_empty() && !written_in_full(name) && self.full_names(county, name).nth(1).is_some()
    }

    /// The room key a mention stands for (see [`effective_room_keys`]).
    pub fn effective_room_key(&self, m: &PlaceMention) -> Option<Text> {
        let parts: Vec<&str> = m.room_key.split('|').collect();
        if m.room_key.is_empty()
            || (parts.len() == 5 && self.ambiguous_compound(parts[0], parts[1]))
        {
            return None;
        }
        if parts.len() != 5 || !parts[3].is_empty() {
            return Some(m.room_key);
        }
        let building = &m.room_key[..m.room_key.len() - parts[4].len() - 2];
        match self
            .units
            .get(&(building.to_string(), parts[4].to_string()))
            .map(Vec::as_slice)
        {
            None | Some([]) => Some(m.room_key),
            Some([unit]) => Some(intern(&format!("{building}|{unit}|{}", parts[4]))),
            Some(_) => None,
        }
    }
}

/// A room key's five parts (county, compound, building, unit, room), `None` for a key of
/// another shape (a building key, the empty key).
pub fn room_key_parts(key: &str) -> Option<[&str; 5]> {
    let mut parts = key.split('|');
    let five = [
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    ];
    parts.next().is_none().then_some(five)
}

/// The room key an address that names no room by itself (its unit left out, or its compound
/// written without the generic ending that tells two compounds apart) takes from household
/// context: the one hint (a full room key where the person lives by their other records) with
/// the same county, building and room number, the same unit where one is written, and the same
/// compound or the compound the written name stands for with an ending, if exactly one fits.
/// Hints that do not name one room by themselves (`ctx`'s [`PlaceContext::key_names_one_room`])
/// are left out first.
pub fn room_key_from_hints(ctx: &PlaceContext, m: &PlaceMention, hints: &[Text]) -> Option<Text> {
    let [county, compound, building, unit, room] = room_key_parts(m.room_key.as_str())?;
    let fits = |h: &Text| {
        let Some([h_county, h_compound, h_building, h_unit, h_room]) = room_key_parts(h.as_str())
        else {
            return false;
        };
        h_county == county
            && h_building == building
            && h_room == room
            && !h_unit.is_empty()
            && (unit.is_empty() || h_unit == unit)
            && (h_compound == compound
                || COMPOUND_ENDINGS
                    .iter()
                    .any(|e| h_compound.strip_suffix(e) == Some(compound)))
    };
    let mut matching = hints
        .iter()
        .copied()
        .filter(|h| ctx.key_names_one_room(*h))
        .filter(fits);
    match (matching.next(), matching.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Gives a compound written without its generic ending the full name it stands for. Within a
/// county, a compound name that has no such ending (华庭) becomes the one known name that adds an
/// ending to it (华庭花园), if exactly one is known among all mentions. With several (华庭花园
/// and 华庭小区) it becomes the one in which the same room (or, for a building key, the same
/// building) is known written in full, if only one has it; otherwise it is ambiguous and stays
/// as written, so two compounds are never merged. (In the synthetic city of 1 M people every
/// compound name had a namesake with the other ending, and 18,388 rooms written without it were
/// rooms of their own; 14,165 of them exist in only one of the two.)
pub fn resolve_compound_aliases(mentions: &mut [PlaceMention]) {
    let mut ctx = PlaceContext::default();
    for m in mentions.iter() {
        ctx.add_names(m);
    }
    for m in mentions.iter_mut() {
        ctx.rewrite_place(m);
    }
}

fn keys(r: &RecordView, field: &str) -> (Text, Text) {
    let Some(obj) = r.cleaned.object(field) else {
        return (Text::EMPTY, Text::EMPTY);
    };
    let get = |k: &str| intern(&obj.text(k));
    (get("room_key"), get("building_key"))
}

/// The code of an address's division at `level`: written alone (`"county":"320576"`, the lean
/// form intake stores now) or as an object with its name (`{"code":"320576","name":…}`, the form
/// of records stored before); "" when the address names none.
pub fn division_code(address: &Fields, level: &str) -> String {
    let flat = address.text(level);
    if !flat.is_empty() {
        return flat.into_owned();
    }
    address
        .object(level)
        .map(|d| d.text("code").into_owned())
        .unwrap_or_default()
}

/// The smallest division an address field names: its street, else its county ("" when it
/// names neither).
fn address_division(r: &RecordView, field: &str) -> String {
    let Some(obj) = r.cleaned.object(field) else {
        return String::new();
    };
    let street = division_code(obj, "street");
    if street.is_empty() {
        division_code(obj, "county")
    } else {
        street
    }
}

/// The key of premises known only by road and door number (唯华路1092号): a company's registered
/// address often names no compound or building, yet the door number is a place of its own. It
/// takes the compound's place in the building key (county|road+number|), so it never collides
/// with a compound's building.
pub fn door_key(r: &RecordView, field: &str) -> String {
    let Some(obj) = r.cleaned.object(field) else {
        return String::new();
    };
    let county = division_code(obj, "county");
    let (road, number) = (obj.text("road"), obj.text("road_number"));
    if county.is_empty() || road.is_empty() || number.is_empty() {
        return String::new();
    }
    format!("{county}|{road}{number}号|")
}

/// The place mentions of one record.
pub fn mentions(r: &RecordView) -> Vec<PlaceMention> {
    let text = |f: &str| intern(&r.cleaned.text(f));
    let mut out = Vec::new();
    let community = text("community");
    let mut push = |role: Text, field: &str, room_code: Text| {
        let (room_key, building_key) = keys(r, field);
        if r.cleaned.contains(field) || !room_code.is_empty() {
            out.push(PlaceMention {
                source: intern(r.source),
                record_key: intern(r.key),
                role,
                room_key,
                building_key,
                room_code,
                community,
                division: intern(&address_division(r, field)),
            });
        }
    };
    match r.subject {
        "room" => push(intern("subject"), "address", intern(r.key)),
        "building" => push(intern("subject"), "address", Text::EMPTY),
        // A company's premises: the building its address names, else its door number. They
        // place the company in the building library, not in a room.
        "entity" if r.cleaned.contains("address") => {
            let (_, building_key) = keys(r, "address");
            let building_key = if building_key.is_empty() {
                intern(&door_key(r, "address"))
            } else {
                building_key
            };
            if !building_key.is_empty() {
                out.push(PlaceMention {
                    source: intern(r.source),
                    record_key: intern(r.key),
                    role: intern("premises"),
                    building_key,
                    community,
                    division: intern(&address_division(r, "address")),
                    ..PlaceMention::default()
                });
            }
        }
        "relation" if r.cleaned.contains("room_code") => {
            push(intern("room"), "address", text("room_code"))
        }
        "person" => {
            push(intern("residence"), "residence_address", Text::EMPTY);
            if r.source == "police_household" {
                push(intern("registered"), "registered_address", Text::EMPTY);
            }
        }
        _ => {}
    }
    out
}

/// The room key a mention stands for. An address that leaves out the unit (12幢1102室 in a
/// building with three units) names a room only if the building has one room of that number
/// among the keys that do give a unit; with several it is ambiguous and stands for no key, so it
/// neither merges rooms of different units nor joins the wrong one. In a building without units
/// the key without a unit is the room's own. Likewise a compound written without its generic
/// ending that could be two known compounds (left so by [`resolve_compound_aliases`]) names no
/// room.
pub fn effective_room_keys(mentions: &[PlaceMention]) -> Vec<Option<Text>> {
    let ctx = PlaceContext::from_mentions(mentions);
    mentions.iter().map(|m| ctx.effective_room_key(m)).collect()
}

/// Rooms: mentions with the same room key or room code are one room (see
/// [`effective_room_keys`] for addresses without a unit). `hints[i]`, when given, is a full room
/// key that mention i's person lives in according to their other records (household context):
/// an address without its unit, or with an ambiguous compound name, that matches the hint's
/// building and room number takes the hint's key (see [`room_key_from_hints`]). Returns a label
/// per mention; mentions that name no room get labels of their own.
pub fn cluster_rooms_with(
    mentions: &[PlaceMention],
    hints: &[Vec<Text>],
) -> (Vec<u32>, Vec<Option<Text>>) {
    cluster_rooms_in(&PlaceContext::from_mentions(mentions), mentions, hints)
}

/// [`cluster_rooms_with`] under a context learnt from more mentions than those grouped: the
/// batch run groups only the mentions that name rooms, but learns compound names from every
/// place mention (premises and building records too), as incremental resolution does.
pub fn cluster_rooms_in(
    ctx: &PlaceContext,
    mentions: &[PlaceMention],
    hints: &[Vec<Text>],
) -> (Vec<u32>, Vec<Option<Text>>) {
    let mut keys: Vec<Option<Text>> = mentions.iter().map(|m| ctx.effective_room_key(m)).collect();
    for (i, m) in mentions.iter().enumerate() {
        if keys[i].is_some() || m.room_key.is_empty() {
            continue;
        }
        if let Some(hinted) = hints.get(i).and_then(|h| room_key_from_hints(ctx, m, h)) {
            keys[i] = Some(hinted);
        }
    }
    let mut uf = UnionFind::new(vec![NO_TAG; mentions.len()]);
    let mut by_key: HashMap<Text, u32> = HashMap::new();
    let mut by_code: HashMap<Text, u32> = HashMap::new();
    for (i, (m, key)) in mentions.iter().zip(&keys).enumerate() {
        let i = i as u32;
        if let Some(k) = key {
            let first = *by_key.entry(*k).or_insert(i);
            uf.union(first, i);
        }
        if !m.room_code.is_empty() {
            let first = *by_code.entry(m.room_code).or_insert(i);
            uf.union(first, i);
        }
    }
    (uf.labels(), keys)
}

/// [`cluster_rooms_with`] without household context.
pub fn cluster_rooms(mentions: &[PlaceMention]) -> Vec<u32> {
    cluster_rooms_with(mentions, &[]).0
}

/// Buildings: the building register's records and every room mention, by building key.
pub fn cluster_buildings(mentions: &[PlaceMention]) -> Vec<u32> {
    let mut uf = UnionFind::new(vec![NO_TAG; mentions.len()]);
    let mut by_key: HashMap<Text, u32> = HashMap::new();
    for (i, m) in mentions.iter().enumerate() {
        if !m.building_key.is_empty() {
            let first = *by_key.entry(m.building_key).or_insert(i as u32);
            uf.union(first, i as u32);
        }
    }
    uf.labels()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view<'a>(
        source: &'a str,
        subject: &'a str,
        key: &'a str,
        cleaned: &'a crate::fields::Fields<'a>,
    ) -> RecordView<'a> {
        RecordView {
            source,
            subject,
            key,
            cleaned,
            invalid: &[],
        }
    }

    #[test]
    fn a_door_number_is_read_from_either_stored_form_of_an_address() {
        let lean = json!({"address": {"province": "32", "city": "3205", "county": "320576", "street": "320576052", "road": "唯华路", "road_number": "1092"}, "name": "苏州唯华科技有限公司"});
        let first = json!({"address": {"province": {"code": "32", "name": "江苏省"}, "city": {"code": "3205", "name": "苏州市"}, "county": {"code": "320576", "name": "苏州工业园区"}, "street": null, "community": null, "road": "唯华路", "road_number": "1092", "compound": null, "building": null, "unit": null, "floor": null, "room": null, "rest": "", "room_key": null, "text": "苏州工业园区唯华路1092号", "building_key": null}, "name": "苏州唯华科技有限公司"});
        let texts = [lean, first].map(|v| v.to_string());
        for text in &texts {
            let fields = crate::fields::Fields::parse(text);
            let m = mentions(&view("market_entities", "entity", "E1", &fields));
            assert_eq!(m.len(), 1, "{text}");
            assert_eq!(m[0].building_key.as_str(), "320576|唯华路1092号|", "{text}");
            // The company's entity mention has the door number for its address, and its
            // premises lie in the street the address names, else in its county.
            let e = crate::entity::mentions(&view("market_entities", "entity", "E1", &fields));
            assert_eq!(e[0].address.as_str(), "320576|唯华路1092号|", "{text}");
        }
        let divisions: Vec<String> = texts
            .iter()
            .map(|t| {
                let fields = crate::fields::Fields::parse(t);
                mentions(&view("market_entities", "entity", "E1", &fields))[0]
                    .division
                    .as_str()
                    .to_string()
            })
            .collect();
        assert_eq!(divisions, ["320576052", "320576"]);
        let no_county = json!({"address": {"road": "唯华路", "road_number": "1092"}}).to_string();
        let fields = crate::fields::Fields::parse(&no_county);
        assert!(mentions(&view("market_entities", "entity", "E1", &fields)).is_empty());
    }

    #[test]
    fn same_key_or_code_is_one_room() {
        let room = json!({"address": {"room_key": "320576|青剑湖花园|12|3|1001", "building_key": "320576|青剑湖花园|12"}});
        let rental =
            json!({"room_code": "H1", "address": {"building_key": "320576|青剑湖花园|12"}});
        let resident = json!({"residence_address": {"room_key": "320576|青剑湖花园|12|3|1001", "building_key": "320576|青剑湖花园|12"}});
        let other = json!({"residence_address": {"room_key": "320576|青剑湖花园|12|3|502", "building_key": "320576|青剑湖花园|12"}});
        let texts = [room, rental, resident, other].map(|v| v.to_string());
        let [a, b, c, d] = [0, 1, 2, 3].map(|i| crate::fields::Fields::parse(&texts[i]));
        let mut m = mentions(&view("housing_rooms", "room", "H1", &a));
        m.extend(mentions(&view("housing_rentals", "relation", "Z1", &b)));
        m.extend(mentions(&view("grid_collection", "person", "G1", &c)));
        m.extend(mentions(&view("grid_collection", "person", "G2", &d)));
        assert_eq!(m.len(), 4);
        let rooms = cluster_rooms(&m);
        assert_eq!(rooms, vec![0, 0, 0, 3]);
        let buildings = cluster_buildings(&m);
        assert!(buildings.iter().all(|&b| b == 0));
    }

    #[test]
    fn an_address_without_its_unit_joins_the_only_room_of_that_number_or_none() {
        let m = |key: &str| PlaceMention {
            room_key: intern(key),
            ..PlaceMention::default()
        };
        let mentions = vec![
            m("320576|花园|12|3|1001"),
            m("320576|花园|12||1001"),
            m("320576|花园|7|1|502"),
            m("320576|花园|7|2|502"),
            m("320576|花园|7||502"),
            m("320576|花园|7||502"),
            m("320576|大厦|||1808"),
            m("320576|大厦|||1808"),
        ];
        let rooms = cluster_rooms(&mentions);
        assert_eq!(
            rooms[1], rooms[0],
            "the only 1001 in building 12 is in unit 3"
        );
        assert_ne!(rooms[4], rooms[2]);
        assert_ne!(rooms[4], rooms[3]);
        assert_ne!(
            rooms[4], rooms[5],
            "ambiguous rooms are not merged with each other either"
        );
        assert_eq!(
            rooms[6], rooms[7],
            "a tower without units or building numbers keeps its key"
        );
        // Household context: the person behind mention 4 is registered in unit 2.
        let mut hints = vec![Vec::new(); mentions.len()];
        hints[4] = vec![intern("320576|花园|7|2|502")];
        let (rooms, _) = cluster_rooms_with(&mentions, &hints);
        assert_eq!(rooms[4], rooms[3]);
        assert_ne!(rooms[5], rooms[3]);
    }

    #[test]
    fn a_room_key_has_five_parts() {
        assert_eq!(
            room_key_parts("320576|花园|7||502"),
            Some(["320576", "花园", "7", "", "502"])
        );
        assert_eq!(room_key_parts("320576|花园|7"), None);
        assert_eq!(room_key_parts("320576|花园|7|1|502|x"), None);
        assert_eq!(room_key_parts(""), None);
    }

    #[test]
    fn an_ambiguous_compound_names_no_room_unless_the_household_says_which() {
        let m = |key: &str| PlaceMention {
            room_key: intern(key),
            ..PlaceMention::default()
        };
        let mentions = vec![
            m("320576|御湾花园|9|1|101"),
            m("320576|御湾新村|9|1|101"),
            m("320576|御湾|9|1|101"),
            m("320576|御湾|9|1|101"),
            m("320576|御湾|9||101"),
            m("320576|御湾|9|1|101"),
        ];
        let keys = effective_room_keys(&mentions);
        assert_eq!(keys[2], None, "the garden or the new village");
        assert_eq!(keys[4], None);
        let mut hints = vec![Vec::new(); mentions.len()];
        hints[3] = vec![intern("320576|御湾新村|9|1|101")];
        hints[4] = vec![intern("320576|御湾花园|9|1|101")];
        // A hint that is itself ambiguous settles nothing.
        hints[5] = vec![intern("320576|御湾|9|1|101")];
        let (rooms, keys) = cluster_rooms_with(&mentions, &hints);
        assert_ne!(rooms[2], rooms[0]);
        assert_ne!(rooms[2], rooms[1]);
        assert_ne!(rooms[2], rooms[5], "ambiguous mentions stay apart");
        assert_eq!(rooms[3], rooms[1]);
        assert_eq!(rooms[4], rooms[0], "without its unit too");
        assert_eq!(keys[5], None);
    }

    #[test]
    fn a_generic_compound_ending_left_out_is_the_same_place_unless_ambiguous() {
        let m = |key: &str| PlaceMention {
            room_key: intern(key),
            ..PlaceMention::default()
        };
        let mut mentions = vec![
            m("320576|华庭花园|7|3|402"),
            m("320576|华庭|7|3|402"),
            m("320576|金湖花园|1|1|101"),
            m("320576|金湖小区|1|1|101"),
            m("320576|金湖|1|1|101"),
            m("320581|华庭|7|3|402"),
        ];
        resolve_compound_aliases(&mut mentions);
        assert_eq!(mentions[1].room_key, "320576|华庭花园|7|3|402");
        assert_eq!(
            mentions[4].room_key, "320576|金湖|1|1|101",
            "two compounds could be meant"
        );
        assert_eq!(mentions[3].room_key, "320576|金湖小区|1|1|101");
        assert_eq!(
            mentions[5].room_key, "320581|华庭|7|3|402",
            "another county"
        );
    }

    #[test]
    fn of_two_compounds_the_one_that_has_the_room_is_meant() {
        let m = |room: &str, building: &str| PlaceMention {
            room_key: intern(room),
            building_key: intern(building),
            ..PlaceMention::default()
        };
        let mut mentions = vec![
            m("320576|御湾花园|24|2|102", "320576|御湾花园|24"),
            m("320576|御湾新村|24|1|102", "320576|御湾新村|24"),
            m("320576|御湾新村|9|1|101", "320576|御湾新村|9"),
            m("320576|御湾花园|9|1|101", "320576|御湾花园|9"),
            // Only the garden has unit 2 of building 24: the garden, building and room.
            m("320576|御湾|24|2|102", "320576|御湾|24"),
            // Both have room 101 in unit 1 of building 9: ambiguous.
            m("320576|御湾|9|1|101", "320576|御湾|9"),
            // A building alone that both have: ambiguous too.
            m("", "320576|御湾|9"),
        ];
        resolve_compound_aliases(&mut mentions);
        // Every generic ending is a candidate, a name ending in 苑 among those written short.
        let mut more = vec![
            m("320576|御苑花园|24|2|501", "320576|御苑花园|24"),
            m("320576|御苑新村|3|1|101", "320576|御苑新村|3"),
            m("320576|御苑公寓|24|2|501", "320576|御苑公寓|24"),
            m("320576|御苑|24|2|501", "320576|御苑|24"),
            m("320576|御苑|3|1|101", "320576|御苑|3"),
        ];
        resolve_compound_aliases(&mut more);
        assert_eq!(
            more[3].room_key, "320576|御苑|24|2|501",
            "the garden or the flats"
        );
        assert_eq!(more[4].room_key, "320576|御苑新村|3|1|101");
        assert_eq!(mentions[4].room_key, "320576|御湾花园|24|2|102");
        assert_eq!(mentions[4].building_key, "320576|御湾花园|24");
        assert_eq!(mentions[5].room_key, "320576|御湾|9|1|101");
        assert_eq!(mentions[5].building_key, "320576|御湾|9");
        assert_eq!(mentions[6].building_key, "320576|御湾|9");
    }
}
