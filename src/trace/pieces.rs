//! What step lines keep between them (issue 16): the pieces of text a line is made of that
//! change rarely or never, each with the [`FnvJump`] that hashes it in one step. Quoted names
//! (string literals: one found plain and short never changes), a line's middles (its names with
//! the literals around them), the compact revision's text and the growing numbers' leading
//! digits. [`super::line`] writes the lines from them.

use super::line::{LineBuf, Lit, NAME_BLOCK, POWERS_OF_TEN};
use crate::kernel::FnvJump;

/// The pieces a step line keeps between lines: quoted plain names, each kept as a
/// [`NAME_BLOCK`], the line middles made of them ([`Middles`]), the compact revision's text
/// ([`CompactTail`]) and the growing numbers' leading digits ([`LeadJump`]). A name is a
/// string literal, so one found plain (nothing to escape) and short never changes: it is found
/// by the literal's address in an open-addressed table that never forgets; past [`MAX_NAMES`]
/// names, new ones are left to the reference writer.
pub(super) struct LinePieces {
    /// By the address's hash: 0 for an empty place, else the name's number + 1.
    index: Box<[u16; INDEX]>,
    ids: Vec<(usize, usize)>,
    blocks: Vec<[u8; NAME_BLOCK]>,
    middles: Middles,
    compact_tail: CompactTail,
    leads: [LeadJump; 4],
}

/// Places in [`LinePieces`]' index (a power of two, at least twice [`MAX_NAMES`]).
const INDEX: usize = 512;
/// Names kept at most.
const MAX_NAMES: usize = 256;
// The index is probed by the top bits of a product, and always has an empty place.
const _: () = assert!(INDEX.is_power_of_two() && INDEX >= 2 * MAX_NAMES);

impl Default for LinePieces {
    fn default() -> Self {
        LinePieces {
            index: Box::new([0; INDEX]),
            ids: Vec::new(),
            blocks: Vec::new(),
            middles: Middles::default(),
            compact_tail: CompactTail::default(),
            leads: [4, 9, 9, 4].map(LeadJump::with_tail),
        }
    }
}

/// True when `s` is written by `serde_json` exactly as it is, between quotes.
pub(super) fn is_plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (b.is_ascii_graphic() && b != b'"' && b != b'\\') || b == b' ')
}

impl LinePieces {
    /// The slot holding `s` quoted, filled first if `s` is plain and short (and the table not
    /// full); None otherwise.
    #[inline]
    pub(super) fn slot(&mut self, s: &'static str) -> Option<usize> {
        let id = (s.as_ptr() as usize, s.len());
        let mut place = ((id.0 as u64 >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            >> (64 - INDEX.ilog2())) as usize;
        loop {
            match self.index[place] {
                0 => break,
                n if self.ids[usize::from(n) - 1] == id => return Some(usize::from(n) - 1),
                _ => place = (place + 1) % INDEX,
            }
        }
        if s.len() + 2 > NAME_BLOCK || !is_plain(s) || self.ids.len() == MAX_NAMES {
            return None;
        }
        let mut block = [0; NAME_BLOCK];
        block[0] = b'"';
        block[1..=s.len()].copy_from_slice(s.as_bytes());
        block[s.len() + 1] = b'"';
        self.blocks.push(block);
        self.ids.push(id);
        self.index[place] = self.ids.len() as u16;
        Some(self.ids.len() - 1)
    }

    /// The quoted name in `slot` ([`LinePieces::slot`]).
    pub(super) fn quoted(&self, slot: usize) -> &[u8] {
        &self.blocks[slot][..self.ids[slot].1 + 2]
    }

    /// Appends the middle named by `key` ([`Middles`]), made and kept on first sight; false
    /// when one of its names is left to the reference writer (or the table is full).
    #[inline(always)]
    pub(super) fn append_middle<const KEEP: bool>(
        &mut self,
        line: &mut LineBuf<KEEP>,
        key: MiddleKey,
    ) -> bool {
        let Some(packed) = key.packed() else {
            return false;
        };
        let n = match self.middles.find(&packed) {
            Ok(n) => n,
            Err(place) => {
                let Some(text) = self.make_middle(key) else {
                    return false;
                };
                let Some(n) = self.middles.insert(place, packed, text) else {
                    return false;
                };
                n
            }
        };
        line.text(&self.middles.texts[n], &self.middles.jumps[n]);
        true
    }

    /// Number of middles kept.
    #[cfg(test)]
    pub(super) fn middles_kept(&self) -> usize {
        self.middles.keys.len()
    }

    /// The leading-digit jumps of a line's step, time, due time and sequence number.
    pub(super) fn leads(&mut self) -> &mut [LeadJump; 4] {
        &mut self.leads
    }

    /// Appends `,"compact_rev":<compact_rev>,"emitted":` ([`CompactTail`]).
    #[inline(always)]
    pub(super) fn append_compact_tail<const KEEP: bool>(
        &mut self,
        line: &mut LineBuf<KEEP>,
        compact_rev: i64,
    ) {
        let tail = &mut self.compact_tail;
        if tail.compact_rev != Some(compact_rev) {
            tail.remake(compact_rev);
        }
        line.text(&tail.text, &tail.jump);
    }

    /// The text of the middle `key`, or None when a name in it is not plain and short.
    fn make_middle(&mut self, key: MiddleKey) -> Option<Vec<u8>> {
        let mut text = key.head.text().to_vec();
        if key.head != Head::AfterConn {
            let action = self.slot(key.action)?;
            text.extend_from_slice(self.quoted(action));
            text.extend_from_slice(b",\"what\":");
            let what = self.slot(key.what)?;
            text.extend_from_slice(self.quoted(what));
            if key.conn {
                text.extend_from_slice(b",\"conn\":");
                return Some(text);
            }
        }
        text.extend_from_slice(b",\"result\":");
        let result = self.slot(key.result)?;
        text.extend_from_slice(self.quoted(result));
        text.extend_from_slice(b",\"rev\":");
        Some(text)
    }
}

/// A literal and the leading digits of the number after it (all but its last `tail`), for the
/// last leading digits seen, with its [`FnvJump`]. A step line opens with four numbers that
/// grow (the step, its time, its due time and agenda sequence number): their leading digits
/// change every few thousand lines, and each digit is a multiplication on the hash's chain
/// (issue 16). Making a jump costs ~256 multiplications a byte, so `tail` adapts to how fast
/// the number grows: wider when the leading digits changed within [`LeadJump::MIN_LINES`]
/// lines, narrower when they held for [`LeadJump::MAX_LINES`]. Any `tail` writes the same
/// bytes.
pub(super) struct LeadJump {
    head: Option<u64>,
    /// Digits written one by one (at least 1, at most 15).
    tail: usize,
    /// Lines since the jump was made.
    lines: u32,
    text: Vec<u8>,
    jump: Box<FnvJump>,
}

impl LeadJump {
    /// Fewer lines than this between two jumps widen the tail by a digit.
    const MIN_LINES: u32 = 1_000;
    /// More lines than this under one jump narrow the tail by a digit.
    const MAX_LINES: u32 = 100_000;

    /// A jump for numbers whose last `tail` digits are written one by one, to begin with.
    pub(super) fn with_tail(tail: usize) -> Self {
        LeadJump {
            head: None,
            tail: tail.clamp(1, 15),
            lines: 0,
            text: Vec::new(),
            jump: Box::default(),
        }
    }

    /// Appends a literal and the number after it to `line`: the literal and the number's
    /// leading digits by this jump, its last digits one by one.
    #[inline(always)]
    pub(super) fn append<const KEEP: bool, const N: usize>(
        &mut self,
        line: &mut LineBuf<KEEP>,
        lit: &'static Lit<N>,
        v: u64,
    ) {
        let tail = self.tail;
        let scale = POWERS_OF_TEN[tail];
        if v < scale {
            line.jump(lit);
            line.u64(v);
            return;
        }
        let head = v / scale;
        self.lines += 1;
        if self.head != Some(head) {
            self.remake(lit.bytes(), head);
        }
        line.text(&self.text, &self.jump);
        line.padded(v % scale, tail);
    }

    /// Makes the text and jump of `lit` followed by `head` in decimal, and adapts the tail to
    /// the lines the last jump served (from the next line on).
    #[cold]
    fn remake(&mut self, lit: &[u8], head: u64) {
        if self.head.is_some() {
            if self.lines < Self::MIN_LINES {
                self.tail = (self.tail + 1).min(15);
            } else if self.lines > Self::MAX_LINES {
                self.tail = (self.tail - 1).max(1);
            }
        }
        self.lines = 0;
        self.text.clear();
        self.text.extend_from_slice(lit);
        self.text
            .extend_from_slice(itoa::Buffer::new().format(head).as_bytes());
        *self.jump = FnvJump::new(&self.text);
        self.head = Some(head);
    }
}

/// A line's text from its `rev` number to its `emitted` number, `,"compact_rev":<n>,"emitted":`,
/// for the last compact revision seen, with its [`FnvJump`]: etcd's compact revision changes at
/// a compaction only (every few minutes), so a line hashes it with one jump instead of two
/// literals and the number's digits, one multiplication each on the hash's chain (issue 16).
#[derive(Default)]
struct CompactTail {
    compact_rev: Option<i64>,
    text: Vec<u8>,
    jump: Box<FnvJump>,
}

impl CompactTail {
    /// Makes the text and jump of `compact_rev` (written as `serde_json` writes an `i64`).
    #[cold]
    fn remake(&mut self, compact_rev: i64) {
        self.text.clear();
        self.text.extend_from_slice(b",\"compact_rev\":");
        self.text
            .extend_from_slice(itoa::Buffer::new().format(compact_rev).as_bytes());
        self.text.extend_from_slice(b",\"emitted\":");
        *self.jump = FnvJump::new(&self.text);
        self.compact_rev = Some(compact_rev);
    }
}

/// What a line's middle starts with: the end of the actor's literal after its number, a whole
/// actor's literal, or (after a connection's number) nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Head {
    AfterNumber,
    Etcd,
    Script,
    Workload,
    Faults,
    AfterConn,
}

impl Head {
    fn text(self) -> &'static [u8] {
        match self {
            Head::AfterNumber => b"\",\"action\":",
            Head::Etcd => b"},\"actor\":\"etcd\",\"action\":",
            Head::Script => b"},\"actor\":\"script\",\"action\":",
            Head::Workload => b"},\"actor\":\"workload\",\"action\":",
            Head::Faults => b"},\"actor\":\"faults\",\"action\":",
            Head::AfterConn => b"",
        }
    }
}

/// A line's middle: the text between two of its numbers that holds its names. From the actor
/// to the next number it is the actor's literal (or its end), the action, the message or
/// timer, then either `"conn":` or the result up to `"rev":`; after a connection's number, the
/// result up to `"rev":`. Names are `'static` literals, so a middle is named by its head, its
/// names' addresses and lengths (as [`LinePieces`] names them) and whether a connection
/// follows, packed in four words compared at once; `""` stands for a name it does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MiddleKey {
    head: Head,
    action: &'static str,
    what: &'static str,
    result: &'static str,
    conn: bool,
}

/// Lengths of names a [`MiddleKey`] packs (longer names are left to the reference writer).
const MAX_PACKED_LEN: usize = (1 << 20) - 1;

impl MiddleKey {
    /// The middle after the actor (or its number).
    #[inline(always)]
    pub(super) fn after_actor(head: Head, o: &crate::proto::step::Outcome, conn: bool) -> Self {
        MiddleKey {
            head,
            action: o.action,
            what: o.what,
            result: if conn { "" } else { o.result },
            conn,
        }
    }

    /// The middle after the connection's number.
    #[inline(always)]
    pub(super) fn after_conn(result: &'static str) -> Self {
        MiddleKey {
            head: Head::AfterConn,
            action: "",
            what: "",
            result,
            conn: false,
        }
    }

    /// The key as four words (names by address, then the head, the connection flag and the
    /// three lengths), or None when a name is too long to pack.
    #[inline(always)]
    fn packed(&self) -> Option<[u64; 4]> {
        let lens = [self.action.len(), self.what.len(), self.result.len()];
        if lens.iter().any(|&l| l > MAX_PACKED_LEN) {
            return None;
        }
        let tag = self.head as u64
            | u64::from(self.conn) << 3
            | (lens[0] as u64) << 4
            | (lens[1] as u64) << 24
            | (lens[2] as u64) << 44;
        Some([
            self.action.as_ptr() as u64,
            self.what.as_ptr() as u64,
            self.result.as_ptr() as u64,
            tag,
        ])
    }
}

/// The index's first place to probe for a packed key: a multiplicative hash.
#[inline(always)]
fn middle_place(key: &[u64; 4]) -> usize {
    let mix = key[0] ^ key[1].rotate_left(21) ^ key[2].rotate_left(42) ^ key[3];
    (mix.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - MIDDLE_INDEX.ilog2())) as usize
}

/// Every middle seen, with its text and [`FnvJump`]: a line's names cost one look-up and one
/// jump instead of three look-ups and eight jumps (issue 16: each jump reads a line of a 2 KB
/// table chosen by the hash so far, a cache miss on the hash's chain when the table was
/// evicted; a run uses a few dozen middles). Open addressing, never forgetting; past
/// [`MAX_MIDDLES`], new ones are left to the reference writer.
struct Middles {
    /// 0 for an empty place, else the middle's number + 1.
    index: Box<[u16; MIDDLE_INDEX]>,
    keys: Vec<[u64; 4]>,
    texts: Vec<Box<[u8]>>,
    jumps: Vec<FnvJump>,
}

/// Places in [`Middles`]' index (a power of two, at least twice [`MAX_MIDDLES`]).
const MIDDLE_INDEX: usize = 4096;
/// Middles kept at most.
const MAX_MIDDLES: usize = 2048;
const _: () = assert!(MIDDLE_INDEX.is_power_of_two() && MIDDLE_INDEX >= 2 * MAX_MIDDLES);

impl Default for Middles {
    fn default() -> Self {
        Middles {
            index: Box::new([0; MIDDLE_INDEX]),
            keys: Vec::new(),
            texts: Vec::new(),
            jumps: Vec::new(),
        }
    }
}

impl Middles {
    /// `Ok(number)` of the middle packed as `key`, or `Err(place)`: the empty place it would
    /// take.
    #[inline(always)]
    fn find(&self, key: &[u64; 4]) -> Result<usize, usize> {
        let mut place = middle_place(key);
        loop {
            match self.index[place] {
                0 => return Err(place),
                n if self.keys[usize::from(n) - 1] == *key => return Ok(usize::from(n) - 1),
                _ => place = (place + 1) % MIDDLE_INDEX,
            }
        }
    }

    /// Keeps `key`'s `text` at the empty `place` [`Middles::find`] gave; its number, or None
    /// when the table is full.
    fn insert(&mut self, place: usize, key: [u64; 4], text: Vec<u8>) -> Option<usize> {
        if self.keys.len() == MAX_MIDDLES {
            return None;
        }
        self.jumps.push(FnvJump::new(&text));
        self.texts.push(text.into_boxed_slice());
        self.keys.push(key);
        self.index[place] = self.keys.len() as u16;
        Some(self.keys.len() - 1)
    }
}
