//! 公安 流动人口登记: the floating population registration, as JSON lines.
//!
//! Everyone of 16 or more living in the street without being registered here must register. The
//! system is fed by police stations and rental agents, so addresses are typed freely (shorthand,
//! Chinese numerals, levels left out, notes) at a configurable rate, sex is a GB/T 2261 code, and
//! phones come in every form.
//!
//! Children under 16 and residents are not in it; nor is anything about employment beyond the
//! employer's name as the person gave it.

use super::{DateStyle, Out, Sink, ymd};
use crate::rng::Rng;
use crate::world::{Entity, Household, World};
use serde_json::json;

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng, entities: &[Entity]) {
    if !hh.floating {
        return;
    }
    let cfg = &world.config;
    for (m, p) in hh.members.iter().enumerate() {
        if p.age_on(cfg.as_of) < 16 || !p.alive_on(cfg.as_of) {
            continue;
        }
        let record = format!("LD{}{:09}{m}", &world.street.code[..6], hh.index);
        let mut noise_applied = Vec::new();
        let address = super::written_address(
            world,
            &hh.room,
            cfg.noise.floating_messy_address,
            r,
            &mut noise_applied,
        );
        let phone = super::phone_field(world, p, r, &mut noise_applied, true);
        let purpose = if p.employer.is_some() {
            "务工"
        } else if m > 0 {
            "随迁"
        } else {
            "经商"
        };
        out.json(
            Sink::FloatingPopulation,
            &json!({
                "djbh": record,
                "xm": p.name,
                "sfzh": p.id.as_str(),
                "xb": p.sex.code(),
                "mz": p.nation,
                "csrq": ymd(p.birth, DateStyle::Iso),
                "hjdz": p.hukou_address,
                "jzdz": address,
                "lxdh": phone,
                "djrq": ymd(p.registered_on, DateStyle::Slash),
                "jzsy": purpose,
                "fwcs": p.employer.and_then(|e| entities.get(e as usize)).map(|e| e.name.as_str()),
            }),
        );
        out.truth(
            Sink::FloatingPopulation,
            &record,
            "subject",
            &p.key,
            &noise_applied,
        );
        out.truth(
            Sink::FloatingPopulation,
            &record,
            "residence",
            &world.street.room_key(&hh.room),
            &[],
        );
    }
}
