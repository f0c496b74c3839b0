//! `tongban serve` as a service manager runs it: started, used, and stopped with SIGTERM, after
//! which it has answered what it was asked and left the store closed; a second SIGTERM stops it
//! at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const INTAKE_KEY: &str = "serve-test-key";

/// A `tongban serve` on a free port of 127.0.0.1 over the SQLite store in `dir`, with the
/// intake push endpoint on, and its address once it says it is listening.
fn start(
    dir: &Path,
) -> (
    Child,
    BufReader<ChildStdout>,
    BufReader<ChildStderr>,
    String,
) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_tongban"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--intake-key",
            INTAKE_KEY,
        ])
        .env("TONGBAN_DATABASE", database(dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let err = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "Tongban listening on http://127.0.0.1:PORT/ (console), …"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (server, out, err, addr)
}

fn database(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("t.db").display())
}

fn signal(server: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Reads the server's error output up to the line that says it heard the stop: from then on
/// the stop is under way, whatever the test does next.
fn wait_for_stopping(err: &mut BufReader<ChildStderr>) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the server's error output ended before it said it was stopping"
        );
        if line.contains("Tongban stopping") {
            return;
        }
    }
}

fn wait_for_exit(server: &mut Child, within: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > within {
            let _ = server.kill();
            panic!("the server did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rest_of(out: impl Read) -> String {
    let mut s = String::new();
    BufReader::new(out).read_to_string(&mut s).unwrap();
    s
}

fn logs_are_empty(dir: &Path) {
    for log in ["t.db-wal", "t.audit.db-wal"] {
        let len = std::fs::metadata(dir.join(log)).map_or(0, |m| m.len());
        assert_eq!(len, 0, "{log} left with {len} bytes");
    }
}

/// Three grid workers' records (synthetic) as the department's system would push them.
fn pushed_batch() -> String {
    (1..=3)
        .map(|i| {
            format!(
                "{{\"cjbh\":\"serve-test-{i}\",\"wgbm\":\"320576052001001\",\"xm\":\"陈悦兰\",\
                 \"zjhm\":\"\",\"xb\":\"女\",\"lxdh\":\"\",\
                 \"dz\":\"江苏省苏州市苏州工业园区唯亭街道青剑湖花园1幢1单元10{i}室\",\
                 \"rylx\":\"流动人口\",\"cjrq\":\"2026-05-29\",\"cjy\":\"网格员01001\"}}\n"
            )
        })
        .collect()
}

/// A push whose body has only half arrived: the request is in flight until the rest is sent.
/// It asks to be told to go on (`Expect: 100-continue`) and waits for that before sending half
/// its body, so the server has begun the request, not just taken the connection.
fn half_sent_push(addr: &str, body: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /api/intake/grid_collection/batches HTTP/1.1\r\nHost: t\r\n\
         Authorization: Bearer {INTAKE_KEY}\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {}\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    conn.write_all(&body.as_bytes()[..body.len() / 2]).unwrap();
    conn.flush().unwrap();
    conn
}

fn register_grid_collection(dir: &Path) {
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/synth/grid_collection.toml");
    let added = Command::new(env!("CARGO_BIN_EXE_tongban"))
        .args(["source", "add"])
        .arg(&mapping)
        .env("TONGBAN_DATABASE", database(dir))
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
}

/// The server exits 0 within 30 s, says it stopped, and leaves the store's logs empty.
fn stops_cleanly(
    mut server: Child,
    out: BufReader<ChildStdout>,
    err: BufReader<ChildStderr>,
    dir: &Path,
) {
    let status = wait_for_exit(&mut server, Duration::from_secs(30));
    let (rest, err) = (rest_of(out), rest_of(err));
    assert!(status.success(), "{status}: {rest}{err}");
    assert!(rest.contains("Tongban stopped"), "{rest}{err}");
    logs_are_empty(dir);
}

/// A server over a store where grid_collection is registered, sent SIGTERM while a push to it
/// is half sent, and checked to be still running (stopping, waiting for the push) 300 ms later.
struct StoppingWithPush {
    server: Child,
    out: BufReader<ChildStdout>,
    err: BufReader<ChildStderr>,
    push: TcpStream,
    body: String,
}

fn stopping_with_a_push_in_flight(dir: &Path) -> StoppingWithPush {
    register_grid_collection(dir);
    let (mut server, out, mut err, addr) = start(dir);
    let body = pushed_batch();
    let push = half_sent_push(&addr, &body);
    signal(&server, "-TERM");
    wait_for_stopping(&mut err);
    std::thread::sleep(Duration::from_millis(300));
    if let Some(status) = server.try_wait().unwrap() {
        panic!(
            "the server stopped ({status}) with a request in flight: {}{}",
            rest_of(out),
            rest_of(err)
        );
    }
    StoppingWithPush {
        server,
        out,
        err,
        push,
        body,
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (server, out, err, addr) = start(dir.path());

    // A request answered, and its keep-alive connection left open and idle: stopping closes it
    // rather than waiting for the client.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /api/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    signal(&server, "-TERM");
    stops_cleanly(server, out, err, dir.path());
}

/// A department's push whose body is still arriving when SIGTERM comes is answered, and what it
/// delivered is stored, before the server stops.
#[cfg(unix)]
#[test]
fn a_request_in_flight_is_answered_before_the_server_stops() {
    let dir = tempfile::tempdir().unwrap();
    let StoppingWithPush {
        server,
        out,
        err,
        mut push,
        body,
    } = stopping_with_a_push_in_flight(dir.path());
    push.write_all(&body.as_bytes()[body.len() / 2..]).unwrap();
    let answer = rest_of(push);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"complete\""), "{answer}");

    stops_cleanly(server, out, err, dir.path());
    let listed = Command::new(env!("CARGO_BIN_EXE_tongban"))
        .args(["source", "list"])
        .env("TONGBAN_DATABASE", database(dir.path()))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let grid = listed
        .lines()
        .find(|l| l.starts_with("grid_collection"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(grid.contains(" 3 current"), "{grid}");
}

/// A second SIGTERM stops the server at once, even while a client keeps a request open.
#[cfg(unix)]
#[test]
fn a_second_sigterm_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let StoppingWithPush {
        mut server,
        out: _out,
        err,
        push: _stuck,
        ..
    } = stopping_with_a_push_in_flight(dir.path());
    signal(&server, "-TERM");
    let status = wait_for_exit(&mut server, Duration::from_secs(10));
    assert_eq!(status.code(), Some(143), "{status}");
    assert!(rest_of(err).contains("stopped at once"));
}
