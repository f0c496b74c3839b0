//! `tongban serve` as a service manager runs it: started, used, and stopped with SIGTERM, after
//! which it has answered what it was asked and left the store closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut server = Command::new(env!("CARGO_BIN_EXE_tongban"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TONGBAN_DATABASE", format!("sqlite://{}", db.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "Tongban listening on http://127.0.0.1:PORT/ (console), …"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    // A request answered, and its keep-alive connection left open and idle: stopping closes it
    // rather than waiting for the client.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /api/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = server.kill();
            panic!("the server did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {rest}{err}");
    assert!(rest.contains("Tongban stopped"), "{rest}{err}");
    for log in ["t.db-wal", "t.audit.db-wal"] {
        let len = std::fs::metadata(dir.path().join(log)).map_or(0, |m| m.len());
        assert_eq!(len, 0, "{log} left with {len} bytes");
    }
}
