//! 网格 采集: what grid workers collect on their door-to-door rounds, as JSON lines.
//!
//! The dirtiest source: names typed by ear (homophones such as 张→章), ids with a digit mistyped
//! or two swapped, or left out, phones in every form and addresses as the worker wrote them, at
//! the rates of `config::Noise`. Each visit covers about six in ten of a household's living
//! members; records carry the 15-digit unit grid code.

use super::{DateStyle, Out, Sink, ymd};
use crate::noise;
use crate::rng::{Rng, mix};
use crate::world::{Household, World};
use chrono::Duration;
use serde_json::json;

pub fn render(world: &World, hh: &Household, out: &mut Out, r: &mut Rng) {
    let cfg = &world.config;
    let n = &cfg.noise;
    let grid = world.street.grid_code(&hh.actual_room);
    let worker = format!(
        "网格员{:03}",
        mix(grid.len() as u64 ^ hh.actual_room.compound as u64) % 400
    );
    let visit = cfg.as_of - Duration::days(r.range(0, 700));
    for (m, p) in hh.members.iter().enumerate() {
        if !p.alive_on(visit) || !r.chance(0.6) {
            continue;
        }
        // Collection apps key records by a random-looking id; a hash of the slot keeps it stable.
        let record = format!(
            "{:016x}",
            mix(cfg.seed ^ mix(hh.index.wrapping_mul(16) + m as u64))
        );
        let mut applied = Vec::new();
        let name = if r.chance(n.grid_homophone) {
            let t = noise::homophone_typo(&p.name, r);
            if t != p.name {
                applied.push("homophone");
            }
            t
        } else {
            p.name.clone()
        };
        let id = if r.chance(n.grid_missing_id) {
            applied.push("missing_id");
            String::new()
        } else if r.chance(n.grid_id_typo) {
            applied.push("id_typo");
            noise::mistype_id(p.id.as_str(), r)
        } else {
            p.id.as_str().to_string()
        };
        let phone = match &p.phone {
            Some(ph) if r.chance(n.phone_format) => {
                applied.push("phone_format");
                noise::phone_form(ph, r)
            }
            Some(ph) => ph.clone(),
            None => String::new(),
        };
        let address = if r.chance(0.5) {
            applied.push("messy_address");
            noise::messy_address(&world.street, &hh.actual_room, r)
        } else {
            world.street.room_address(&hh.actual_room)
        };
        out.json(
            Sink::GridCollection,
            &json!({
                "cjbh": record,
                "wgbm": grid,
                "xm": name,
                "zjhm": id,
                "xb": p.sex.zh(),
                "lxdh": phone,
                "dz": address,
                "rylx": if hh.floating { "流动人口" } else { "户籍人口" },
                "cjrq": ymd(visit, DateStyle::Iso),
                "cjy": worker,
            }),
        );
        for a in &applied {
            out.noted(a);
        }
        out.truth(Sink::GridCollection, &record, "subject", &p.key, &applied);
        out.truth(
            Sink::GridCollection,
            &record,
            "residence",
            &world.street.room_key(&hh.actual_room),
            &[],
        );
    }
}
