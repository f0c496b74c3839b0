//! `tongban bench api`: governed single-person lookups over HTTP on 127.0.0.1 with the audit log
//! on, against a bare axum handler measured in the same run.
//!
//! The store is filled with synthetic persons (golden records, a room and a building each, so
//! that every lookup finds the person's community), a clerk with a token and an approved grant
//! for the phone; then each server is loaded by keep-alive connections from this process (or
//! from wrk) for a fixed time. Client and server share the machine's cores, equally for both
//! servers.
//!
//! The measured time is cut into rounds, each loading the bare handler and then the governed
//! server. This VM's speed drifts by a quarter within minutes, and with ten seconds of one
//! followed by ten of the other the ratio between them moved from 0.40 to 0.64 between runs of
//! the same binary (session 25); five rounds of two seconds gave 0.58, 0.58 and 0.59 in the
//! same stretch, and each round's ratio is printed so that the spread shows.

use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_store::{EntityLink, GoldenRecord, Relation, Store};

pub struct Options {
    pub persons: usize,
    pub connections: usize,
    /// Seconds of measured load on each server, over all rounds.
    pub seconds: u64,
    /// Rounds the measured seconds are cut into; each loads the bare handler, then the governed
    /// server.
    pub rounds: u64,
    pub database: Option<String>,
    /// Load the servers with wrk (a separate process, one thread) instead of this process's
    /// own client.
    pub wrk: bool,
}

/// What loading one server for a while came to: requests per second, answers other than 2xx
/// (and requests that failed), and how many requests took each latency (in µs), the whole
/// distribution.
struct Loaded {
    rps: f64,
    errors: u64,
    latencies: Vec<(u64, u64)>,
}

/// Writes the wrk script that GETs `paths` in turn with the token, from the start at every run
/// (the order the bench's own client takes too: one list, read by wrk from a file beside the
/// script). Its `done` prints every latency wrk recorded with its count, so that rounds can be
/// merged into one distribution rather than their percentiles.
fn wrk_script(
    scratch: &std::path::Path,
    paths: &[String],
    token: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let list = scratch.join("paths.txt");
    std::fs::write(&list, paths.join("\n"))?;
    let script = scratch.join("bench.lua");
    std::fs::write(
        &script,
        format!(
            "local paths = {{}}\nfor line in io.lines({list:?}) do paths[#paths + 1] = line end\nlocal i = 0\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\ndone = function(summary, latency, requests)\n  for i = 1, #latency do\n    local v, c = latency(i)\n    io.write(string.format(\"latency_us %d %d\\n\", v, c))\n  end\nend\n",
            list = list.display().to_string(),
        ),
    )?;
    Ok(script)
}

/// Load `addr` with wrk running `script` for `seconds` over `connections` connections.
fn wrk(
    addr: std::net::SocketAddr,
    script: &std::path::Path,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Loaded> {
    let out = std::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}/"))
        .output()
        .context("running wrk (install Debian's wrk package)")?;
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// What wrk printed, with the lines of the script's `done`, as [`Loaded`].
fn parse_wrk(text: &str) -> anyhow::Result<Loaded> {
    let find = |prefix: &str| text.lines().map(str::trim).find(|l| l.starts_with(prefix));
    let rps: f64 = find("Requests/sec:")
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("wrk gave no rate of requests: {text}"))?;
    let errors: u64 = find("Non-2xx or 3xx responses:")
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let latencies = text
        .lines()
        .filter_map(|l| l.strip_prefix("latency_us "))
        .filter_map(|l| {
            let (v, c) = l.split_once(' ')?;
            Some((v.parse().ok()?, c.trim().parse().ok()?))
        })
        .collect();
    Ok(Loaded {
        rps,
        errors,
        latencies,
    })
}

/// The sum in seconds of `count` fields of a `/proc/…/stat` line, from the `first`-th after the
/// parenthesised name (counting from 0; the name may hold spaces and parentheses, so the line
/// is cut at its last `)`): the CPU times there are clock ticks of 1/100 s (USER_HZ, fixed by
/// the kernel's ABI). utime is the 12th field after the name, at 11.
fn stat_seconds(stat: &str, first: usize, count: usize) -> Option<f64> {
    let ticks: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(first)
        .take(count)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    Some(ticks / 100.0)
}

/// CPU time (user + system, seconds) each thread of this process has used, by thread id, with
/// its name; empty where /proc is not there.
fn thread_cpu() -> std::collections::HashMap<String, (String, f64)> {
    let mut threads = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in dir.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // utime and stime.
        let used = stat_seconds(&stat, 11, 2).unwrap_or(0.0);
        threads.insert(
            task.file_name().to_string_lossy().into_owned(),
            (name.trim().to_string(), used),
        );
    }
    threads
}

/// The machine's CPU time in seconds as /proc says it: busy (every state but idle, I/O wait
/// and steal), stolen by the hypervisor, and this process's own with that of the children it
/// waited for (wrk); `None` where /proc is not there.
#[derive(Clone, Copy)]
struct MachineCpu {
    busy: f64,
    stolen: f64,
    own: f64,
}

impl MachineCpu {
    fn now() -> Option<MachineCpu> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<f64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is counted in user).
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Clock ticks of 1/100 s, as in `stat_seconds`.
        Some(MachineCpu {
            busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / 100.0,
            stolen: at(7) / 100.0,
            // utime, stime, cutime and cstime.
            own: stat_seconds(&own_stat, 11, 4)?,
        })
    }

    /// Cores kept busy from `self` to `later` over `seconds` outside this process and wrk (the
    /// kernel's writeback of dirty pages, other programs, PostgreSQL's backends), and cores
    /// the hypervisor took.
    fn outside_since(&self, later: &MachineCpu, seconds: u64) -> (f64, f64) {
        let s = seconds.max(1) as f64;
        let outside = (later.busy - self.busy) - (later.own - self.own);
        (
            outside.max(0.0) / s,
            (later.stolen - self.stolen).max(0.0) / s,
        )
    }
}

/// Adds the CPU time each kind of thread (by name) has used since `before` to `into`: where
/// the server's time goes (tokio workers, the SQLite writer thread, sqlx's connection threads).
fn add_cpu_since(
    into: &mut std::collections::BTreeMap<String, f64>,
    before: &std::collections::HashMap<String, (String, f64)>,
) {
    for (id, (name, t)) in thread_cpu() {
        let t0 = before.get(&id).map_or(0.0, |b| b.1);
        *into.entry(name).or_default() += t - t0;
    }
}

/// The cores each kind of thread kept busy, given the CPU time each used over `seconds`.
fn cores_busy(cpu: &std::collections::BTreeMap<String, f64>, seconds: f64) -> String {
    let parts: Vec<String> = cpu
        .iter()
        .map(|(name, used)| (name, used / seconds.max(1.0)))
        .filter(|(_, cores)| *cores >= 0.005)
        .map(|(name, cores)| format!("{name} {cores:.2}"))
        .collect();
    if parts.is_empty() {
        "not measured".into()
    } else {
        format!("(cores busy): {}", parts.join(", "))
    }
}

/// The latency in ms below which the fraction `q` of the requests counted in `latencies` (how
/// many took each latency, in µs) were answered; 0 for none.
fn percentile(latencies: &std::collections::BTreeMap<u64, u64>, q: f64) -> f64 {
    let total: u64 = latencies.values().sum();
    let rank = ((total.saturating_sub(1)) as f64 * q).round() as u64;
    let mut seen = 0;
    for (&us, &count) in latencies {
        seen += count;
        if seen > rank {
            return us as f64 / 1000.0;
        }
    }
    0.0
}

/// What one server's load came to over every round.
#[derive(Default)]
struct Tally {
    /// Requests answered.
    answered: f64,
    /// How many requests took each latency, in µs.
    latencies: std::collections::BTreeMap<u64, u64>,
    /// Answers other than 2xx, and requests that failed.
    errors: u64,
    /// Requests per second in each round.
    by_round: Vec<f64>,
    /// Each round's own p99 in ms, so that a slow round shows.
    p99_by_round: Vec<f64>,
    /// Each round's cores busy outside this process and wrk, and stolen by the hypervisor,
    /// which a slow round may be explained by.
    outside_by_round: Vec<(f64, f64)>,
    /// CPU seconds each kind of thread of this process used while this server was loaded.
    cpu: std::collections::BTreeMap<String, f64>,
}

impl Tally {
    /// The latency in ms below which the fraction `q` of the requests were answered.
    fn percentile(&self, q: f64) -> f64 {
        percentile(&self.latencies, q)
    }

    /// Adds one round of `seconds`: its requests, errors and latencies.
    fn add_round(&mut self, round: Loaded, seconds: u64) {
        let mut latencies = std::collections::BTreeMap::new();
        for (us, count) in round.latencies {
            *latencies.entry(us).or_default() += count;
            *self.latencies.entry(us).or_default() += count;
        }
        self.answered += round.rps * seconds as f64;
        self.errors += round.errors;
        self.by_round.push(round.rps);
        self.p99_by_round.push(percentile(&latencies, 0.99));
    }

    /// Prints the rate over `seconds` measured, the latencies over every request of every
    /// round, and the CPU.
    fn report(&self, name: &str, seconds: f64, own_client: bool) {
        let rps = self.answered / seconds;
        let (p50, p99) = (self.percentile(0.5), self.percentile(0.99));
        println!(
            "  {name:<28} {rps:>9.0} req/s   p50 {p50:.2} ms   p99 {p99:.2} ms   ({} answered, {} errors)",
            self.answered as u64, self.errors
        );
        // This process's own client runs on the same workers as the servers.
        let whose = if own_client {
            "CPU of client and server"
        } else {
            "server CPU"
        };
        println!("  {:<28} {whose} {}", "", cores_busy(&self.cpu, seconds));
    }
}

/// Load before measuring, on each server. Each connection's first request checks the token
/// with Argon2 (about 50 ms of a core), so 32 connections take the first second or more; with
/// two seconds the governed server was still reading its 20,000 persons for the first time
/// during the first second measured (perf: golden records and communities read from the store
/// only then).
const WARM_UP_SECONDS: u64 = 5;

/// The longest warm-up a server gets (see [`warm_up`]).
const WARM_UP_MOST_SECONDS: u64 = 80;

/// Loads `addr` unmeasured until one run of the load has asked for every person: each run
/// starts at the first person and goes through them in a fixed order, so a run that answered
/// fewer requests than there are persons left the rest to be read from the store for the first
/// time in the first measured round. Five seconds did not always do it: on PostgreSQL the cold
/// governed server answered 12.6 k of 20,000 persons in them (`pg_stat_user_tables`), and the
/// first round's ratio was often the lowest. Runs double in length up to
/// [`WARM_UP_MOST_SECONDS`] (a fifth more requests than persons, as the bench's own client
/// spreads them over connections that may not keep pace with each other).
async fn warm_up(load: &Load, addr: std::net::SocketAddr, persons: usize) -> anyhow::Result<()> {
    let mut seconds = WARM_UP_SECONDS;
    loop {
        let run = load.run(addr, seconds).await?;
        if run.rps * seconds as f64 >= persons as f64 * 1.2 || seconds >= WARM_UP_MOST_SECONDS {
            return Ok(());
        }
        seconds *= 2;
    }
}

fn key(prefix: char, i: usize) -> String {
    format!("{prefix}{i:016x}")
}

async fn fill(store: &dyn Store, persons: usize) -> anyhow::Result<()> {
    fn kept(value: &str) -> tongban_libraries::golden_text::Kept<'_> {
        tongban_libraries::golden_text::Kept {
            value,
            source: "police_household",
            record_key: "k",
            role: "subject",
            date: "2020-01-01",
            agreeing: 1,
            disagreeing: 0,
        }
    }
    let mut links = Vec::new();
    let mut golden = Vec::new();
    let mut relations = Vec::new();
    let mut rooms = Vec::new();
    for i in 0..persons {
        let p = key('P', i);
        links.push(EntityLink {
            source_id: "police_household".into(),
            record_key: i.to_string(),
            role: "subject".into(),
            entity_key: p.clone(),
        });
        // Synthetic values only: a made-up name and numbers derived from the index.
        // Stored as the libraries store it (`golden_text`), so the first read of each spells
        // its provenance out as a real store's would.
        let (name, phone, id) = (
            format!("测试{i}"),
            format!("139{i:08}"),
            format!("320576{i:012}"),
        );
        let record = tongban_libraries::golden_text::golden_text(
            &p,
            1,
            &["police_household"],
            &[
                ("name", kept(&name)),
                ("sex", kept("1")),
                ("phone", kept(&phone)),
                ("citizen_id", kept(&id)),
            ],
        );
        golden.push(GoldenRecord {
            entity_key: p.clone(),
            record,
        });
        let room = key('R', i / 3);
        relations.push(Relation {
            from_key: p,
            relation: "lives_in".into(),
            to_key: room.clone(),
            source_id: "police_household".into(),
            record_key: i.to_string(),
        });
        if i % 3 == 0 {
            rooms.push(room);
        }
    }
    for (j, room) in rooms.iter().enumerate() {
        relations.push(Relation {
            from_key: room.clone(),
            relation: "in_building".into(),
            to_key: key('B', j / 50),
            source_id: "housing_rooms".into(),
            record_key: j.to_string(),
        });
    }
    let buildings: Vec<GoldenRecord> = (0..rooms.len().div_ceil(50))
        .map(|b| GoldenRecord {
            entity_key: key('B', b),
            record: serde_json::json!({"key": key('B', b), "community": format!("3205760520{:02}", 1 + b % 35)}).to_string(),
        })
        .collect();
    store
        .replace_resolution(
            "person",
            0,
            "{}",
            &EntityLink::all_borrowed(&links),
            &golden,
        )
        .await?;
    store
        .replace_resolution("building", 0, "{}", &[], &buildings)
        .await?;
    store
        .replace_relations(&Relation::all_borrowed(&relations))
        .await?;
    Ok(())
}

/// Keep-alive GETs of `paths` (round robin) from `connections` connections for `seconds`;
/// returns (requests answered, latencies).
async fn load(
    addr: std::net::SocketAddr,
    paths: Arc<Vec<String>>,
    token: Arc<String>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<(u64, Vec<Duration>, u64)> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (paths, token) = (paths.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                return (lat, 1);
            };
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; 64 * 1024];
            let mut i = c;
            while Instant::now() < until {
                let path = &paths[i % paths.len()];
                i += connections;
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
                );
                let t = Instant::now();
                if s.write_all(req.as_bytes()).await.is_err() {
                    errors += 1;
                    break;
                }
                // Read the head, then as many body bytes as Content-Length says.
                let mut have = 0usize;
                let (head_end, length, ok) = loop {
                    let Ok(n) = s.read(&mut buf[have..]).await else {
                        break (0, 0, false);
                    };
                    if n == 0 {
                        break (0, 0, false);
                    }
                    have += n;
                    if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length, head.starts_with("http/1.1 200"));
                    }
                };
                if head_end == 0 {
                    errors += 1;
                    break;
                }
                while have < head_end + length {
                    match s.read(&mut buf[have..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => have += n,
                    }
                }
                if ok {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    Ok((all.len() as u64, all, errors))
}

/// How the servers are loaded: by wrk running its script, or by this process's own client.
enum Load {
    Wrk {
        script: std::path::PathBuf,
        connections: usize,
    },
    Own {
        paths: Arc<Vec<String>>,
        token: Arc<String>,
        connections: usize,
    },
}

impl Load {
    /// Loads `addr` for `seconds`.
    async fn run(&self, addr: std::net::SocketAddr, seconds: u64) -> anyhow::Result<Loaded> {
        match self {
            Load::Wrk {
                script,
                connections,
            } => {
                let (script, connections) = (script.clone(), *connections);
                tokio::task::spawn_blocking(move || wrk(addr, &script, connections, seconds))
                    .await?
            }
            Load::Own {
                paths,
                token,
                connections,
            } => {
                let (n, lat, errors) =
                    load(addr, paths.clone(), token.clone(), *connections, seconds).await?;
                Ok(Loaded {
                    rps: n as f64 / seconds as f64,
                    errors,
                    latencies: lat.iter().map(|d| (d.as_micros() as u64, 1)).collect(),
                })
            }
        }
    }
}

pub fn run(o: Options) -> anyhow::Result<()> {
    if o.rounds == 0 || o.seconds < o.rounds {
        anyhow::bail!(
            "--seconds {} --rounds {}: each round loads each server for a whole number of \
             seconds, so --rounds must be at least 1 and at most --seconds",
            o.seconds,
            o.rounds
        );
    }
    let slice = o.seconds / o.rounds;
    let scratch = tempfile::tempdir()?;
    let database = o
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", scratch.path().join("api.db").display()));
    let rt = super::store_args::runtime()?;
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::from(
            tongban_store::open(&database)
                .await
                .with_context(|| format!("opening {}", super::store_args::redact(&database)))?,
        );
        let t = Instant::now();
        fill(store.as_ref(), o.persons).await?;
        println!(
            "bench api: {} synthetic persons stored in {:.1} s ({})",
            o.persons,
            t.elapsed().as_secs_f64(),
            super::store_args::redact(&database)
        );
        use tongban_sharing::identity::{Identities, Role};
        let ids = Identities::new(store.clone());
        ids.add_department("minzheng", "民政局", "320576").await?;
        ids.add_department("bureau", "大数据局", "320576").await?;
        ids.add_user(
            "clerk",
            "测试",
            Some("minzheng"),
            Role::WindowClerk,
            "320576052",
        )
        .await?;
        ids.add_user(
            "admin",
            "测试",
            Some("bureau"),
            Role::DataBureauAdmin,
            "320576",
        )
        .await?;
        let (_, token) = ids.issue_token("clerk", None).await?;
        let now = tongban_store::now_millis();
        let clerk = ids.authenticate(&token, now).await?;
        let (_, admin_token) = ids.issue_token("admin", None).await?;
        let admin = ids.authenticate(&admin_token, now).await?;
        let catalogue = tongban_sharing::catalogue::catalogue(store.as_ref()).await?;
        let g = tongban_sharing::policy::request(
            store.as_ref(),
            &catalogue,
            &clerk,
            tongban_sharing::policy::Request {
                resource: "library.person".into(),
                fields: vec!["phone".into()],
                purpose: "bench".into(),
                legal_basis: "bench".into(),
                scope: "320576052".into(),
                days: 1,
                daily_quota: u32::MAX,
            },
        )
        .await?;
        tongban_sharing::policy::decide_stored(store.as_ref(), &catalogue, &admin, &g.id, true, "")
            .await?;
        let node = tongban_sharing::audit::generate_key()
            .map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let sharing = tongban_server::governed::Sharing::new(
            Identities::new(store.clone()),
            tongban_sharing::writer::AuditLog::start(store.clone(), node, Default::default())
                .await?,
            catalogue,
        );
        let state = tongban_server::AppState {
            store: store.clone(),
            intake_key: None,
            max_body: 4096,
            sharing: Some(Arc::new(sharing)),
        };
        let governed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let governed_addr = governed.local_addr()?;
        tokio::spawn(tongban_server::serve_on(governed, state));
        // The bare handler: the same framework, a JSON body of similar size, no work.
        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let bare_addr = bare.local_addr()?;
        let app = axum::Router::new().route(
            "/api/persons/{key}",
            axum::routing::get(
                |axum::extract::Path(k): axum::extract::Path<String>| async move {
                    axum::Json(serde_json::json!({"key": k, "fields": {"name": {"masked": "测*"}}}))
                },
            ),
        );
        tokio::spawn(async move { axum::serve(bare, app).await });

        let paths: Arc<Vec<String>> = Arc::new(
            (0..o.persons)
                .map(|i| format!("/api/persons/{}", key('P', (i * 7919) % o.persons)))
                .collect(),
        );
        let token = Arc::new(token);
        println!(
            "  {} keep-alive connections, {} s on each server after a warm-up of at least {WARM_UP_SECONDS} s that asks for every person, on {} cores",
            o.connections,
            slice * o.rounds,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        println!(
            "  in {} rounds of {slice} s, each loading the bare handler and then the governed server",
            o.rounds
        );
        if o.wrk {
            println!("  (the load comes from wrk, one thread, in a separate process)");
        }
        let load = if o.wrk {
            Load::Wrk {
                script: wrk_script(scratch.path(), &paths, &token)?,
                connections: o.connections,
            }
        } else {
            Load::Own {
                paths,
                token,
                connections: o.connections,
            }
        };
        let servers = [bare_addr, governed_addr];
        for addr in servers {
            // Some seconds unmeasured first: the token's one Argon2 check per connection and
            // the cold caches are not what a running server spends its time on.
            warm_up(&load, addr, o.persons).await?;
        }
        let mut tallies = [Tally::default(), Tally::default()];
        for _ in 0..o.rounds {
            for (tally, addr) in tallies.iter_mut().zip(servers) {
                let before = thread_cpu();
                let machine_before = MachineCpu::now();
                tally.add_round(load.run(addr, slice).await?, slice);
                add_cpu_since(&mut tally.cpu, &before);
                if let (Some(b), Some(a)) = (machine_before, MachineCpu::now()) {
                    tally.outside_by_round.push(b.outside_since(&a, slice));
                }
            }
        }
        let measured = (slice * o.rounds) as f64;
        for (name, tally) in ["bare axum handler", "governed lookup + audit"]
            .iter()
            .zip(&tallies)
        {
            tally.report(name, measured, !o.wrk);
        }
        let [bare, governed] = &tallies;
        let (bare_rps, governed_rps) = (bare.answered / measured, governed.answered / measured);
        let by_round: Vec<String> = bare
            .by_round
            .iter()
            .zip(&governed.by_round)
            .map(|(b, g)| format!("{:.2}", g / b.max(1.0)))
            .collect();
        println!("  governed / bare by round: {}", by_round.join(" "));
        let p99s: Vec<String> = governed
            .p99_by_round
            .iter()
            .map(|p| format!("{p:.1}"))
            .collect();
        println!("  governed p99 by round (ms): {}", p99s.join(" "));
        if !governed.outside_by_round.is_empty() {
            let rounds = |pick: fn(&(f64, f64)) -> f64| -> Vec<String> {
                governed
                    .outside_by_round
                    .iter()
                    .map(|o| format!("{:.2}", pick(o)))
                    .collect()
            };
            println!(
                "  while governed, cores busy outside this process and wrk by round: {}",
                rounds(|o| o.0).join(" ")
            );
            println!(
                "  while governed, cores stolen by the hypervisor by round: {}",
                rounds(|o| o.1).join(" ")
            );
        }
        let entries = store.last_audit().await?.map_or(0, |e| e.seq);
        println!(
            "  governed / bare: {:.2}; audit entries written: {entries}",
            governed_rps / bare_rps.max(1.0)
        );
        if let Some(b) = super::bench::peak_rss_bytes() {
            println!("  peak memory {:.1} MiB (VmHWM)", b as f64 / 1048576.0);
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis_of_the_name() {
        // pid, name (with a space and a parenthesis), then state and fields 4 to 17.
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 150 50 7 3 0";
        assert_eq!(stat_seconds(stat, 11, 2), Some(2.0));
        assert_eq!(stat_seconds(stat, 11, 4), Some(2.1));
        assert_eq!(stat_seconds("no name here", 11, 2), None);
    }

    #[test]
    fn wrk_output_gives_the_rate_the_errors_and_every_latency() {
        let text = "Running 2s test @ http://127.0.0.1:41000/\n  1 threads and 32 connections\n\
            \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
            \x20   Latency     1.01ms    0.80ms  17.04ms   91.00%\n\
            \x20 50290 requests in 2.00s, 30.10MB read\n\
            \x20 Non-2xx or 3xx responses: 3\n\
            Requests/sec:  25145.02\n\
            Transfer/sec:     15.05MB\n\
            latency_us 412 7\nlatency_us 980 50000\nlatency_us 17040 1\n";
        let run = parse_wrk(text).unwrap();
        assert_eq!(run.rps, 25145.02);
        assert_eq!(run.errors, 3);
        assert_eq!(run.latencies, vec![(412, 7), (980, 50000), (17040, 1)]);
        // Without a rate wrk did not run as expected, and that is said rather than taken as 0.
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
    }

    #[test]
    fn percentiles_come_from_every_request_of_every_round() {
        let mut tally = Tally::default();
        // Two rounds: 98 fast requests and 2 slow ones in all.
        for (us, count) in [(500, 60), (20_000, 1), (500, 38), (30_000, 1)] {
            *tally.latencies.entry(us).or_default() += count;
        }
        assert_eq!(tally.percentile(0.5), 0.5);
        assert_eq!(tally.percentile(0.98), 0.5);
        assert_eq!(tally.percentile(0.99), 20.0);
        assert_eq!(tally.percentile(1.0), 30.0);
        assert_eq!(Tally::default().percentile(0.99), 0.0);
    }
}
