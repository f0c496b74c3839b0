//! 教育 学籍: pupils of 6 to 17 and their guardians.
//!
//! The national student number is the letter G followed by the pupil's id, as in the real 学籍
//! system. Grades follow the 1 September cohort: a child who was six by 31 August of the school
//! year's first autumn is in grade 1. The guardian is the mother or the father, preferring one
//! with a phone number; the home address is where the family actually lives, which for 人户分离
//! families differs from the household register.
//!
//! Kindergartens, universities and pupils schooled outside the street are not in it.

use super::{DateStyle, Out, Sink, ymd};
use crate::rng::Rng;
use crate::world::{Household, Person, World};
use chrono::Datelike;
use tongban_standards::citizen_id::Sex;

pub const HEADER: &[&str] = &[
    "学籍号",
    "姓名",
    "身份证件号",
    "性别",
    "出生日期",
    "学校名称",
    "年级",
    "监护人姓名",
    "监护人身份证号",
    "监护人关系",
    "监护人电话",
    "家庭住址",
];

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng) {
    let as_of = world.config.as_of;
    // The school year that is running on the export date started on 1 September of this year.
    let school_year = if as_of.month() >= 9 {
        as_of.year()
    } else {
        as_of.year() - 1
    };
    let county = &world.street.county.name;
    let town = world.street.short();
    for p in &hh.members {
        if !p.alive_on(as_of) || p.birth > as_of {
            continue;
        }
        // Children born from September on join the next year's cohort.
        let cohort = if p.birth.month() >= 9 {
            p.birth.year() + 1
        } else {
            p.birth.year()
        };
        let grade = school_year - cohort - 5;
        if !(1..=12).contains(&grade) {
            continue;
        }
        let parents: Vec<&Person> = [p.mother, p.father]
            .into_iter()
            .flatten()
            .map(|i| &hh.members[i])
            .collect();
        let with_phone: Vec<&Person> = parents
            .iter()
            .copied()
            .filter(|g| g.phone.is_some())
            .collect();
        let pool = if with_phone.is_empty() {
            &parents
        } else {
            &with_phone
        };
        let Some(g) = r.pick(pool).copied() else {
            continue;
        };
        let (school, grade) = match grade {
            1..=6 => (format!("{county}{town}实验小学"), format!("{grade}年级")),
            7..=9 => (format!("{county}{town}学校"), format!("初{}", grade - 6)),
            _ => (
                format!("{county}第{}中学", 1 + hh.community % 3),
                format!("高{}", grade - 9),
            ),
        };
        let record = format!("G{}", p.id.as_str());
        let relation = if g.sex == Sex::Female {
            "母亲"
        } else {
            "父亲"
        };
        out.csv(
            Sink::EducationStudents,
            &[
                &record,
                &p.name,
                p.id.as_str(),
                p.sex.zh(),
                &ymd(p.birth, DateStyle::Dotted),
                &school,
                &grade,
                &g.name,
                g.id.as_str(),
                relation,
                g.phone.as_deref().unwrap_or(""),
                &world.street.room_address(&hh.actual_room),
            ],
        );
        out.truth(Sink::EducationStudents, &record, "subject", &p.key, &[]);
        out.truth(Sink::EducationStudents, &record, "guardian", &g.key, &[]);
        out.truth(
            Sink::EducationStudents,
            &record,
            "residence",
            &world.street.room_key(&hh.actual_room),
            &[],
        );
    }
}
