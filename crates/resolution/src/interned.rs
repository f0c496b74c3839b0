//! Interned text: each distinct string that mentions hold is stored once, for the life of the
//! process, and handed out as a `&'static str`.
//!
//! A resolution run holds a dozen or more short strings for each of millions of mentions
//! (source, record key, role, ids, name, dates, address keys), and most values repeat many
//! times over: a date of birth or a building key is shared by thousands of mentions, a source
//! name by millions. As `String`s each field took 24 bytes plus an allocation of its own, about
//! 1.6 KB a record at 1 M people (`tongban resolve`, peak 8.8 GB); interned, a field is a
//! 16-byte reference that copies freely, and the text of each distinct value sits once in large
//! blocks.
//!
//! What it deliberately does not do is forget: interned text stays until the process exits. A
//! process holds each distinct value once however often it resolves: the store's values and
//! what resolution derives from them (entity keys, normalised names, address and room keys), so
//! it is bounded by the data. That suits the commands that resolve or explain and exit, which
//! are the only ones that make mentions (the server makes none).
//!
//! Written here rather than taken from a crate: `internment` keeps all values of a type behind
//! one lock, which the parsing threads would queue on, and `lasso` hands out keys that every
//! comparison would have to resolve through the interner it came from.

use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Shards, each its own lock, table and block: parsing threads intern at the same time.
const SHARDS: usize = 64;
/// Bytes of text a block holds; a string longer than a sixteenth of it gets its own allocation.
const BLOCK: usize = 256 * 1024;

#[derive(Default)]
struct Shard {
    table: hashbrown::HashTable<&'static str>,
    /// The unused rest of the block being filled.
    free: &'static mut [u8],
}

impl Shard {
    /// A copy of `s` that lives as long as the process.
    fn keep(&mut self, s: &str) -> &'static str {
        let bytes = s.as_bytes();
        if bytes.len() > BLOCK / 16 {
            return Box::leak(s.to_owned().into_boxed_str());
        }
        if self.free.len() < bytes.len() {
            // The old block's few unused bytes are left behind.
            self.free = Box::leak(vec![0u8; BLOCK].into_boxed_slice());
        }
        let (head, rest) = std::mem::take(&mut self.free).split_at_mut(bytes.len());
        self.free = rest;
        head.copy_from_slice(bytes);
        let head: &'static [u8] = head;
        // The bytes are a copy of a `str`, so they are UTF-8 and this never falls back.
        std::str::from_utf8(head).unwrap_or_else(|_| Box::leak(s.to_owned().into_boxed_str()))
    }
}

fn hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x7f4a_7c15_9e37_79b9)
}

fn shards() -> &'static [Mutex<Shard>; SHARDS] {
    static ALL: OnceLock<[Mutex<Shard>; SHARDS]> = OnceLock::new();
    ALL.get_or_init(|| std::array::from_fn(|_| Mutex::new(Shard::default())))
}

/// Slots of each thread's cache of values it interned lately. Dates of birth and building keys
/// run to tens of thousands of distinct values in a city, so 1,024 slots kept few of them;
/// 16,384 (384 KiB a thread) took the reading stage of a 300 k-person city from 9.8 and 8.6 s
/// to 9.1 and 8.2 s, alternating runs (`tongban resolve`, session 21).
const RECENT: usize = 16384;

thread_local! {
    /// Values this thread interned lately, by hash: most fields repeat a few values (a source, a
    /// role, a sex, dates, the building a household lives in), and finding them here spares
    /// taking the shard's lock, which the other parsing threads want too.
    static RECENTLY: std::cell::RefCell<Vec<(u64, &'static str)>> =
        std::cell::RefCell::new(vec![(0, ""); RECENT]);
}

/// The one stored copy of `s`: equal strings give the same reference.
pub fn intern(s: &str) -> &'static str {
    if s.is_empty() {
        return "";
    }
    let hash = hasher().hash_one(s);
    let slot = hash as usize % RECENT;
    let recent = RECENTLY.with_borrow(|r| r[slot]);
    if recent.0 == hash && recent.1 == s {
        return recent.1;
    }
    let kept = intern_hashed(s, hash);
    RECENTLY.with_borrow_mut(|r| r[slot] = (hash, kept));
    kept
}

fn intern_hashed(s: &str, hash: u64) -> &'static str {
    // Middle bits pick the shard: hashbrown takes the low bits for the slot and the top seven
    // for the tag it filters a probe with, and a shard chosen by the top bits would leave its
    // table two tags, every probe then comparing strings.
    let shard = &shards()[(hash >> 32) as usize % SHARDS];
    // A panic while a shard is held (a table grown past its capacity limit) leaves the table and
    // block consistent, so a poisoned lock is taken as it is.
    let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = shard.table.find(hash, |t| *t == s) {
        return found;
    }
    let kept = shard.keep(s);
    shard
        .table
        .insert_unique(hash, kept, |t| hasher().hash_one(*t));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_text_is_stored_once_and_different_text_apart() {
        let a = intern("440304199001011234");
        let b = intern(&String::from("440304199001011234"));
        assert_eq!(a, "440304199001011234");
        assert!(std::ptr::eq(a, b), "equal text, one copy");
        let c = intern("440304199001011235");
        assert_eq!(c, "440304199001011235");
        assert!(!std::ptr::eq(a, c));
        assert_eq!(intern(""), "");
    }

    #[test]
    fn long_text_and_blocks_filled_many_times_over_keep_every_value() {
        let long = "张".repeat(BLOCK / 3 + 7);
        assert_eq!(intern(&long), long);
        let values: Vec<String> = (0..40_000)
            .map(|i| format!("房屋-{i:08}-{}", "x".repeat(i % 90)))
            .collect();
        let kept: Vec<&'static str> = values.iter().map(|v| intern(v)).collect();
        for (v, k) in values.iter().zip(&kept) {
            assert_eq!(v, k);
            assert!(std::ptr::eq(*k, intern(v)));
        }
    }

    #[test]
    fn threads_interning_the_same_values_get_the_same_copies() {
        let values: Vec<String> = (0..5_000).map(|i| format!("name-{}", i % 700)).collect();
        let results: Vec<Vec<usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| values.iter().map(|v| intern(v).as_ptr() as usize).collect()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
    }

    proptest! {
        #[test]
        fn interned_text_equals_its_input(s in ".{0,200}") {
            let kept = intern(&s);
            prop_assert_eq!(kept, s.as_str());
            prop_assert!(std::ptr::eq(kept, intern(&s)));
        }
    }
}
