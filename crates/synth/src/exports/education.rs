//! 教育 学籍: pupils of 6 to 17 and their guardians.
//!
//! The national student number is the letter G followed by the pupil's id, as in the real 学籍
//! system. The guardian is the mother or father with a phone number; the home address is where
//! the family actually lives, which for 人户分离 families differs from the household register.

use super::{DateStyle, Out, Sink, ymd};
use crate::rng::Rng;
use crate::world::{Household, World};

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

const PRIMARY: [&str; 4] = [
    "苏州工业园区唯亭实验小学",
    "苏州工业园区青剑湖小学",
    "苏州工业园区星澄学校",
    "苏州工业园区唯亭学校",
];
const MIDDLE: [&str; 2] = ["苏州工业园区唯亭学校", "苏州工业园区青剑湖学校"];
const HIGH: [&str; 2] = ["苏州工业园区第三中学", "江苏省苏州第十中学"];

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng) {
    let as_of = world.config.as_of;
    for p in &hh.members {
        let age = p.age_on(as_of);
        if !(6..=17).contains(&age) || !p.alive_on(as_of) {
            continue;
        }
        let guardian_idx = if r.chance(0.6) {
            p.mother.or(p.father)
        } else {
            p.father.or(p.mother)
        };
        let Some(g) = guardian_idx.map(|i| &hh.members[i]) else {
            continue;
        };
        let (school, grade) = match age {
            6..=11 => (
                PRIMARY[hh.community % PRIMARY.len()],
                format!("{}年级", age - 5),
            ),
            12..=14 => (
                MIDDLE[hh.community % MIDDLE.len()],
                format!("初{}", age - 11),
            ),
            _ => (HIGH[hh.community % HIGH.len()], format!("高{}", age - 14)),
        };
        let record = format!("G{}", p.id.as_str());
        let relation = if Some(g.sex) == Some(tongban_standards::citizen_id::Sex::Female) {
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
                school,
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
