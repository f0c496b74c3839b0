//! The audit chain: every read of personal data and every administrative change, appended to a
//! log that shows any later change to it.
//!
//! Each entry carries the hash of the one before it (a hash chain), so changing, deleting,
//! inserting or reordering an entry breaks the chain where it happened. An attacker who rewrites
//! the whole chain after the change defeats the chain alone; periodic checkpoints defeat that:
//! a checkpoint is the Merkle root of a range of entries, signed with the node's Ed25519 key,
//! and a rewritten range no longer has the signed root. [`verify`] reports every break with the
//! sequence number where it is. Hashes are BLAKE3 over an unambiguous, length-prefixed encoding
//! of the fields (not JSON, whose spelling could vary). Pure: entries in, entries or findings
//! out; storing them is the store's job, batching them the writer's ([`crate::writer`]).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// Who: a user or token id, or "cli:<os user>" for the command line.
    pub actor: String,
    /// What: "read.person", "ingest", "grant.approve", …
    pub action: String,
    /// On what: an entity key, a source id, a grant id.
    pub subject: String,
    /// Anything else worth keeping (fields read, purpose, grant), as JSON text.
    pub detail: String,
}

/// A chained entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    #[serde(flatten)]
    pub event: Event,
    /// The previous entry's hash (hex), [`GENESIS`] for the first.
    pub prev: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// A signed Merkle root over entries `from_seq..=to_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub from_seq: i64,
    pub to_seq: i64,
    /// Hex of the Merkle root of the entries' hashes.
    pub root: String,
    /// Hex of the Ed25519 public key that signed.
    pub key: String,
    /// Hex of the signature over [`checkpoint_message`].
    pub signature: String,
    pub at: i64,
}

/// Bytes as lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    // Every governed read hashes an entry; a `format!` per byte was a tenth of the writer's time.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Exactly `N` bytes from hexadecimal, or `None`.
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The hash of an entry: BLAKE3 over its fields, each prefixed by its length, so that no two
/// different entries encode alike.
pub fn entry_hash(seq: i64, event: &Event, prev: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"tongban-audit-entry-v1");
    h.update(&seq.to_le_bytes());
    h.update(&event.at.to_le_bytes());
    for field in [
        event.actor.as_str(),
        event.action.as_str(),
        event.subject.as_str(),
        event.detail.as_str(),
        prev,
    ] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex(h.finalize().as_bytes())
}

/// Chain `events` after the entry (`last_seq`, `last_hash`); (0, [`GENESIS`]) for an empty log.
pub fn chain(last_seq: i64, last_hash: &str, events: Vec<Event>) -> Vec<Entry> {
    let mut prev = last_hash.to_string();
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let seq = last_seq + 1 + i as i64;
            let hash = entry_hash(seq, &event, &prev);
            Entry {
                seq,
                event,
                prev: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

/// The Merkle root of entry hashes (RFC 6962 shape: leaves and inner nodes hashed with distinct
/// prefixes, an odd node carried up), so that a checkpoint commits to every entry of its range
/// and to their order.
pub fn merkle_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    if hashes.is_empty() {
        return *blake3::hash(b"").as_bytes();
    }
    let mut level: Vec<[u8; 32]> = hashes
        .iter()
        .map(|h| {
            let mut x = blake3::Hasher::new();
            x.update(&[0]);
            x.update(h);
            *x.finalize().as_bytes()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => {
                    let mut x = blake3::Hasher::new();
                    x.update(&[1]);
                    x.update(a);
                    x.update(b);
                    *x.finalize().as_bytes()
                }
                [a] => *a,
                _ => [0; 32],
            })
            .collect();
    }
    level[0]
}

/// What a checkpoint's signature covers.
pub fn checkpoint_message(from_seq: i64, to_seq: i64, root: &str, at: i64) -> Vec<u8> {
    format!("tongban-audit-checkpoint-v1|{from_seq}|{to_seq}|{root}|{at}").into_bytes()
}

/// Sign the Merkle root of `entries` (consecutive, in order).
pub fn checkpoint(key: &SigningKey, entries: &[Entry], at: i64) -> Option<Checkpoint> {
    let hashes: Vec<(i64, [u8; 32])> = entries
        .iter()
        .map(|e| (e.seq, unhex::<32>(&e.hash).unwrap_or([0; 32])))
        .collect();
    checkpoint_of(key, &hashes, at)
}

/// Sign the Merkle root of consecutive entries given as (sequence number, hash): all a
/// checkpoint needs, and what the writer keeps of the entries since the last one.
pub fn checkpoint_of(key: &SigningKey, entries: &[(i64, [u8; 32])], at: i64) -> Option<Checkpoint> {
    let (first, last) = (entries.first()?.0, entries.last()?.0);
    let hashes: Vec<[u8; 32]> = entries.iter().map(|(_, h)| *h).collect();
    let root = hex(&merkle_root(&hashes));
    let signature = key.sign(&checkpoint_message(first, last, &root, at));
    Some(Checkpoint {
        from_seq: first,
        to_seq: last,
        root,
        key: hex(key.verifying_key().as_bytes()),
        signature: hex(&signature.to_bytes()),
        at,
    })
}

/// An entry's hash as bytes (all zero if the text is not one, which verification reports).
pub fn hash_bytes(hash: &str) -> [u8; 32] {
    unhex::<32>(hash).unwrap_or([0; 32])
}

/// A break in the log, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The entry's content no longer gives its stored hash: it was changed.
    Changed { seq: i64 },
    /// The entry does not point at the entry before it: something before it was changed,
    /// removed or put in between.
    BrokenLink { seq: i64 },
    /// Sequence numbers jump: entries `from..=to` are gone.
    Missing { from: i64, to: i64 },
    /// A sequence number comes again or goes back: an entry was inserted or moved.
    OutOfOrder { seq: i64 },
    /// A checkpoint's root does not match the entries it covers as they are now.
    CheckpointMismatch { from: i64, to: i64 },
    /// A checkpoint's signature is not valid under the node's key.
    BadSignature { from: i64, to: i64 },
    /// A checkpoint covers entries the log no longer holds.
    CheckpointBeyondLog { from: i64, to: i64 },
    /// Checkpoints leave entries `from..=to` unsealed although later entries are sealed: a
    /// checkpoint was removed.
    CheckpointGap { from: i64, to: i64 },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Changed { seq } => write!(
                f,
                "entry {seq} was changed (its hash no longer matches its content)"
            ),
            Finding::BrokenLink { seq } => write!(
                f,
                "entry {seq} does not follow the entry before it (something before it was changed, removed or inserted)"
            ),
            Finding::Missing { from, to } => write!(f, "entries {from}–{to} are missing"),
            Finding::OutOfOrder { seq } => write!(
                f,
                "entry {seq} is out of order or repeated (inserted or moved)"
            ),
            Finding::CheckpointMismatch { from, to } => write!(
                f,
                "the signed checkpoint of entries {from}–{to} does not match them (they were rewritten)"
            ),
            Finding::BadSignature { from, to } => write!(
                f,
                "the checkpoint of entries {from}–{to} is not signed by this node's key"
            ),
            Finding::CheckpointBeyondLog { from, to } => write!(
                f,
                "the checkpoint of entries {from}–{to} covers entries the log no longer holds"
            ),
            Finding::CheckpointGap { from, to } => write!(
                f,
                "no checkpoint covers entries {from}–{to} although later ones are sealed (a checkpoint was removed)"
            ),
        }
    }
}

/// Checks entries as they stream past, in stored order, and then the checkpoints.
pub struct LogCheck {
    expected: i64,
    prev: String,
    /// Recomputed hashes of the entries seen, by sequence number, for the checkpoints.
    hashes: std::collections::BTreeMap<i64, [u8; 32]>,
    pub entries: u64,
    pub findings: Vec<Finding>,
    /// Entries after the last checkpoint: protected by the chain alone until the next one
    /// (their removal from the end of the log would not show).
    pub unsealed: u64,
}

impl Default for LogCheck {
    fn default() -> Self {
        LogCheck {
            expected: 1,
            prev: GENESIS.to_string(),
            hashes: Default::default(),
            entries: 0,
            findings: Vec::new(),
            unsealed: 0,
        }
    }
}

impl LogCheck {
    pub fn new() -> LogCheck {
        LogCheck::default()
    }

    /// Check the next stored entry.
    pub fn entry(&mut self, e: &Entry) {
        self.entries += 1;
        if e.seq > self.expected {
            self.findings.push(Finding::Missing {
                from: self.expected,
                to: e.seq - 1,
            });
        } else if e.seq < self.expected {
            self.findings.push(Finding::OutOfOrder { seq: e.seq });
        }
        let recomputed = entry_hash(e.seq, &e.event, &e.prev);
        if recomputed != e.hash {
            self.findings.push(Finding::Changed { seq: e.seq });
        }
        if e.prev != self.prev {
            self.findings.push(Finding::BrokenLink { seq: e.seq });
        }
        self.hashes
            .insert(e.seq, unhex::<32>(&recomputed).unwrap_or([0; 32]));
        self.prev = e.hash.clone();
        self.expected = self.expected.max(e.seq.saturating_add(1));
    }

    /// Check the checkpoints against the entries seen and the node's public key, and that they
    /// seal the log from its first entry without gaps.
    pub fn checkpoints(&mut self, checkpoints: &[Checkpoint], node: &VerifyingKey) {
        let mut sealed_to = 0i64;
        let mut ranges: Vec<(i64, i64)> =
            checkpoints.iter().map(|c| (c.from_seq, c.to_seq)).collect();
        ranges.sort_unstable();
        for (from, to) in ranges {
            if from > sealed_to.saturating_add(1) {
                self.findings.push(Finding::CheckpointGap {
                    from: sealed_to + 1,
                    to: from - 1,
                });
            }
            sealed_to = sealed_to.max(to);
        }
        let last = self.hashes.keys().next_back().copied().unwrap_or(0);
        self.unsealed = u64::try_from(last - sealed_to).unwrap_or(0);
        for c in checkpoints {
            let (from, to) = (c.from_seq, c.to_seq);
            let signed = unhex::<64>(&c.signature)
                .map(|s| Signature::from_bytes(&s))
                .is_some_and(|sig| {
                    c.key == hex(node.as_bytes())
                        && node
                            .verify(&checkpoint_message(from, to, &c.root, c.at), &sig)
                            .is_ok()
                });
            if !signed {
                self.findings.push(Finding::BadSignature { from, to });
                continue;
            }
            let hashes: Vec<[u8; 32]> = self.hashes.range(from..=to).map(|(_, h)| *h).collect();
            if hashes.len() as i64 != to - from + 1 {
                self.findings
                    .push(Finding::CheckpointBeyondLog { from, to });
                continue;
            }
            if hex(&merkle_root(&hashes)) != c.root {
                self.findings.push(Finding::CheckpointMismatch { from, to });
            }
        }
    }
}

/// Verify a whole log held in memory.
pub fn verify(entries: &[Entry], checkpoints: &[Checkpoint], node: &VerifyingKey) -> Vec<Finding> {
    let mut v = LogCheck::new();
    for e in entries {
        v.entry(e);
    }
    v.checkpoints(checkpoints, node);
    v.findings
}

/// A node key from its 32 secret bytes in hex.
pub fn signing_key_from_hex(text: &str) -> Option<SigningKey> {
    unhex::<32>(text.trim()).map(|b| SigningKey::from_bytes(&b))
}

/// A public key from its 32 bytes in hex.
pub fn verifying_key_from_hex(text: &str) -> Option<VerifyingKey> {
    unhex::<32>(text.trim()).and_then(|b| VerifyingKey::from_bytes(&b).ok())
}

/// A public key in hex, to publish.
pub fn verifying_key_to_hex(key: &VerifyingKey) -> String {
    hex(key.as_bytes())
}

/// The secret bytes of a node key in hex, for its key file.
pub fn signing_key_to_hex(key: &SigningKey) -> String {
    hex(&key.to_bytes())
}

/// A new node key from the operating system's randomness.
pub fn generate_key() -> Result<SigningKey, getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(SigningKey::from_bytes(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> Event {
        Event {
            at: 1_700_000_000_000 + i as i64,
            actor: format!("user{}", i % 3),
            action: "read.person".into(),
            subject: format!("P{i:04}"),
            detail: format!("{{\"fields\":[\"name\"],\"n\":{i}}}"),
        }
    }

    fn log(n: usize) -> (Vec<Entry>, Vec<Checkpoint>, SigningKey) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let entries = chain(0, GENESIS, (0..n).map(event).collect());
        let checkpoints = entries
            .chunks(8)
            .filter_map(|c| checkpoint(&key, c, 1))
            .collect();
        (entries, checkpoints, key)
    }

    #[test]
    fn an_untouched_log_verifies_and_chains_continue() {
        let (entries, cps, key) = log(20);
        assert!(verify(&entries, &cps, &key.verifying_key()).is_empty());
        let last = entries.last().unwrap();
        let more = chain(last.seq, &last.hash, vec![event(99)]);
        assert_eq!(more[0].seq, 21);
        let all: Vec<Entry> = entries.iter().cloned().chain(more).collect();
        assert!(verify(&all, &cps, &key.verifying_key()).is_empty());
    }

    #[test]
    fn every_kind_of_tampering_is_found_where_it_is() {
        let (entries, cps, key) = log(20);
        let node = key.verifying_key();

        // Changed content.
        let mut t = entries.clone();
        t[4].event.subject = "P9999".into();
        let f = verify(&t, &cps, &node);
        assert!(f.contains(&Finding::Changed { seq: 5 }), "{f:?}");

        // Changed content with its hash recomputed: the next entry's link breaks.
        let mut t = entries.clone();
        t[4].event.subject = "P9999".into();
        t[4].hash = entry_hash(5, &t[4].event, &t[4].prev);
        let f = verify(&t, &cps, &node);
        assert!(f.contains(&Finding::BrokenLink { seq: 6 }), "{f:?}");

        // The whole chain rewritten from there on: only the signed checkpoint tells.
        let mut t: Vec<Entry> = entries[..4].to_vec();
        let mut events: Vec<Event> = entries[4..].iter().map(|e| e.event.clone()).collect();
        events[0].subject = "P9999".into();
        t.extend(chain(4, &entries[3].hash, events));
        let f = verify(&t, &cps, &node);
        // Every range from the change on was rewritten; the chain itself looks whole.
        assert_eq!(
            f,
            vec![
                Finding::CheckpointMismatch { from: 1, to: 8 },
                Finding::CheckpointMismatch { from: 9, to: 16 },
                Finding::CheckpointMismatch { from: 17, to: 20 },
            ]
        );

        // Deleted.
        let mut t = entries.clone();
        t.remove(9);
        let f = verify(&t, &cps, &node);
        assert!(f.contains(&Finding::Missing { from: 10, to: 10 }), "{f:?}");
        assert!(f.contains(&Finding::BrokenLink { seq: 11 }), "{f:?}");

        // Inserted (a forged entry squeezed in with a repeated number).
        let mut t = entries.clone();
        let forged = chain(6, &entries[5].hash, vec![event(77)]).remove(0);
        t.insert(7, forged);
        let f = verify(&t, &cps, &node);
        assert!(f.contains(&Finding::OutOfOrder { seq: 7 }), "{f:?}");

        // Reordered: two entries swap places.
        let mut t = entries.clone();
        t.swap(12, 13);
        let f = verify(&t, &cps, &node);
        assert!(f.contains(&Finding::OutOfOrder { seq: 13 }), "{f:?}");
        assert!(!f.is_empty());

        // A checkpoint removed: the entries it sealed are no longer sealed, and it shows.
        let f = verify(&entries, &cps[1..], &node);
        assert_eq!(f, vec![Finding::CheckpointGap { from: 1, to: 8 }]);

        // A checkpoint signed by another key, or with its root changed.
        let mut bad = cps.clone();
        bad[1].root = bad[0].root.clone();
        let f = verify(&entries, &bad, &node);
        assert_eq!(f, vec![Finding::BadSignature { from: 9, to: 16 }]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let f = verify(&entries, &cps, &other.verifying_key());
        assert_eq!(f.len(), cps.len());
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = generate_key().unwrap();
        let back = signing_key_from_hex(&signing_key_to_hex(&key)).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        assert!(signing_key_from_hex("zz").is_none());
    }

    proptest::proptest! {
        /// Any single-field change anywhere is found, and never blamed on an earlier entry.
        #[test]
        fn any_change_is_found_at_or_after_its_entry(n in 1usize..40, at in 0usize..40, which in 0usize..5) {
            let (entries, cps, key) = log(n);
            let at = at % n;
            let mut t = entries.clone();
            match which {
                0 => t[at].event.actor.push('x'),
                1 => t[at].event.action.push('x'),
                2 => t[at].event.detail.push(' '),
                3 => t[at].event.at += 1,
                _ => t[at].prev = GENESIS.replace('0', "1"),
            }
            let f = verify(&t, &cps, &key.verifying_key());
            proptest::prop_assert!(!f.is_empty());
            let first = match &f[0] {
                Finding::Changed { seq } | Finding::BrokenLink { seq } => *seq,
                _ => i64::MAX,
            };
            proptest::prop_assert_eq!(first, at as i64 + 1);
        }
    }
}
