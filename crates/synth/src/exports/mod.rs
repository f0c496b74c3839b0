//! The department systems' exports and the ground truth beside them.
//!
//! Each department module turns one household (or one entity, or one building) of the true world
//! into the rows its system would hold, in its own schema, format, encoding and quality. Rows are
//! rendered into an in-memory [`Out`] per household so that households can be rendered on many
//! threads and still be written in index order, which keeps the files byte-identical for a seed.
//! Every row carries the department's own record key, and a row of `truth/records.csv` names the
//! true person, entity, building or room behind it and the noise that was applied.
//!
//! This module does not decide what the world is (that is `world`) nor how values are garbled
//! (`noise`); it only decides who writes what down, and where.

pub mod civil;
pub mod education;
pub mod floating;
pub mod grid;
pub mod health;
pub mod housing;
pub mod market;
pub mod police;
pub mod social;
pub mod truth;

use std::fmt::Write as _;

/// Where a row goes: one file of one department system, or one truth file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sink {
    PoliceHousehold,
    FloatingPopulation,
    CivilAffairs,
    SocialInsurance,
    MarketEntities,
    HousingBuildings,
    HousingRooms,
    HousingRentals,
    HealthBirths,
    EducationStudents,
    GridCollection,
    TruthPersons,
    TruthEntities,
    TruthBuildings,
    TruthRooms,
    TruthRecords,
    TruthRelations,
}

/// How a sink's file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Sink {
    pub const ALL: [Sink; 17] = [
        Sink::PoliceHousehold,
        Sink::FloatingPopulation,
        Sink::CivilAffairs,
        Sink::SocialInsurance,
        Sink::MarketEntities,
        Sink::HousingBuildings,
        Sink::HousingRooms,
        Sink::HousingRentals,
        Sink::HealthBirths,
        Sink::EducationStudents,
        Sink::GridCollection,
        Sink::TruthPersons,
        Sink::TruthEntities,
        Sink::TruthBuildings,
        Sink::TruthRooms,
        Sink::TruthRecords,
        Sink::TruthRelations,
    ];

    /// The file's path below the output directory.
    pub fn path(self) -> &'static str {
        match self {
            Sink::PoliceHousehold => "police_household.csv",
            Sink::FloatingPopulation => "floating_population.jsonl",
            Sink::CivilAffairs => "civil_affairs.csv",
            Sink::SocialInsurance => "social_insurance.csv",
            Sink::MarketEntities => "market_entities.csv",
            Sink::HousingBuildings => "housing_buildings.csv",
            Sink::HousingRooms => "housing_rooms.csv",
            Sink::HousingRentals => "housing_rentals.csv",
            Sink::HealthBirths => "health_births.csv",
            Sink::EducationStudents => "education_students.csv",
            Sink::GridCollection => "grid_collection.jsonl",
            Sink::TruthPersons => "truth/persons.csv",
            Sink::TruthEntities => "truth/entities.csv",
            Sink::TruthBuildings => "truth/buildings.csv",
            Sink::TruthRooms => "truth/rooms.csv",
            Sink::TruthRecords => "truth/records.csv",
            Sink::TruthRelations => "truth/relations.csv",
        }
    }

    /// The department system that exports it, for the summary (truth files have none).
    pub fn department(self) -> Option<&'static str> {
        Some(match self {
            Sink::PoliceHousehold => "公安 户籍管理",
            Sink::FloatingPopulation => "公安 流动人口登记",
            Sink::CivilAffairs => "民政 婚姻·殡葬·高龄津贴",
            Sink::SocialInsurance => "人社 社会保险",
            Sink::MarketEntities => "市场监管 市场主体登记",
            Sink::HousingBuildings => "住建 楼栋",
            Sink::HousingRooms => "住建 房屋",
            Sink::HousingRentals => "住建 租赁备案",
            Sink::HealthBirths => "卫健 出生医学证明",
            Sink::EducationStudents => "教育 学籍",
            Sink::GridCollection => "网格 采集",
            _ => return None,
        })
    }

    pub fn format(self) -> Format {
        match self {
            Sink::FloatingPopulation | Sink::GridCollection => Format::JsonLines,
            _ => Format::Csv,
        }
    }

    /// Civil affairs still runs a system that exports GBK; everything else is UTF-8.
    pub fn gbk(self) -> bool {
        self == Sink::CivilAffairs
    }

    /// The CSV header (none for JSON lines).
    pub fn header(self) -> &'static [&'static str] {
        match self {
            Sink::PoliceHousehold => police::HEADER,
            Sink::CivilAffairs => civil::HEADER,
            Sink::SocialInsurance => social::HEADER,
            Sink::MarketEntities => market::HEADER,
            Sink::HousingBuildings => housing::BUILDING_HEADER,
            Sink::HousingRooms => housing::ROOM_HEADER,
            Sink::HousingRentals => housing::RENTAL_HEADER,
            Sink::HealthBirths => health::HEADER,
            Sink::EducationStudents => education::HEADER,
            Sink::TruthPersons => truth::PERSON_HEADER,
            Sink::TruthEntities => truth::ENTITY_HEADER,
            Sink::TruthBuildings => truth::BUILDING_HEADER,
            Sink::TruthRooms => truth::ROOM_HEADER,
            Sink::TruthRecords => truth::RECORD_HEADER,
            Sink::TruthRelations => truth::RELATION_HEADER,
            Sink::FloatingPopulation | Sink::GridCollection => &[],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Rows rendered for one household, entity or building, per sink, with a count of rows.
#[derive(Default)]
pub struct Out {
    pub bufs: [String; 17],
    pub rows: [u64; 17],
    /// Noise applied, as `source.kind` (e.g. `grid_collection.id_typo`), for the summary.
    pub noise: std::collections::BTreeMap<String, u64>,
}

impl Out {
    /// Appends one CSV row, quoting fields that need it (RFC 4180).
    pub fn csv(&mut self, sink: Sink, fields: &[&str]) {
        let buf = &mut self.bufs[sink.index()];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            if f.contains([',', '"', '\n', '\r']) {
                buf.push('"');
                buf.push_str(&f.replace('"', "\"\""));
                buf.push('"');
            } else {
                buf.push_str(f);
            }
        }
        buf.push('\n');
        self.rows[sink.index()] += 1;
    }

    /// Appends one JSON object as a line.
    pub fn json(&mut self, sink: Sink, value: &serde_json::Value) {
        let buf = &mut self.bufs[sink.index()];
        let _ = write!(buf, "{value}");
        buf.push('\n');
        self.rows[sink.index()] += 1;
    }

    /// Records that a source record stands for `true_key` in `role`, with the noise applied.
    pub fn truth(
        &mut self,
        source: Sink,
        record_key: &str,
        role: &str,
        true_key: &str,
        noise: &[&'static str],
    ) {
        let path = source.path();
        let stem = path.split('.').next().unwrap_or(path);
        for kind in noise {
            *self.noise.entry(format!("{stem}.{kind}")).or_default() += 1;
        }
        let joined = noise.join(";");
        self.csv(
            Sink::TruthRecords,
            &[path, record_key, role, true_key, &joined],
        );
    }
}

/// A person's phone as a department's system holds it: empty at the `missing_phone` rate,
/// otherwise (when `reformat` is set, for systems that take it as typed) in a non-canonical form
/// at the `phone_format` rate. The noise applied is added to `noise`.
pub fn phone_field(
    world: &crate::world::World,
    p: &crate::world::Person,
    r: &mut crate::rng::Rng,
    noise: &mut Vec<&'static str>,
    reformat: bool,
) -> String {
    let n = &world.config.noise;
    let Some(phone) = &p.phone else {
        return String::new();
    };
    if r.chance(n.missing_phone) {
        noise.push("missing_phone");
        return String::new();
    }
    if reformat && r.chance(n.phone_format) {
        noise.push("phone_format");
        return crate::noise::phone_form(phone, r);
    }
    phone.clone()
}

/// A room's address as a clerk typed it: hard to read at the `hard_address` rate, messy at
/// `messy_rate`, else in standard form. The noise applied is added to `noise`.
pub fn written_address(
    world: &crate::world::World,
    room: &crate::places::RoomRef,
    messy_rate: f64,
    r: &mut crate::rng::Rng,
    noise: &mut Vec<&'static str>,
) -> String {
    if r.chance(world.config.noise.hard_address) {
        noise.push("hard_address");
        crate::noise::hard_address(&world.street, room, r)
    } else if r.chance(messy_rate) {
        noise.push("messy_address");
        crate::noise::messy_address(&world.street, room, r)
    } else {
        world.street.room_address(room)
    }
}

/// Formats a date the way a department writes it.
pub fn ymd(d: chrono::NaiveDate, style: DateStyle) -> String {
    use chrono::Datelike;
    let (y, m, dd) = (d.year(), d.month(), d.day());
    match style {
        DateStyle::Compact => format!("{y:04}{m:02}{dd:02}"),
        DateStyle::Iso => format!("{y:04}-{m:02}-{dd:02}"),
        DateStyle::Slash => format!("{y}/{m}/{dd}"),
        DateStyle::Chinese => format!("{y}年{m}月{dd}日"),
        DateStyle::Dotted => format!("{y}.{m}.{dd}"),
        DateStyle::YearMonth => format!("{y:04}{m:02}"),
    }
}

/// The date forms departments use.
#[derive(Clone, Copy, Debug)]
pub enum DateStyle {
    Compact,
    Iso,
    Slash,
    Chinese,
    Dotted,
    YearMonth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut o = Out::default();
        o.csv(Sink::HousingRooms, &["a", "b,c", "d\"e"]);
        assert_eq!(o.bufs[Sink::HousingRooms.index()], "a,\"b,c\",\"d\"\"e\"\n");
        assert_eq!(o.rows[Sink::HousingRooms.index()], 1);
    }

    #[test]
    fn every_csv_sink_has_a_header_and_paths_are_distinct() {
        let mut paths = std::collections::HashSet::new();
        for s in Sink::ALL {
            assert!(paths.insert(s.path()));
            assert_eq!(s.format() == Format::Csv, !s.header().is_empty(), "{s:?}");
        }
        assert_eq!(
            Sink::ALL
                .iter()
                .filter(|s| s.department().is_some())
                .count(),
            11
        );
    }
}
