//! 人社 社会保险: employees' pension insurance, one row per insured person.
//!
//! Carries the employer's credit code and name, the month contributions began (YYYYMM) and the
//! number of months paid: the facts later used for employment relations and for services that
//! depend on contribution years.

use super::{DateStyle, Out, Sink, ymd};
use crate::noise;
use crate::rng::Rng;
use crate::world::{Entity, Household, World};
use chrono::Datelike;

pub const HEADER: &[&str] = &[
    "个人编号",
    "身份证号码",
    "姓名",
    "性别",
    "单位统一社会信用代码",
    "单位名称",
    "险种",
    "参保年月",
    "累计缴费月数",
    "缴费状态",
    "手机号码",
];

pub fn render(
    world: &World,
    hh: &Household,
    out: &mut Out,
    r: &mut Rng,
    employer: &dyn Fn(u64) -> Entity,
) {
    let as_of = world.config.as_of;
    for (m, p) in hh.members.iter().enumerate() {
        let (Some(e), Some(since)) = (p.employer, p.insured_since) else {
            continue;
        };
        let ent = employer(e);
        let months =
            (as_of.year() - since.year()) * 12 + as_of.month() as i32 - since.month() as i32 + 1;
        let record = format!("SB{:010}{m}", hh.index);
        let mut noise_applied = Vec::new();
        let phone = match &p.phone {
            Some(ph) if r.chance(world.config.noise.phone_format) => {
                noise_applied.push("phone_format");
                noise::phone_form(ph, r)
            }
            Some(ph) => ph.clone(),
            None => String::new(),
        };
        out.csv(
            Sink::SocialInsurance,
            &[
                &record,
                p.id.as_str(),
                &p.name,
                p.sex.zh(),
                ent.code.as_str(),
                &ent.name,
                "职工基本养老保险",
                &ymd(since, DateStyle::YearMonth),
                &months.max(1).to_string(),
                if p.alive_on(as_of) {
                    "正常缴费"
                } else {
                    "终止"
                },
                &phone,
            ],
        );
        for n in &noise_applied {
            out.noted(n);
        }
        out.truth(
            Sink::SocialInsurance,
            &record,
            "subject",
            &p.key,
            &noise_applied,
        );
        out.truth(Sink::SocialInsurance, &record, "employer", &ent.key, &[]);
    }
}
