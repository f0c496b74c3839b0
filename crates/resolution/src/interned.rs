//! Interned text: each distinct string that mentions hold is stored once, for the life of the
//! process, and handed out as a [`Text`], a four-byte number that copies freely.
//!
//! A resolution run holds a dozen or more short strings for each of millions of mentions
//! (source, record key, role, ids, name, dates, address keys), and most values repeat many
//! times over: a date of birth or a building key is shared by thousands of mentions, a source
//! name by millions. As `String`s each field took 24 bytes plus an allocation of its own, about
//! 1.6 KB a record at 1 M people (`tongban resolve`, peak 8.8 GB). Interned as `&'static str`
//! a field was 16 bytes and the text of each distinct value sat once in large blocks (peak 4.8
//! GiB, a person mention 264 bytes); as a [`Text`] a field is 4 bytes (a person mention 68),
//! and two fields are equal exactly when their numbers are, so comparing them reads no text.
//!
//! What it deliberately does not do is forget: interned text stays until the process exits. A
//! process holds each distinct value once however often it resolves: the store's values and
//! what resolution derives from them (entity keys, normalised names, address and room keys), so
//! it is bounded by the data. That suits the commands that resolve or explain and exit, which
//! are the only ones that make mentions (the server makes none).
//!
//! Written here rather than taken from a crate: `internment` keeps all values of a type behind
//! one lock, which the parsing threads would queue on, and `lasso`'s keys resolve only through
//! the interner they came from, which every comparison would have to be handed; a [`Text`]
//! reads its text from the one table of the process.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Shards, each its own lock, table and block: parsing threads intern at the same time.
const SHARDS: usize = 64;
/// Bytes of text a block holds; a string longer than a sixteenth of it gets its own allocation.
const BLOCK: usize = 256 * 1024;

/// A string interned for the life of the process: four bytes, `Copy`, equal to another exactly
/// when their texts are equal (the number is compared, not the text). It hashes and orders as
/// its text does, so that maps and sorts over texts behave as they did over `&str`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Text(u32);

impl Text {
    /// The empty text, which is never stored.
    pub const EMPTY: Text = Text(0);

    /// The text, which lives as long as the process.
    pub fn as_str(self) -> &'static str {
        if self.0 == 0 {
            return "";
        }
        let (chunk, offset) = slot_of(self.0);
        // A `Text` other than the empty one is made only after its slot was set (`number`), and
        // reaches another thread only through something that orders that write before (a lock,
        // a channel, a join), so the null fallback is never taken.
        let kept = TABLE[chunk]
            .get()
            .and_then(|c| c.get(offset))
            .map_or(std::ptr::null_mut(), |slot| slot.load(Ordering::Acquire));
        if kept.is_null() {
            return "";
        }
        // SAFETY: a slot, once set, points at a four-byte length and that many bytes of UTF-8
        // copied from a `&str` (`Shard::keep`), in memory that is never written again or freed
        // (leaked blocks); the Acquire load above sees the writes that `number`'s Release store
        // published.
        unsafe {
            let len = u32::from_le_bytes(kept.cast::<[u8; 4]>().read()) as usize;
            let bytes = std::slice::from_raw_parts(kept.add(LEN).cast_const(), len);
            std::str::from_utf8_unchecked(bytes)
        }
    }

    /// The text's number: equal for equal texts, and cheaper to hash than the text.
    pub fn number(self) -> u32 {
        self.0
    }

    /// Whether the text is empty, without reading it.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<Text> for &'static str {
    fn from(t: Text) -> &'static str {
        t.as_str()
    }
}

/// Numbers per chunk of the table from numbers to texts, as a power of two. The table is a fixed
/// array of chunks, each allocated when its first number is handed out, so that it grows without
/// moving what it holds (readers look texts up without a lock) and holds at most one chunk (half
/// a megabyte) it does not use yet. It was a list of segments each twice the one before, of
/// `OnceLock<&str>` (24 bytes a slot), every slot written when its segment was made: at 3 M
/// people, 24.8 M texts, up to twice that in slots, all resident.
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Enough chunks for every `u32` number.
const CHUNKS: usize = 1 << (32 - CHUNK_BITS);
/// Bytes of the length that precedes each kept text.
const LEN: usize = 4;

/// Each slot points at its text's length, followed by the text (see [`Shard::keep`]); eight
/// bytes a text where a `&'static str` in a `OnceLock` took twenty-four.
type Chunk = Box<[AtomicPtr<u8>]>;

static TABLE: [OnceLock<Chunk>; CHUNKS] = [const { OnceLock::new() }; CHUNKS];
/// The next number to hand out; 0 is the empty text.
static NEXT: AtomicU32 = AtomicU32::new(1);
/// Bytes allocated for kept texts (blocks and texts of their own), for [`stats`].
static KEPT_BYTES: AtomicU64 = AtomicU64::new(0);

/// The chunk and the slot in it of text number `n`.
fn slot_of(n: u32) -> (usize, usize) {
    ((n >> CHUNK_BITS) as usize, n as usize & (CHUNK - 1))
}

/// Gives the text kept at `kept` (see [`Shard::keep`]) the next number and records it in the
/// table.
fn number(kept: *mut u8) -> Text {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Four thousand million distinct texts would take a hundred gigabytes of table and text
    // before this point; a run over any city's records stays far below it.
    assert!(n != u32::MAX, "more distinct texts than interned numbers");
    let (chunk, offset) = slot_of(n);
    let slots = TABLE[chunk].get_or_init(|| (0..CHUNK).map(|_| AtomicPtr::default()).collect());
    if let Some(slot) = slots.get(offset) {
        // Each number is handed out once, so its slot is empty.
        slot.store(kept, Ordering::Release);
    }
    Text(n)
}

/// How many distinct texts the process holds and the bytes they take: their text with its
/// length, the table from numbers to texts and the shards' hash tables. Reported by commands
/// that resolve: at 3 M people, 0.84 GiB of a run's 4.66 GiB peak.
pub fn stats() -> (u64, u64) {
    let texts = u64::from(NEXT.load(Ordering::Relaxed)) - 1;
    let chunks = TABLE.iter().filter(|c| c.get().is_some()).count() as u64;
    let tables: u64 = shards()
        .iter()
        .map(|s| {
            let shard = s.lock().unwrap_or_else(PoisonError::into_inner);
            // A slot of four bytes and a control byte.
            shard.table.capacity() as u64 * 5
        })
        .sum();
    let table = chunks * (CHUNK * std::mem::size_of::<AtomicPtr<u8>>()) as u64;
    (texts, KEPT_BYTES.load(Ordering::Relaxed) + table + tables)
}

#[derive(Default)]
struct Shard {
    /// The numbers of the texts kept here, found by the texts' hash.
    table: hashbrown::HashTable<Text>,
    /// The unused rest of the block being filled.
    free: &'static mut [u8],
}

impl Shard {
    /// A copy of `s`, preceded by its length as four little-endian bytes, that lives as long as
    /// the process; returns where the length starts.
    fn keep(&mut self, s: &str) -> *mut u8 {
        // A field value of 4 GiB cannot reach here (the store's values and the link command's
        // columns, `Column::push`, are bounded far below it); were one to, it would be kept cut
        // at the last character that fits the length, rather than stop the process.
        let mut cut = s.len().min(u32::MAX as usize);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let bytes = &s.as_bytes()[..cut];
        let len = (cut as u32).to_le_bytes();
        let need = LEN + bytes.len();
        let kept: &'static mut [u8] = if need > BLOCK / 16 {
            KEPT_BYTES.fetch_add(need as u64, Ordering::Relaxed);
            Box::leak(vec![0u8; need].into_boxed_slice())
        } else {
            if self.free.len() < need {
                // The old block's few unused bytes are left behind.
                KEPT_BYTES.fetch_add(BLOCK as u64, Ordering::Relaxed);
                self.free = Box::leak(vec![0u8; BLOCK].into_boxed_slice());
            }
            let (head, rest) = std::mem::take(&mut self.free).split_at_mut(need);
            self.free = rest;
            head
        };
        let (head, text) = kept.split_at_mut(LEN);
        head.copy_from_slice(&len);
        text.copy_from_slice(bytes);
        kept.as_mut_ptr()
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
/// 16,384 (then 384 KiB a thread, now 512) took the reading stage of a 300 k-person city from
/// 9.8 and 8.6 s to 9.1 and 8.2 s, alternating runs (`tongban resolve`, session 21).
const RECENT: usize = 16384;

thread_local! {
    /// Values this thread interned lately, by hash: most fields repeat a few values (a source, a
    /// role, a sex, dates, the building a household lives in), and finding them here spares
    /// taking the shard's lock, which the other parsing threads want too. Each value's text is
    /// kept beside its number, so that a hit compares text without looking the number up in
    /// the table (a cache miss of its own: the reading stage of a 1 M-person city took 6 s
    /// longer that way).
    static RECENTLY: std::cell::RefCell<Vec<(u64, Text, &'static str)>> =
        std::cell::RefCell::new(vec![(0, Text::EMPTY, ""); RECENT]);
}

/// The one stored copy of `s`: equal strings give the same [`Text`].
pub fn intern(s: &str) -> Text {
    if s.is_empty() {
        return Text::EMPTY;
    }
    let hash = hasher().hash_one(s);
    let slot = hash as usize % RECENT;
    let recent = RECENTLY.with_borrow(|r| r[slot]);
    if recent.0 == hash && recent.2 == s {
        return recent.1;
    }
    let (kept, text) = intern_hashed(s, hash);
    RECENTLY.with_borrow_mut(|r| r[slot] = (hash, kept, text));
    kept
}

fn intern_hashed(s: &str, hash: u64) -> (Text, &'static str) {
    // Middle bits pick the shard: hashbrown takes the low bits for the slot and the top seven
    // for the tag it filters a probe with, and a shard chosen by the top bits would leave its
    // table two tags, every probe then comparing strings.
    let shard = &shards()[(hash >> 32) as usize % SHARDS];
    // A panic while a shard is held (a table grown past its capacity limit) leaves the table and
    // block consistent, so a poisoned lock is taken as it is.
    let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = shard.table.find(hash, |t| t.as_str() == s) {
        return (*found, found.as_str());
    }
    let kept = number(shard.keep(s));
    shard
        .table
        .insert_unique(hash, kept, |t| hasher().hash_one(t.as_str()));
    (kept, kept.as_str())
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
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "equal text, one copy");
        let c = intern("440304199001011235");
        assert_eq!(c, "440304199001011235");
        assert_ne!(a, c);
        assert_eq!(intern(""), "");
        assert!(intern("").is_empty() && !a.is_empty());
    }

    #[test]
    fn long_text_and_blocks_filled_many_times_over_keep_every_value() {
        let long = "张".repeat(BLOCK / 3 + 7);
        assert_eq!(intern(&long).as_str(), long);
        let values: Vec<String> = (0..40_000)
            .map(|i| format!("房屋-{i:08}-{}", "x".repeat(i % 90)))
            .collect();
        let kept: Vec<Text> = values.iter().map(|v| intern(v)).collect();
        for (v, k) in values.iter().zip(&kept) {
            assert_eq!(v.as_str(), k.as_str());
            assert_eq!(*k, intern(v));
        }
    }

    #[test]
    fn threads_interning_the_same_values_get_the_same_copies() {
        let values: Vec<String> = (0..5_000).map(|i| format!("name-{}", i % 700)).collect();
        let results: Vec<Vec<usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        values
                            .iter()
                            .map(|v| intern(v).as_str().as_ptr() as usize)
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
    }

    #[test]
    fn numbers_map_to_slots_without_gaps_or_overlaps() {
        // The first and last number of each segment, and the largest number there is.
        assert_eq!(slot_of(1), (0, 1));
        assert_eq!(slot_of(65_535), (0, 65_535));
        assert_eq!(slot_of(65_536), (1, 0));
        assert_eq!(slot_of(3 * 65_536 + 7), (3, 7));
        assert_eq!(slot_of(u32::MAX), (CHUNKS - 1, CHUNK - 1));
    }

    #[test]
    fn texts_order_and_hash_as_their_text_does() {
        use std::hash::BuildHasher;
        let (b, a) = (intern("乙-order"), intern("甲-order"));
        assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()));
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(a), state.hash_one(a.as_str()));
        assert_eq!(format!("{a}|{a:?}"), "甲-order|\"甲-order\"");
    }

    proptest! {
        #[test]
        fn interned_text_equals_its_input(s in ".{0,200}") {
            let kept = intern(&s);
            prop_assert_eq!(kept.as_str(), s.as_str());
            prop_assert_eq!(kept, intern(&s));
        }
    }
}
