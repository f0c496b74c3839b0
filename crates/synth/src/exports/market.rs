//! 市场监管 市场主体登记: business registrations with their legal representatives.
//!
//! One row per legal entity: credit code, name, type, legal representative and id, capital,
//! founding date (written 2019/3/5), seat and industry. An entity whose representative has died
//! since it was founded is shown as revoked (吊销).
//!
//! Branches, shareholders and annual reports are not exported.

use super::{DateStyle, Out, Sink, ymd};
use crate::world::Entity;

pub const HEADER: &[&str] = &[
    "统一社会信用代码",
    "企业名称",
    "市场主体类型",
    "法定代表人",
    "法定代表人证件号码",
    "注册资本(万元)",
    "成立日期",
    "住所",
    "所属行业",
    "登记状态",
];

/// The legal representative as the household pass found them.
#[derive(Clone, Debug)]
pub struct Rep {
    pub key: String,
    pub name: String,
    pub id: String,
}

pub fn render(e: &Entity, rep: Option<&Rep>, out: &mut Out) {
    let status = if e.revoked_on.is_some() {
        "吊销"
    } else {
        "存续"
    };
    let capital = if e.capital_wan == 0 {
        String::new()
    } else {
        e.capital_wan.to_string()
    };
    out.csv(
        Sink::MarketEntities,
        &[
            e.code.as_str(),
            &e.name,
            e.kind,
            rep.map(|r| r.name.as_str()).unwrap_or(""),
            rep.map(|r| r.id.as_str()).unwrap_or(""),
            &capital,
            &ymd(e.founded, DateStyle::Slash),
            &e.address,
            e.industry,
            status,
        ],
    );
    out.truth(
        Sink::MarketEntities,
        e.code.as_str(),
        "subject",
        &e.key,
        &[],
    );
    if let Some(r) = rep {
        out.truth(
            Sink::MarketEntities,
            e.code.as_str(),
            "legal_rep",
            &r.key,
            &[],
        );
    }
}
