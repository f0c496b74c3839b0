//! 人社 社会保险: employees' pension insurance, one row per insured person.
//!
//! Carries the employer's credit code and name, the month contributions began (YYYYMM) and the
//! number of months paid: the facts later used for employment relations and for services that
//! depend on contribution years. Employees of a revoked employer show 终止 (contributions
//! stopped).
//!
//! Only the pension insurance is exported; medical and unemployment insurance add nothing the
//! resolution needs.

use super::{DateStyle, Out, Sink, ymd};
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

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng, entities: &[Entity]) {
    let as_of = world.config.as_of;
    for (m, p) in hh.members.iter().enumerate() {
        let (Some(e), Some(since)) = (p.employer, p.insured_since) else {
            continue;
        };
        let Some(ent) = entities.get(e as usize) else {
            continue;
        };
        // Contributions stop at death or when the employer is revoked.
        let end = as_of
            .min(p.death.unwrap_or(as_of))
            .min(ent.revoked_on.unwrap_or(as_of));
        let months =
            (end.year() - since.year()) * 12 + end.month() as i32 - since.month() as i32 + 1;
        let record = format!("SB{:010}{m}", hh.index);
        let mut noise_applied = Vec::new();
        let phone = super::phone_field(world, p, r, &mut noise_applied, true);
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
