//! `tongban bench api` measures both servers in rounds that alternate between them, so that a
//! machine whose speed drifts slows both alike; these tests run it small, with this process's
//! own client, and check that every round loaded both servers and that a bad cut is refused.

mod common;

#[test]
fn each_round_loads_the_bare_handler_then_the_governed_server() {
    let out = common::succeeds(common::tongban().args([
        "bench",
        "api",
        "--persons",
        "200",
        "--connections",
        "2",
        "--seconds",
        "2",
        "--rounds",
        "2",
    ]));
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("in 2 rounds of 1 s"),
        "the rounds are announced:\n{out}"
    );
    let by_round = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("governed / bare by round:"))
        .unwrap_or_else(|| panic!("no ratio by round:\n{out}"));
    let ratios: Vec<f64> = by_round
        .split_whitespace()
        .map(|r| r.parse().unwrap())
        .collect();
    assert_eq!(ratios.len(), 2, "one ratio a round:\n{out}");
    assert!(
        ratios.iter().all(|r| *r > 0.0),
        "both servers answered in every round:\n{out}"
    );
    let p99s = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("governed p99 by round (ms):"))
        .unwrap_or_else(|| panic!("no p99 by round:\n{out}"));
    assert_eq!(
        p99s.split_whitespace().count(),
        2,
        "one p99 a round:\n{out}"
    );
    // Where /proc is (Linux, as in CI), each round also says what the rest of the machine did.
    if std::path::Path::new("/proc/stat").exists() {
        for what in [
            "while governed, cores busy outside this process and wrk by round:",
            "while governed, cores stolen by the hypervisor by round:",
        ] {
            let cores: Vec<f64> = out
                .lines()
                .find_map(|l| l.trim().strip_prefix(what))
                .unwrap_or_else(|| panic!("no line {what:?}:\n{out}"))
                .split_whitespace()
                .map(|c| c.parse().unwrap())
                .collect();
            assert_eq!(cores.len(), 2, "one figure a round for {what:?}:\n{out}");
            assert!(
                cores.iter().all(|c| (0.0..=64.0).contains(c)),
                "cores are a share of the machine:\n{out}"
            );
        }
    }
    for server in ["bare axum handler", "governed lookup + audit"] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(server))
            .unwrap_or_else(|| panic!("no line for {server}:\n{out}"));
        assert!(line.contains(", 0 errors)"), "{line}");
    }
}

#[test]
fn rounds_must_fit_the_seconds() {
    for (seconds, rounds) in [("2", "3"), ("2", "0")] {
        let out = common::tongban()
            .args(["bench", "api", "--seconds", seconds, "--rounds", rounds])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("--seconds {seconds} --rounds {rounds}"))
                && err.contains("at most --seconds"),
            "{err}"
        );
    }
}
