//! `tongban link` end to end: FEBRL-style records from our generator, deduplicated and linked
//! with the shipped example configuration, scored against the truth in the record ids.

mod common;

use std::path::Path;

fn write_records(path: &Path, seed: u64, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    tongban_synth::febrl::write(seed, n, &mut f).unwrap();
    std::io::Write::flush(&mut f).unwrap();
}

fn link(args: &[&str]) -> serde_json::Value {
    let out = common::succeeds(
        common::tongban()
            .arg("link")
            .args(["--config", "examples/febrl/febrl.toml", "--json"])
            .args(args),
    );
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn dedupe_finds_the_duplicates_and_writes_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    let output = dir.path().join("clusters.csv");
    let pairs = dir.path().join("pairs.csv");
    write_records(&input, 3, 20_000);
    let s = link(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--pairs",
        pairs.to_str().unwrap(),
    ]);
    let f1 = s["scores"]["pairwise"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.99, "pairwise F1 {f1}");
    assert!(s["scores"]["cluster"]["f1"].as_f64().unwrap() > 0.99);

    // One output row per input record; the cluster id is a record id of the same cluster.
    let text = std::fs::read_to_string(&output).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rec_id,cluster_id"));
    let rows: Vec<(String, String)> = lines
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    assert_eq!(rows.len(), 20_000);
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert!(rows.iter().all(|(_, c)| ids.contains(c.as_str())));
    // A duplicate shares its original's cluster far more often than not.
    let cluster: std::collections::HashMap<&str, &str> =
        rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let dups: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|i| i.contains("-dup-"))
        .collect();
    let together = dups
        .iter()
        .filter(|d| {
            let entity = d.split("-dup-").next().unwrap();
            cluster.get(format!("{entity}-org").as_str()) == cluster.get(*d)
        })
        .count();
    assert!(
        together as f64 > 0.98 * dups.len() as f64,
        "{together} of {}",
        dups.len()
    );
    let pairs_text = std::fs::read_to_string(&pairs).unwrap();
    assert!(
        pairs_text.starts_with("rec_id_l,rec_id_r,match_weight,match_probability,same_cluster")
    );
}

#[test]
fn link_mode_pairs_only_across_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.csv");
    write_records(&all, 5, 6_000);
    // Originals to one file, their first duplicates to the other, as FEBRL 4 is built.
    let text = std::fs::read_to_string(&all).unwrap();
    let header = text.lines().next().unwrap();
    let a: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.contains("-org,"))
        .collect();
    let b: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.contains("-dup-0,"))
        .collect();
    let (pa, pb) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(&pa, format!("{header}\n{}\n", a.join("\n"))).unwrap();
    std::fs::write(&pb, format!("{header}\n{}\n", b.join("\n"))).unwrap();
    let output = dir.path().join("clusters.csv");
    let s = link(&[
        "--input",
        pa.to_str().unwrap(),
        "--input",
        pb.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(s["mode"], "link");
    let f1 = s["scores"]["pairwise"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.99, "pairwise F1 {f1}");
    let out = std::fs::read_to_string(&output).unwrap();
    assert!(out.starts_with("rec_id,cluster_id,input\n"));
    assert_eq!(out.lines().count(), 1 + a.len() + b.len());
}

#[test]
fn bad_config_and_input_say_where() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("link.toml");
    std::fs::write(
        &cfg,
        "id_column = \"rec_id\"\n[[comparison]]\ncolumn = \"surname\"\nkind = \"soundex\"\n",
    )
    .unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "rec_id,surname\nr1,lee\n").unwrap();
    let out = common::tongban()
        .args([
            "link",
            "--config",
            cfg.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
        ])
        .arg(dir.path().join("o.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("link.toml:4") && err.contains("soundex"),
        "{err}"
    );
}
