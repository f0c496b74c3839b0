//! 卫健 出生医学证明: birth certificates issued by the street's hospitals since 2012.
//!
//! The newborn has no id yet when the certificate is issued, so the record names the child by
//! name, sex and birth date only and links it to the mother's (and usually the father's) id. Some
//! newborns are not yet named, some certificates lack the father (both configurable rates).
//!
//! Children born before their family came to the street were certified elsewhere and are not in
//! this export.

use super::{DateStyle, Out, Sink, ymd};
use crate::rng::Rng;
use crate::world::{Household, World};
use chrono::Datelike;

pub const HEADER: &[&str] = &[
    "出生医学证明编号",
    "新生儿姓名",
    "性别",
    "出生日期",
    "出生体重(克)",
    "助产机构",
    "母亲姓名",
    "母亲身份证号",
    "父亲姓名",
    "父亲身份证号",
];

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng) {
    for (m, child) in hh.members.iter().enumerate() {
        let Some(mother) = child.mother.map(|i| &hh.members[i]) else {
            continue;
        };
        if child.birth.year() < 2012 || child.birth > world.config.as_of || child.birth < hh.since {
            continue;
        }
        let father = child.father.map(|i| &hh.members[i]);
        let record = format!("O{}{:09}{m}", child.birth.year(), hh.index);
        let hospital = match r.below(3) {
            0 => format!("{}人民医院", world.street.county.name),
            1 => format!(
                "{}{}社区卫生服务中心",
                world.street.county.name,
                world.street.short()
            ),
            _ => format!("{}妇幼保健院", world.street.city.name),
        };
        let mut noise = Vec::new();
        let name = if r.chance(world.config.noise.birth_unnamed) {
            noise.push("unnamed");
            ""
        } else {
            child.name.as_str()
        };
        let with_father = !r.chance(world.config.noise.birth_without_father);
        if !with_father && father.is_some() {
            noise.push("without_father");
        }
        out.csv(
            Sink::HealthBirths,
            &[
                &record,
                name,
                child.sex.zh(),
                &ymd(child.birth, DateStyle::Iso),
                &(2600 + r.below(1600)).to_string(),
                &hospital,
                &mother.name,
                mother.id.as_str(),
                father
                    .filter(|_| with_father)
                    .map(|f| f.name.as_str())
                    .unwrap_or(""),
                father
                    .filter(|_| with_father)
                    .map(|f| f.id.as_str())
                    .unwrap_or(""),
            ],
        );
        out.truth(Sink::HealthBirths, &record, "subject", &child.key, &noise);
        out.truth(Sink::HealthBirths, &record, "mother", &mother.key, &[]);
        if let Some(f) = father.filter(|_| with_father) {
            out.truth(Sink::HealthBirths, &record, "father", &f.key, &[]);
        }
    }
}
