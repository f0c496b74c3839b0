//! The synthetic city: a true world and the dirty exports of the department systems that record it.
//!
//! `generate` lays out a street (by default 苏州工业园区 唯亭街道 with its 35 real communities),
//! generates its households, people, legal entities, buildings and rooms, and writes what eleven
//! department systems would export about them, each in its own schema, format, encoding and
//! quality, together with the ground truth behind every record. Everything is deterministic per
//! seed and streams: households are generated in blocks on all cores and written in order, so
//! memory stays flat at any size and the same seed gives byte-identical files.
//!
//! Personal data in this repository is synthetic only, made here. This crate does not ingest,
//! clean or link anything; it only makes the problem the rest of Tongban solves.

pub mod config;
pub mod exports;
pub mod febrl;
pub mod noise;
pub mod places;
pub mod rng;
pub mod world;

pub use config::{Noise, SynthConfig};

use exports::{Out, Sink};
use rayon::prelude::*;
use rng::{Rng, Stream};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tongban_standards::citizen_id::{self, CitizenId};
use world::{Entity, Household, World};

/// Households generated and written per block; also the scope within which a floating household
/// finds its landlord, so it must not depend on the number of threads.
const BLOCK: u64 = 2048;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    World(#[from] world::WorldError),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "all 500 sequence numbers for county {county}, born {birth}, are taken; the street is too large for one county's births"
    )]
    IdSpace { county: String, birth: String },
    #[error("cannot serialise the manifest")]
    Manifest(#[from] serde_json::Error),
}

/// People counted in one community.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CommunityCount {
    pub code: String,
    pub name: String,
    pub households: u64,
    /// Living registered residents (户籍人口) of the community.
    pub residents: u64,
    /// Living floating population (流动人口) actually living in the community.
    pub floating: u64,
}

/// What was generated.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub seed: u64,
    pub street: String,
    pub households: u64,
    pub people: u64,
    pub residents: u64,
    pub floating: u64,
    pub deceased: u64,
    pub entities: u64,
    /// Rows written per file (header excluded).
    pub files: BTreeMap<String, u64>,
    pub communities: Vec<CommunityCount>,
    /// How often each kind of noise was applied.
    pub noise: BTreeMap<String, u64>,
    /// Ids that collided and were given the next free sequence number.
    pub id_collisions_resolved: u64,
}

struct Sinks {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
}

impl Sinks {
    fn create(dir: &Path) -> Result<Sinks, SynthError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SynthError::Io { path, source }
        };
        fs::create_dir_all(dir.join("truth")).map_err(io(dir))?;
        let mut files = Vec::new();
        for s in Sink::ALL {
            let path = dir.join(s.path());
            let f = File::create(&path).map_err(io(&path))?;
            files.push(BufWriter::with_capacity(1 << 20, f));
        }
        let mut sinks = Sinks {
            dir: dir.to_path_buf(),
            files,
        };
        let mut header = Out::default();
        for s in Sink::ALL {
            if !s.header().is_empty() {
                header.csv(s, s.header());
            }
        }
        sinks.write(&header)?;
        Ok(sinks)
    }

    fn write(&mut self, out: &Out) -> Result<(), SynthError> {
        for (i, s) in Sink::ALL.iter().enumerate() {
            let text = &out.bufs[i];
            if text.is_empty() {
                continue;
            }
            let res = if s.gbk() {
                // Every character the generator writes exists in GBK; encoding_rs would turn any
                // that did not into an HTML numeric reference rather than fail.
                let (bytes, _, _) = encoding_rs::GBK.encode(text);
                self.files[i].write_all(&bytes)
            } else {
                self.files[i].write_all(text.as_bytes())
            };
            res.map_err(|source| SynthError::Io {
                path: self.dir.join(s.path()),
                source,
            })?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), SynthError> {
        for (i, mut f) in self.files.into_iter().enumerate() {
            f.flush().map_err(|source| SynthError::Io {
                path: self.dir.join(Sink::ALL[i].path()),
                source,
            })?;
        }
        Ok(())
    }
}

/// A citizen id as a number, for the collision check (17 digits and the check char fit in u64).
fn id_number(id: &str) -> u64 {
    id.bytes().take(17).fold(0u64, |acc, b| {
        acc * 10 + u64::from(b.wrapping_sub(b'0') % 10)
    })
}

/// The next free id of the same county, birth date and sex as `taken`.
fn next_free_id(
    issued: &mut HashSet<u64>,
    taken: &CitizenId,
    birth: chrono::NaiveDate,
) -> Result<CitizenId, SynthError> {
    let county = taken.county_code();
    for step in 1..500u16 {
        let seq = (taken.sequence() + 2 * step) % 1000;
        if let Ok(id) = citizen_id::new_from_parts(county, birth, seq)
            && issued.insert(id_number(id.as_str()))
        {
            return Ok(id);
        }
    }
    Err(SynthError::IdSpace {
        county: county.to_string(),
        birth: birth.to_string(),
    })
}

/// Generates the city of `config` into `out_dir`, calling `progress` with the number of households
/// and entities done so far (out of `households + entities`).
pub fn generate(
    config: SynthConfig,
    out_dir: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Summary, SynthError> {
    let world = World::new(config)?;
    let total = world.households + world.entities;
    let mut sinks = Sinks::create(out_dir)?;
    let mut summary = Summary {
        seed: world.config.seed,
        street: world.street.name.clone(),
        households: world.households,
        entities: world.entities,
        communities: world
            .street
            .communities
            .iter()
            .map(|c| CommunityCount {
                code: c.code.clone(),
                name: c.name.clone(),
                households: c.households,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut rows = [0u64; 17];
    let mut noise: BTreeMap<String, u64> = BTreeMap::new();
    let mut tally = |out: &Out| {
        for (i, n) in out.rows.iter().enumerate() {
            rows[i] += n;
        }
        for (k, v) in &out.noise {
            *noise.entry(k.clone()).or_default() += v;
        }
    };

    let mut buildings = Out::default();
    exports::housing::render_buildings(&world, &mut buildings);
    sinks.write(&buildings)?;
    tally(&buildings);
    drop(buildings);

    // Legal entities first: each is founded while its representative (a household head) was an
    // adult and alive, and employees are insured only after their employer was founded. About
    // 250 bytes an entity, one entity per twelve people.
    let entities: Vec<Entity> = (0..world.entities)
        .into_par_iter()
        .map(|e| {
            let hh = world.household(world.rep_household(e));
            match hh.members.first() {
                Some(head) => world.entity(e, head),
                None => unreachable!("every household has a head"),
            }
        })
        .collect();

    let mut issued: HashSet<u64> = HashSet::new();
    let mut reps: Vec<Option<exports::market::Rep>> = vec![None; entities.len()];
    let as_of = world.config.as_of;
    let mut start = 0;
    while start < world.households {
        let end = (start + BLOCK).min(world.households);
        let mut block: Vec<Household> = (start..end)
            .into_par_iter()
            .map(|h| {
                let mut hh = world.household(h);
                world.settle(&mut hh, &entities);
                hh
            })
            .collect();
        // Ids must be unique in the true world; the few that collide take the next free sequence
        // number of the same sex, in household order so that the result is deterministic.
        for hh in &mut block {
            for p in &mut hh.members {
                if !issued.insert(id_number(p.id.as_str())) {
                    p.id = next_free_id(&mut issued, &p.id, p.birth)?;
                    summary.id_collisions_resolved += 1;
                }
            }
            if let Some(e) = world.entity_represented_by(hh.index)
                && let Some(head) = hh.members.first()
            {
                reps[e as usize] = Some(exports::market::Rep {
                    key: head.key.clone(),
                    name: head.name.clone(),
                    id: head.id.as_str().to_string(),
                });
            }
            for p in &hh.members {
                summary.people += 1;
                if !p.alive_on(as_of) {
                    summary.deceased += 1;
                    continue;
                }
                let counts = &mut summary.communities;
                if hh.floating {
                    summary.floating += 1;
                    counts[hh.actual_room.community as usize].floating += 1;
                } else {
                    summary.residents += 1;
                    counts[hh.community].residents += 1;
                }
            }
        }
        let landlords: Vec<&Household> = block.iter().filter(|h| !h.floating).collect();
        let outs: Vec<Out> = block
            .par_iter()
            .map(|hh| {
                let r = Rng::for_item(world.config.seed, Stream::Noise, hh.index);
                let mut out = Out::default();
                exports::police::render(&world, hh, &mut out, &mut r.fork(1));
                exports::floating::render(&world, hh, &mut out, &mut r.fork(2), &entities);
                exports::civil::render(&world, hh, &mut out, &mut r.fork(3));
                exports::social::render(&world, hh, &mut out, &mut r.fork(4), &entities);
                exports::housing::render(&world, hh, &landlords, &mut out, &mut r.fork(5));
                exports::health::render(&world, hh, &mut out, &mut r.fork(6));
                exports::education::render(&world, hh, &mut out, &mut r.fork(7));
                exports::grid::render(&world, hh, &mut out, &mut r.fork(8));
                exports::truth::render_household(&world, hh, &mut out);
                out
            })
            .collect();
        for out in &outs {
            sinks.write(out)?;
            tally(out);
        }
        progress(end, total);
        start = end;
    }
    drop(issued);

    for chunk in entities.chunks((BLOCK * 4) as usize) {
        let outs: Vec<Out> = chunk
            .par_iter()
            .map(|ent| {
                let rep = reps[ent.index as usize].as_ref();
                let mut out = Out::default();
                exports::market::render(ent, rep, &mut out);
                exports::truth::render_entity(ent, rep.map(|r| r.key.as_str()), &mut out);
                out
            })
            .collect();
        for out in &outs {
            sinks.write(out)?;
            tally(out);
        }
        if let Some(last) = chunk.last() {
            progress(world.households + last.index + 1, total);
        }
    }
    sinks.finish()?;
    for (i, s) in Sink::ALL.iter().enumerate() {
        summary.files.insert(s.path().to_string(), rows[i]);
    }
    summary.noise = noise;
    let manifest = serde_json::json!({ "config": world.config, "summary": summary });
    let path = out_dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest)?;
    fs::write(&path, text + "\n").map_err(|source| SynthError::Io { path, source })?;
    Ok(summary)
}
