//! 网格 采集: what grid workers collect on their door-to-door rounds, as JSON lines.
//!
//! The dirtiest source: names typed by ear (homophones such as 张→章), ids with a digit mistyped
//! or two swapped, or left out, phones in every form and addresses as the worker wrote them, at
//! the rates of `config::Noise`. Each round reaches a share of a household's living members
//! (`grid_coverage`) on one day within the last two years, after they moved in; records carry the
//! 15-digit unit grid code and the grid's own worker.
//!
//! It records people, not buildings or businesses, and holds no history: one visit per person.

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
    // One worker per grid, numbered within the community as the street assigns them.
    let worker = format!("网格员{}", &grid[grid.len() - 5..]);
    let from = hh.since.max(cfg.as_of - Duration::days(700)).min(cfg.as_of);
    let visit = from + Duration::days(r.range(0, (cfg.as_of - from).num_days()));
    for (m, p) in hh.members.iter().enumerate() {
        if p.birth > visit || !p.alive_on(visit) || !r.chance(n.grid_coverage) {
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
        let phone = super::phone_field(world, p, r, &mut applied, true);
        let address = super::written_address(
            world,
            &hh.actual_room,
            n.grid_messy_address,
            r,
            &mut applied,
        );
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
