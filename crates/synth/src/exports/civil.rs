//! 民政: marriage registrations, death registrations and the old-age allowance list, in GBK.
//!
//! The civil affairs system is older than the others: it exports GBK-encoded CSV, writes dates as
//! 1949年12月31日, keeps some names in traditional characters (configurable rate), and puts the
//! spouse of a marriage on the same row as the applicant.
//!
//! Floating people married and die on record back home, so they are not in it; nor are marriages
//! before the system went digital in 2003.

use super::{DateStyle, Out, Sink, ymd};
use crate::noise;
use crate::rng::Rng;
use crate::world::{Household, Person, World};
use chrono::Datelike;

pub const HEADER: &[&str] = &[
    "业务编号",
    "业务类型",
    "姓名",
    "身份证号",
    "性别",
    "出生日期",
    "配偶姓名",
    "配偶身份证号",
    "登记日期",
    "登记机关",
    "地址",
];

fn name(world: &World, p: &Person, r: &mut Rng, noise_applied: &mut Vec<&'static str>) -> String {
    if r.chance(world.config.noise.civil_traditional) {
        let t = noise::traditional(&p.name);
        if t != p.name {
            noise_applied.push("traditional");
        }
        t
    } else {
        p.name.clone()
    }
}

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng) {
    if hh.floating {
        return;
    }
    let as_of = world.config.as_of;
    let address = world.street.room_address(&hh.actual_room);
    let office = format!("{}民政局", world.street.county.name);
    // Marriages registered here since the system went digital in 2003.
    if let Some(date) = hh.marriage.filter(|d| d.year() >= 2003) {
        let (a, b) = (&hh.members[0], hh.members[0].spouse.map(|s| &hh.members[s]));
        if let Some(b) = b {
            let record = format!("JH{}{:09}", date.year(), hh.index);
            let mut na = Vec::new();
            let mut nb = Vec::new();
            let an = name(world, a, r, &mut na);
            let bn = name(world, b, r, &mut nb);
            out.csv(
                Sink::CivilAffairs,
                &[
                    &record,
                    "结婚登记",
                    &an,
                    a.id.as_str(),
                    a.sex.zh(),
                    &ymd(a.birth, DateStyle::Chinese),
                    &bn,
                    b.id.as_str(),
                    &ymd(date, DateStyle::Chinese),
                    &office,
                    &address,
                ],
            );
            out.truth(Sink::CivilAffairs, &record, "subject", &a.key, &na);
            out.truth(Sink::CivilAffairs, &record, "spouse", &b.key, &nb);
        }
    }
    for (m, p) in hh.members.iter().enumerate() {
        let (kind, prefix, date) = match p.death {
            Some(d) if d <= as_of => ("死亡登记", "SW", d),
            _ if p.age_on(as_of) >= 80 => (
                "高龄津贴",
                "GL",
                hh.since.max(as_of.with_day(1).unwrap_or(as_of)),
            ),
            _ => continue,
        };
        let record = format!("{prefix}{:09}{m}", hh.index);
        let mut na = Vec::new();
        let pn = name(world, p, r, &mut na);
        out.csv(
            Sink::CivilAffairs,
            &[
                &record,
                kind,
                &pn,
                p.id.as_str(),
                p.sex.zh(),
                &ymd(p.birth, DateStyle::Chinese),
                "",
                "",
                &ymd(date, DateStyle::Chinese),
                &office,
                &address,
            ],
        );
        out.truth(Sink::CivilAffairs, &record, "subject", &p.key, &na);
    }
}
