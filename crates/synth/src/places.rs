//! The built environment of the synthetic street: communities, compounds, buildings and rooms.
//!
//! Communities are the street's real community committees from the division table. Each community
//! gets a contiguous range of household slots, in proportion to a size drawn per community, and
//! as many compounds (小区) as its rooms need; a compound has numbered buildings (幢) with units
//! (单元), floors and two rooms a floor. Household slot `k` of a community lives in that
//! community's room `k`, so a household's home is a pure function of its index, and regenerating
//! any household anywhere gives the same room.
//!
//! This module knows nothing of people; it only lays out where they can live and how the address
//! of a room is written in standard form.

use crate::rng::{Rng, Stream};
use tongban_standards::division::{self, Division};

/// Syllables that compound names are made of; a compound's name is one of each plus a suffix,
/// chosen by its global index so that no two compounds of the street share a name.
const NAME_A: &[&str] = &[
    "青", "澄", "星", "湖", "东", "亭", "金", "翠", "锦", "瑞", "华", "新", "景", "玉", "阳", "云",
    "枫", "兰", "嘉", "和", "清", "御", "丰", "苏",
];
const NAME_B: &[&str] = &[
    "剑湖", "湾", "华", "光", "韵", "苑", "庭", "桥", "悦", "江", "澜", "城", "林", "泉", "园",
    "湖湾", "都", "涛", "晖", "湾里",
];
const SUFFIX: &[&str] = &[
    "花园", "新村", "家园", "苑", "公寓", "雅苑", "名邸", "小区", "人家", "佳园",
];
const ROADS: &[&str] = &[
    "星华街",
    "唯新路",
    "亭融街",
    "金陵东路",
    "青剑路",
    "葑亭大道",
    "春辉路",
    "澄湖路",
    "阳澄湖大道",
    "东亭路",
    "唯华路",
    "通园路",
    "民生路",
    "方洲路",
    "双马街",
];

/// One residential compound (小区) with its buildings.
#[derive(Clone, Debug)]
pub struct Compound {
    pub name: String,
    pub road: &'static str,
    pub road_number: u32,
    pub buildings: u32,
    pub units: u32,
    pub floors: u32,
    pub built_year: i32,
    /// The community room index of this compound's first room.
    pub first_room: u64,
}

impl Compound {
    /// Rooms per building: every unit has two rooms a floor.
    pub fn rooms_per_building(&self) -> u64 {
        u64::from(self.units * self.floors * 2)
    }

    pub fn rooms(&self) -> u64 {
        self.rooms_per_building() * u64::from(self.buildings)
    }
}

/// One community committee (社区) and its household slots and compounds.
#[derive(Clone, Debug)]
pub struct Community {
    pub index: usize,
    pub code: String,
    pub name: String,
    pub short: String,
    pub first_household: u64,
    pub households: u64,
    pub compounds: Vec<Compound>,
}

/// A room: the community, compound, building, unit, floor and the room number on the door.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoomRef {
    pub community: u16,
    pub compound: u32,
    pub building: u32,
    pub unit: u32,
    pub floor: u32,
    /// 101, 102, 1201…: the floor followed by the room's position on it.
    pub number: u32,
}

/// The street and everything built in it.
#[derive(Clone, Debug)]
pub struct Street {
    pub code: String,
    pub name: String,
    pub county: &'static Division,
    pub city: &'static Division,
    pub province: &'static Division,
    pub communities: Vec<Community>,
    pub households: u64,
}

/// Why a street cannot be laid out.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("street code {0} is not in the shipped division table (only Jiangsu's streets are)")]
    UnknownStreet(String),
    #[error("street {0} has no community committees in the shipped table (only Suzhou's are)")]
    NoCommunities(String),
}

impl Street {
    /// Lays out `street` for `households` households under `seed`.
    pub fn layout(seed: u64, street: &str, households: u64) -> Result<Street, PlaceError> {
        let d = division::by_code(street)
            .ok_or_else(|| PlaceError::UnknownStreet(street.to_string()))?;
        let chain = division::ancestors(&d.code);
        let (Some(province), Some(city), Some(county)) =
            (chain.first(), chain.get(1), chain.get(2))
        else {
            return Err(PlaceError::UnknownStreet(street.to_string()));
        };
        let kids = division::children(&d.code);
        if kids.is_empty() {
            return Err(PlaceError::NoCommunities(street.to_string()));
        }
        // Community sizes differ by a factor of up to four, as real ones do.
        let weights: Vec<f64> = (0..kids.len())
            .map(|i| 0.5 + 1.5 * Rng::for_item(seed, Stream::Building, i as u64).unit())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut communities = Vec::with_capacity(kids.len());
        let mut start = 0u64;
        let mut compound_counter = 0usize;
        for (i, k) in kids.iter().enumerate() {
            let share = if i + 1 == kids.len() {
                households - start
            } else {
                ((households as f64) * weights[i] / total).round() as u64
            }
            .min(households - start);
            // Rooms beyond the households' own serve people registered in one room but living in
            // another (人户分离) and leave some vacant, as in any real street.
            let needed_rooms = share * 2 + 16;
            let mut compounds = Vec::new();
            let mut rooms = 0u64;
            while rooms < needed_rooms {
                let mut r =
                    Rng::for_item(seed, Stream::Building, 1_000_000 + compound_counter as u64);
                let g = compound_counter;
                let name = format!(
                    "{}{}{}",
                    NAME_A[g % NAME_A.len()],
                    NAME_B[(g / NAME_A.len()) % NAME_B.len()],
                    SUFFIX[(g / (NAME_A.len() * NAME_B.len())) % SUFFIX.len()]
                );
                // Past 4,800 compounds (streets of millions) the syllables repeat; a phase number
                // keeps names unique, as 一期/二期 do in real estates.
                let phase = g / (NAME_A.len() * NAME_B.len() * SUFFIX.len());
                let name = if phase > 0 {
                    format!("{name}{}期", phase + 1)
                } else {
                    name
                };
                let c = Compound {
                    name,
                    road: ROADS[r.below(ROADS.len() as u64) as usize],
                    road_number: 1 + r.below(600) as u32,
                    buildings: 6 + r.below(30) as u32,
                    units: 1 + r.below(4) as u32,
                    floors: [6, 6, 11, 18, 26][r.below(5) as usize],
                    built_year: 1995 + r.below(30) as i32,
                    first_room: rooms,
                };
                rooms += c.rooms();
                compounds.push(c);
                compound_counter += 1;
            }
            communities.push(Community {
                index: i,
                code: k.code.clone(),
                name: k.name.clone(),
                short: k.short.clone(),
                first_household: start,
                households: share,
                compounds,
            });
            start += share;
        }
        Ok(Street {
            code: d.code.clone(),
            name: d.name.clone(),
            county,
            city,
            province,
            communities,
            households,
        })
    }

    /// The street's short name (唯亭 for 唯亭街道).
    pub fn short(&self) -> &str {
        tongban_standards::division::short_name(&self.name)
    }

    /// The shortest name people use for the county (园区 for 苏州工业园区).
    pub fn county_alias(&self) -> String {
        let mut names: Vec<&str> = division::registry()
            .all()
            .iter()
            .filter(|d| d.code == self.county.code)
            .map(|d| d.short.as_str())
            .collect();
        names.extend(
            ["园区", "工业园区", "新区", "高新区"]
                .into_iter()
                .filter(|a| {
                    division::by_name(a)
                        .iter()
                        .any(|d| d.code == self.county.code)
                }),
        );
        names
            .into_iter()
            .min_by_key(|n| n.chars().count())
            .unwrap_or(&self.county.name)
            .to_string()
    }

    /// The community a household slot belongs to.
    pub fn community_of(&self, household: u64) -> &Community {
        let i = self
            .communities
            .partition_point(|c| c.first_household + c.households <= household)
            .min(self.communities.len() - 1);
        &self.communities[i]
    }

    /// Room `k` of community `c` (k counts rooms across the community's compounds in order).
    pub fn room(&self, community: usize, k: u64) -> RoomRef {
        let c = &self.communities[community];
        let ci = c
            .compounds
            .partition_point(|x| x.first_room + x.rooms() <= k)
            .min(c.compounds.len() - 1);
        let comp = &c.compounds[ci];
        let within = (k - comp.first_room) % comp.rooms().max(1);
        let per_building = comp.rooms_per_building().max(1);
        let building = within / per_building;
        let in_building = within % per_building;
        let per_unit = u64::from(comp.floors * 2);
        let unit = in_building / per_unit;
        let in_unit = in_building % per_unit;
        let floor = in_unit / 2 + 1;
        let pos = in_unit % 2 + 1;
        RoomRef {
            community: community as u16,
            compound: ci as u32,
            building: building as u32 + 1,
            unit: unit as u32 + 1,
            floor: floor as u32,
            number: (floor * 100 + pos) as u32,
        }
    }

    pub fn compound(&self, r: &RoomRef) -> &Compound {
        &self.communities[r.community as usize].compounds[r.compound as usize]
    }

    /// The full standard address of a room, as the housing department writes it:
    /// 江苏省苏州市苏州工业园区唯亭街道青剑湖花园12幢3单元1201室.
    pub fn room_address(&self, r: &RoomRef) -> String {
        format!(
            "{}{}{}{}{}{}幢{}单元{}室",
            self.province.name,
            self.city.name,
            self.county.name,
            self.name,
            self.compound(r).name,
            r.building,
            r.unit,
            r.number
        )
    }

    /// The standard address of a building.
    pub fn building_address(&self, community: usize, compound: usize, building: u32) -> String {
        let c = &self.communities[community].compounds[compound];
        format!(
            "{}{}{}{}{}{}号{}{}幢",
            self.province.name,
            self.city.name,
            self.county.name,
            self.name,
            c.road,
            c.road_number,
            c.name,
            building
        )
    }

    /// The truth key of a room, stable across runs: community code, compound, building, unit, room.
    pub fn room_key(&self, r: &RoomRef) -> String {
        format!(
            "R{}-{}-{}-{}-{}",
            self.communities[r.community as usize].code, r.compound, r.building, r.unit, r.number
        )
    }

    /// The truth key of a building.
    pub fn building_key(&self, community: usize, compound: u32, building: u32) -> String {
        format!(
            "B{}-{}-{}",
            self.communities[community].code, compound, building
        )
    }

    /// The 15-digit unit grid code (6 county + 3 street + 3 community + 3 grid) of a room: one grid
    /// per compound, as grid workers are usually assigned.
    pub fn grid_code(&self, r: &RoomRef) -> String {
        format!(
            "{}{:03}",
            self.communities[r.community as usize].code,
            (r.compound % 999) + 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weiting_lays_out_all_households_in_distinct_rooms() {
        let s = Street::layout(1, "320576052", 10_000).expect("layout");
        assert_eq!(s.communities.len(), 35);
        assert_eq!(
            s.communities.iter().map(|c| c.households).sum::<u64>(),
            10_000
        );
        let mut seen = std::collections::HashSet::new();
        for c in &s.communities {
            for k in 0..c.households * 2 {
                let r = s.room(c.index, k);
                assert!(
                    seen.insert(s.room_key(&r)),
                    "room {k} of {} repeats",
                    c.code
                );
            }
        }
        let last = s.community_of(9_999);
        assert_eq!(last.index, 34);
        assert_eq!(s.community_of(0).index, 0);
        let addr = s.room_address(&s.room(0, 0));
        assert!(
            addr.starts_with("江苏省苏州市苏州工业园区唯亭街道"),
            "{addr}"
        );
        assert!(addr.ends_with("1幢1单元101室"), "{addr}");
    }

    #[test]
    fn unknown_streets_are_errors() {
        assert!(matches!(
            Street::layout(1, "110101001", 10),
            Err(PlaceError::UnknownStreet(_))
        ));
    }
}
