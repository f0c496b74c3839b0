//! 住建: buildings, rooms with their owners, and rental contracts.
//!
//! The housing system keys buildings and rooms by its own codes (楼栋编码, 房屋编码) and writes
//! addresses in full standard form. Rooms appear once an owner is registered for them; a floating
//! household's room belongs to a resident landlord of the same block of households, and their
//! current rental contract (renewed every one to three years since they moved in) is filed here.
//! A room's owner is its household's first living adult.
//!
//! Commercial premises and vacant rooms without a registered owner are not exported.

use super::{DateStyle, Out, Sink, ymd};
use crate::places::RoomRef;
use crate::rng::Rng;
use crate::world::{Household, Person, World, add_years};
use chrono::Duration;

pub const BUILDING_HEADER: &[&str] = &[
    "楼栋编码",
    "小区名称",
    "幢号",
    "坐落",
    "单元数",
    "层数",
    "建成年份",
];
pub const ROOM_HEADER: &[&str] = &[
    "房屋编码",
    "楼栋编码",
    "坐落",
    "单元",
    "室号",
    "建筑面积",
    "产权人",
    "产权人证件号码",
];
pub const RENTAL_HEADER: &[&str] = &[
    "合同编号",
    "房屋编码",
    "房屋坐落",
    "出租人",
    "出租人证件号码",
    "承租人",
    "承租人证件号码",
    "承租人电话",
    "起租日期",
    "止租日期",
    "月租金",
];

pub fn building_code(world: &World, community: usize, compound: u32, building: u32) -> String {
    format!(
        "{}{compound:04}{building:03}",
        world.street.communities[community].code
    )
}

pub fn room_code(world: &World, r: &RoomRef) -> String {
    format!(
        "{}{:02}{:04}",
        building_code(world, r.community as usize, r.compound, r.building),
        r.unit,
        r.number
    )
}

/// Every building of the street, with its truth row.
pub fn render_buildings(world: &World, out: &mut Out) {
    for c in &world.street.communities {
        for (ci, comp) in c.compounds.iter().enumerate() {
            for b in 1..=comp.buildings {
                let code = building_code(world, c.index, ci as u32, b);
                let address = world.street.building_address(c.index, ci, b);
                let key = world.street.building_key(c.index, ci as u32, b);
                out.csv(
                    Sink::HousingBuildings,
                    &[
                        &code,
                        &comp.name,
                        &b.to_string(),
                        &address,
                        &comp.units.to_string(),
                        &comp.floors.to_string(),
                        &comp.built_year.to_string(),
                    ],
                );
                out.truth(Sink::HousingBuildings, &code, "subject", &key, &[]);
                out.csv(
                    Sink::TruthBuildings,
                    &[
                        &key,
                        &c.code,
                        &comp.name,
                        &b.to_string(),
                        &address,
                        &comp.units.to_string(),
                        &comp.floors.to_string(),
                    ],
                );
            }
        }
    }
}

/// The household member registered as owner: the first adult alive on the export date, or the
/// head if there is none (registers lag behind deaths).
pub fn owner(world: &World, hh: &Household) -> Option<usize> {
    let as_of = world.config.as_of;
    hh.members
        .iter()
        .position(|p| p.alive_on(as_of) && p.age_on(as_of) >= 18)
        .or(if hh.members.is_empty() { None } else { Some(0) })
}

fn room_row(world: &World, room: &RoomRef, owner: &Person, out: &mut Out, r: &mut Rng) {
    let code = room_code(world, room);
    let address = world.street.room_address(room);
    let key = world.street.room_key(room);
    let building = building_code(world, room.community as usize, room.compound, room.building);
    let area = 45 + r.below(100);
    out.csv(
        Sink::HousingRooms,
        &[
            &code,
            &building,
            &address,
            &room.unit.to_string(),
            &room.number.to_string(),
            &area.to_string(),
            &owner.name,
            owner.id.as_str(),
        ],
    );
    out.truth(Sink::HousingRooms, &code, "subject", &key, &[]);
    out.truth(Sink::HousingRooms, &code, "owner", &owner.key, &[]);
    let bkey = world
        .street
        .building_key(room.community as usize, room.compound, room.building);
    out.csv(Sink::TruthRooms, &[&key, &bkey, &address, &owner.key]);
}

/// The rooms a household owns or rents, and its rental contract. `landlords` are the resident
/// households of the same block, any of which may let the room.
pub fn render(world: &World, hh: &Household, landlords: &[&Household], out: &mut Out, r: &mut Rng) {
    let Some(head) = hh.members.first() else {
        return;
    };
    if !hh.floating {
        if let Some(o) = owner(world, hh) {
            room_row(world, &hh.room, &hh.members[o], out, r);
            if hh.actual_room != hh.room {
                room_row(world, &hh.actual_room, &hh.members[o], out, r);
            }
        }
        return;
    }
    // The current contract: renewed every `term` years since the household moved in.
    let as_of = world.config.as_of;
    let term = 1 + r.below(3) as i32;
    let mut start = hh.since;
    while add_years(start, term) <= as_of {
        start = add_years(start, term);
    }
    let end = add_years(start, term) - Duration::days(1);
    // The landlord must have been an adult when the contract was signed and be alive now.
    let eligible: Vec<&Person> = landlords
        .iter()
        .filter_map(|l| owner(world, l).map(|o| &l.members[o]))
        .filter(|p| p.alive_on(as_of) && add_years(p.birth, 22) <= start)
        .collect();
    let Some(owner) = r.pick(&eligible).copied() else {
        return;
    };
    room_row(world, &hh.room, owner, out, r);
    let code = room_code(world, &hh.room);
    let record = format!("ZL{}{:09}", ymd(start, DateStyle::YearMonth), hh.index);
    out.csv(
        Sink::HousingRentals,
        &[
            &record,
            &code,
            &world.street.room_address(&hh.room),
            &owner.name,
            owner.id.as_str(),
            &head.name,
            head.id.as_str(),
            head.phone.as_deref().unwrap_or(""),
            &ymd(start, DateStyle::Iso),
            &ymd(end, DateStyle::Iso),
            &(1200 + 100 * r.below(40)).to_string(),
        ],
    );
    out.truth(Sink::HousingRentals, &record, "landlord", &owner.key, &[]);
    out.truth(Sink::HousingRentals, &record, "tenant", &head.key, &[]);
    out.truth(
        Sink::HousingRentals,
        &record,
        "room",
        &world.street.room_key(&hh.room),
        &[],
    );
}
