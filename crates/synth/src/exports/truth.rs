//! The ground truth: the true people, entities, buildings and rooms, and how they relate.
//!
//! `records.csv` (written by every department module through `Out::truth`) maps each source record
//! to the true things behind it; the files here describe those things, so that linkage can be
//! scored later (`tongban eval`) and services can be checked against what is really so.
//!
//! The truth is written once and never read back by the generator; it holds no noise.

use super::{DateStyle, Out, Sink, ymd};
use crate::world::{Entity, Household, World};

pub const PERSON_HEADER: &[&str] = &[
    "person_key",
    "citizen_id",
    "name",
    "sex",
    "birth_date",
    "nation",
    "household",
    "role",
    "floating",
    "community_code",
    "registered_room",
    "actual_room",
    "phone",
    "death_date",
    "employer",
];
pub const ENTITY_HEADER: &[&str] = &[
    "entity_key",
    "credit_code",
    "name",
    "kind",
    "industry",
    "founded",
    "legal_rep",
    "address",
];
pub const BUILDING_HEADER: &[&str] = &[
    "building_key",
    "community_code",
    "compound",
    "building_no",
    "address",
    "units",
    "floors",
];
pub const ROOM_HEADER: &[&str] = &["room_key", "building_key", "address", "owner"];
pub const RECORD_HEADER: &[&str] = &["source", "record_key", "role", "true_key", "noise"];
pub const RELATION_HEADER: &[&str] = &["from", "relation", "to", "since"];

pub fn render_household(world: &World, hh: &Household, out: &mut Out) {
    let community = &world.street.communities[hh.community];
    let household = format!("H{}", hh.index);
    let room = world.street.room_key(&hh.room);
    let actual = world.street.room_key(&hh.actual_room);
    for p in &hh.members {
        let employer = p.employer.map(|e| format!("E{e}")).unwrap_or_default();
        out.csv(
            Sink::TruthPersons,
            &[
                &p.key,
                p.id.as_str(),
                &p.name,
                p.sex.code(),
                &ymd(p.birth, DateStyle::Iso),
                p.nation,
                &household,
                p.role.zh(p.sex),
                if hh.floating { "1" } else { "0" },
                &community.code,
                if hh.floating { "" } else { &room },
                &actual,
                p.phone.as_deref().unwrap_or(""),
                &p.death.map(|d| ymd(d, DateStyle::Iso)).unwrap_or_default(),
                &employer,
            ],
        );
        let since = ymd(p.registered_on, DateStyle::Iso);
        out.csv(
            Sink::TruthRelations,
            &[&p.key, "household", &household, &since],
        );
        if !hh.floating {
            out.csv(
                Sink::TruthRelations,
                &[&p.key, "registered_residence", &room, &since],
            );
        }
        out.csv(
            Sink::TruthRelations,
            &[&p.key, "actual_residence", &actual, &since],
        );
        for (rel, other) in [("father", p.father), ("mother", p.mother)] {
            if let Some(o) = other {
                out.csv(
                    Sink::TruthRelations,
                    &[
                        &p.key,
                        rel,
                        &hh.members[o].key,
                        &ymd(p.birth, DateStyle::Iso),
                    ],
                );
            }
        }
        if let Some(s) = p.spouse {
            let date = hh
                .marriage
                .map(|d| ymd(d, DateStyle::Iso))
                .unwrap_or_default();
            out.csv(
                Sink::TruthRelations,
                &[&p.key, "spouse", &hh.members[s].key, &date],
            );
        }
        if let (Some(_), Some(since)) = (p.employer, p.insured_since) {
            out.csv(
                Sink::TruthRelations,
                &[&p.key, "employee", &employer, &ymd(since, DateStyle::Iso)],
            );
        }
    }
}

pub fn render_entity(e: &Entity, rep_key: Option<&str>, out: &mut Out) {
    out.csv(
        Sink::TruthEntities,
        &[
            &e.key,
            e.code.as_str(),
            &e.name,
            e.kind,
            e.industry,
            &ymd(e.founded, DateStyle::Iso),
            rep_key.unwrap_or(""),
            &e.address,
        ],
    );
    if let Some(r) = rep_key {
        out.csv(
            Sink::TruthRelations,
            &[r, "legal_rep", &e.key, &ymd(e.founded, DateStyle::Iso)],
        );
    }
}
