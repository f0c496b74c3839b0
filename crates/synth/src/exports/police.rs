//! 公安 户籍管理: the public security household register of the street's residents.
//!
//! One CSV row per registered person, deceased ones included with status 死亡注销, grouped by
//! household number (户号). Dates are compact (19491231). The register is the cleanest source,
//! but people born before 2000 sometimes still carry their old 15-digit id (configurable rate).
//!
//! It holds residents only: floating people are in the floating population registration.

use super::{DateStyle, Out, Sink, ymd};
use crate::rng::Rng;
use crate::world::{Household, World};
use chrono::Datelike;

pub const HEADER: &[&str] = &[
    "户号",
    "人员编号",
    "公民身份号码",
    "姓名",
    "性别",
    "民族",
    "出生日期",
    "与户主关系",
    "户籍地址",
    "户籍状态",
    "登记日期",
    "联系电话",
];

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng) {
    if hh.floating {
        return;
    }
    let community = &world.street.communities[hh.community];
    let household_no = format!("{}{:08}", &community.code[..9], hh.index);
    for (m, p) in hh.members.iter().enumerate() {
        let record = format!("{household_no}{m:02}");
        let mut noise = Vec::new();
        let id = if p.birth.year() < 2000 && r.chance(world.config.noise.police_id15) {
            noise.push("id15");
            p.id.to_15().unwrap_or_else(|| p.id.as_str().to_string())
        } else {
            p.id.as_str().to_string()
        };
        let status = if p.alive_on(world.config.as_of) {
            "正常"
        } else {
            "死亡注销"
        };
        let phone = super::phone_field(world, p, r, &mut noise, false);
        out.csv(
            Sink::PoliceHousehold,
            &[
                &household_no,
                &record,
                &id,
                &p.name,
                p.sex.zh(),
                p.nation,
                &ymd(p.birth, DateStyle::Compact),
                p.role.zh(p.sex),
                &p.hukou_address,
                status,
                &ymd(p.registered_on, DateStyle::Compact),
                &phone,
            ],
        );
        out.truth(Sink::PoliceHousehold, &record, "subject", &p.key, &noise);
    }
}
