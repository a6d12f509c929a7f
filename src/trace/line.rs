//! The step line's fast writer: a fixed buffer, numbers written digit pair by digit pair straight
//! into it, and names copied as one fixed-size block (issue 16: the line is written for every
//! step of every run, since the trace hash is taken over it; appending to a `Vec` piece by piece
//! cost a capacity check and a `memcpy` call per number and name, ~13 % of `cluster-15k`'s
//! instructions with the hash). The bytes are exactly what [`super::write_step_line`]'s
//! reference writer makes (the tests compare them with `serde_json`'s); a line whose names need
//! escaping or are long is left to that writer. What rarely changes from line to line (names,
//! the text around them, leading digits) is hashed by the jumps [`super::pieces`] keeps.

use super::StepRecord;
use super::pieces::{Head, LinePieces, MiddleKey};
use crate::kernel::{FnvJump, fnv_byte};
use crate::proto::Actor;

/// Room for one line. The longest the fast writer makes is about 600 bytes: 11 numbers of at
/// most 20 digits, 3 names of at most [`NAME_BLOCK`] bytes, ~200 bytes of field names.
const CAP: usize = 1024;

/// A quoted name is kept, and copied, as a block of this many bytes (names whose quoted form is
/// longer are left to the reference writer).
pub(super) const NAME_BLOCK: usize = 64;

/// The eight decimal digits of `v` (below 10^8, with leading zeros) as ASCII bytes packed in a
/// `u64`, the first digit in the lowest byte: `v` is split into two halves of four digits, each
/// half into two pairs, each pair into two digits, all lanes at once (a division by 100 or 10 of
/// a small number is a multiplication and a shift: `x * 10486 >> 20` is `x / 100` below 43,699,
/// `x * 103 >> 10` is `x / 10` below 179; no lane's product reaches the next lane).
#[inline(always)]
fn eight_digits(v: u32) -> u64 {
    let v = u64::from(v);
    let halves = (v / 10_000) | ((v % 10_000) << 32);
    let hundreds = ((halves * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let pairs = hundreds | ((halves - hundreds * 100) << 16);
    let tens = ((pairs * 103) >> 10) & 0x000f_000f_000f_000f;
    let digits = tens | ((pairs - tens * 10) << 8);
    digits + 0x3030_3030_3030_3030
}

/// Powers of ten that fit a `u64`.
pub(super) const POWERS_OF_TEN: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// The number of decimal digits of `v` (1 for 0): from its bit length (log10(2) is about
/// 1233 / 4096), corrected by one comparison.
#[inline]
fn decimal_len(v: u64) -> usize {
    let v = v | 1;
    let bits = 64 - v.leading_zeros();
    let guess = ((bits * 1233) >> 12) as usize;
    guess + 1 - usize::from(v < POWERS_OF_TEN[guess])
}

/// A literal of a step line with its precomputed [`FnvJump`]: the line hashes it with one
/// table read instead of a multiplication per byte (the trace hash's chain of multiplications,
/// one per byte of every line, was ~10 % of `cluster-15k`'s time).
pub(super) struct Lit<const N: usize> {
    bytes: [u8; N],
    jump: FnvJump,
}

impl<const N: usize> Lit<N> {
    /// The literal's bytes.
    pub(super) fn bytes(&self) -> &[u8; N] {
        &self.bytes
    }

    const fn new(bytes: &[u8; N]) -> Self {
        Lit {
            bytes: *bytes,
            jump: FnvJump::new(bytes),
        }
    }
}

/// A `static` [`Lit`] for a byte-string literal.
macro_rules! lit {
    ($s:literal) => {{
        static LIT: Lit<{ $s.len() }> = Lit::new($s);
        &LIT
    }};
}

/// One line being written (see the module doc), and the trace hash fed with it so far. With
/// `KEEP` false only the hash is fed and no byte is stored: a run that writes no trace file
/// needs the hash alone (issue 16: the stores, ~30 a line and three 64-byte name blocks, were
/// work on every step).
pub(super) struct LineBuf<const KEEP: bool = true> {
    bytes: [u8; CAP],
    len: usize,
    hash: u64,
}

impl<const KEEP: bool> Default for LineBuf<KEEP> {
    fn default() -> Self {
        LineBuf {
            bytes: [0; CAP],
            len: 0,
            hash: 0,
        }
    }
}

impl<const KEEP: bool> LineBuf<KEEP> {
    /// The line written so far (empty unless `KEEP`).
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Starts a new line, to be hashed on from the FNV-1a state `hash`.
    pub(super) fn start(&mut self, hash: u64) {
        self.len = 0;
        self.hash = hash;
    }

    /// The hash state after the line written so far.
    pub(super) fn hash(&self) -> u64 {
        self.hash
    }

    /// Appends a short literal, hashed byte by byte (its length is known where it is called, so
    /// the copy and the hashing are inlined).
    #[inline(always)]
    fn lit<const N: usize>(&mut self, s: &[u8; N]) {
        if KEEP {
            self.bytes[self.len..self.len + N].copy_from_slice(s);
            self.len += N;
        }
        for &b in s {
            self.hash = fnv_byte(self.hash, b);
        }
    }

    /// Appends a literal, hashed by its jump.
    #[inline(always)]
    pub(super) fn jump<const N: usize>(&mut self, lit: &'static Lit<N>) {
        if KEEP {
            self.bytes[self.len..self.len + N].copy_from_slice(&lit.bytes);
            self.len += N;
        }
        self.hash = lit.jump.apply(self.hash);
    }

    /// Appends `v` in decimal, as `serde_json` (`itoa`) writes it: its length first, then its
    /// digits eight at a time ([`eight_digits`]), each block stored whole (the bytes past the
    /// number are overwritten by what follows).
    #[inline(always)]
    pub(super) fn u64(&mut self, v: u64) {
        const E8: u64 = 100_000_000;
        let n = decimal_len(v);
        if n <= 8 {
            self.digits(eight_digits(v as u32), n);
        } else if n <= 16 {
            self.digits(eight_digits((v / E8) as u32), n - 8);
            self.digits(eight_digits((v % E8) as u32), 8);
        } else {
            let rest = v % (E8 * E8);
            self.digits(eight_digits((v / (E8 * E8)) as u32), n - 16);
            self.digits(eight_digits((rest / E8) as u32), 8);
            self.digits(eight_digits((rest % E8) as u32), 8);
        }
    }

    /// Appends `v` (below 10^`width`) in exactly `width` decimal digits (1 to 16), with
    /// leading zeros.
    #[inline(always)]
    pub(super) fn padded(&mut self, v: u64, width: usize) {
        const E8: u64 = 100_000_000;
        if width <= 8 {
            self.digits(eight_digits(v as u32), width);
        } else {
            self.digits(eight_digits((v / E8) as u32), width - 8);
            self.digits(eight_digits((v % E8) as u32), 8);
        }
    }

    /// Appends the last `n` (1 to 8) of the eight ASCII digits packed in `digits`.
    #[inline(always)]
    fn digits(&mut self, digits: u64, n: usize) {
        let kept = digits >> (8 * (8 - n));
        if KEEP {
            self.bytes[self.len..self.len + 8].copy_from_slice(&kept.to_le_bytes());
            self.len += n;
        }
        for i in 0..n {
            self.hash = fnv_byte(self.hash, (kept >> (8 * i)) as u8);
        }
    }

    /// Appends `v` in decimal, with its sign, as `serde_json` writes it.
    #[inline]
    fn i64(&mut self, v: i64) {
        if v < 0 {
            self.lit(b"-");
        }
        self.u64(v.unsigned_abs());
    }

    /// Appends `text` (a line's middle, [`Middles`]), hashed by `jump`.
    #[inline(always)]
    pub(super) fn text(&mut self, text: &[u8], jump: &FnvJump) {
        if KEEP {
            self.bytes[self.len..self.len + text.len()].copy_from_slice(text);
            self.len += text.len();
        }
        self.hash = jump.apply(self.hash);
    }
}

/// Writes `record`'s step line into `line`, hashing it on from the FNV-1a state `hash`; false
/// (the line is then unfinished) when a name is left to the reference writer.
pub(super) fn write_fast<const KEEP: bool>(
    line: &mut LineBuf<KEEP>,
    record: &StepRecord<'_>,
    names: &mut LinePieces,
    hash: u64,
) -> bool {
    let o = record.outcome;
    line.start(hash);
    // The growing numbers, their leading digits with the literal before them ([`LeadJump`]).
    let [step, t_ns, due_ns, seq] = names.leads();
    step.append(line, lit!(b"{\"step\":"), record.step);
    t_ns.append(line, lit!(b",\"t_ns\":"), record.t_ns);
    due_ns.append(line, lit!(b",\"fire\":{\"due_ns\":"), record.fire.due_ns);
    seq.append(line, lit!(b",\"seq\":"), record.fire.seq);
    let head = match o.actor {
        Actor::Apiserver(i) => {
            line.jump(lit!(b"},\"actor\":\"apiserver-"));
            line.u64(u64::from(i));
            Head::AfterNumber
        }
        Actor::Client(i) => {
            line.jump(lit!(b"},\"actor\":\"client-"));
            line.u64(u64::from(i));
            Head::AfterNumber
        }
        Actor::Etcd => Head::Etcd,
        Actor::Script => Head::Script,
        Actor::Workload => Head::Workload,
        Actor::Faults => Head::Faults,
    };
    // The names, each with the literals around it, as one or two middles.
    if !names.append_middle(line, MiddleKey::after_actor(head, o, o.conn.is_some())) {
        return false;
    }
    if let Some(conn) = o.conn {
        line.u64(conn);
        if !names.append_middle(line, MiddleKey::after_conn(o.result)) {
            return false;
        }
    }
    line.i64(o.rev);
    names.append_compact_tail(line, o.compact_rev);
    line.u64(u64::from(o.emitted));
    if let Some(v) = o.minute_relists {
        line.jump(lit!(b",\"minute_relists\":"));
        line.u64(v);
    }
    if let Some(v) = o.minute_etcd_bytes {
        line.jump(lit!(b",\"minute_etcd_bytes\":"));
        line.u64(v);
    }
    line.lit(b"}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::EventKey;
    use crate::proto::step::Outcome;
    use proptest::prelude::*;

    /// Names of every kind: plain, needing escapes, too long for a block, empty.
    const NAMES: [&str; 8] = [
        "deliver",
        "watch.event",
        "ok",
        "",
        "a \"quoted\" name",
        "tab\there",
        "ünïcode",
        "a-name-that-is-longer-than-one-block-of-sixty-four-bytes-in-all-its-glory",
    ];

    fn actor(kind: u8, i: u32) -> Actor {
        match kind % 6 {
            0 => Actor::Etcd,
            1 => Actor::Script,
            2 => Actor::Workload,
            3 => Actor::Faults,
            4 => Actor::Apiserver(i),
            _ => Actor::Client(i),
        }
    }

    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(u64::MAX),
            0u64..1000,
            any::<u64>(),
            (0u32..20).prop_map(|e| 10u64.pow(e))
        ]
    }

    fn signed() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(-1i64),
            Just(i64::MIN),
            Just(i64::MAX),
            -1000i64..1000,
            any::<i64>()
        ]
    }

    /// Eight digits, with their leading zeros, for numbers of every length below 10^8.
    #[test]
    fn eight_digits_match_formatting() {
        let mut samples: Vec<u32> =
            vec![0, 1, 9, 10, 99, 100, 4321, 9999, 10_000, 43_699, 99_999_999];
        samples.extend((0..100_000u32).map(|i| i.wrapping_mul(2_654_435_761) % 100_000_000));
        for v in samples {
            assert_eq!(
                eight_digits(v).to_le_bytes(),
                *format!("{v:08}").as_bytes(),
                "{v}"
            );
        }
    }

    /// Every length of number, at and around every power of ten.
    #[test]
    fn decimal_lengths() {
        for e in 0..20u32 {
            let p = 10u64.pow(e);
            assert_eq!(decimal_len(p), e as usize + 1, "{p}");
            if p > 1 {
                assert_eq!(decimal_len(p - 1), e as usize, "{}", p - 1);
            }
        }
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(u64::MAX), 20);
    }

    /// One table of names and middles over every combination of actor, names and connection,
    /// twice (each middle made, then found among the others): every finished line is
    /// `serde_json`'s, with its hash.
    #[test]
    fn middles_found_among_many_are_the_right_ones() {
        let mut blocks = LinePieces::default();
        let mut made = 0;
        for round in 0..2 {
            for kind in 0..6u8 {
                for (a, w, r) in (0..NAMES.len()).flat_map(|a| {
                    (0..NAMES.len()).flat_map(move |w| (0..NAMES.len()).map(move |r| (a, w, r)))
                }) {
                    for conn in [None, Some(7u64)] {
                        let outcome = Outcome {
                            actor: actor(kind, 3),
                            action: NAMES[a],
                            what: NAMES[w],
                            conn,
                            result: NAMES[r],
                            rev: 11,
                            compact_rev: [2, -1, 1_000_000_007][(a + r) % 3],
                            emitted: 1,
                            minute_relists: None,
                            minute_etcd_bytes: None,
                        };
                        let fire = EventKey { due_ns: 5, seq: 9 };
                        let record = StepRecord {
                            step: 1,
                            t_ns: 5,
                            fire,
                            outcome: &outcome,
                        };
                        let mut line = LineBuf::<true>::default();
                        let finished = write_fast(&mut line, &record, &mut blocks, 42);
                        assert_eq!(finished, a < 4 && w < 4 && r < 4);
                        if finished {
                            made += 1;
                            let reference = serde_json::to_vec(&record).unwrap();
                            let mut hash = crate::kernel::Fnv64::from_state(42);
                            hash.update(&reference);
                            assert_eq!(line.as_bytes(), &reference[..], "round {round}");
                            assert_eq!(line.hash(), hash.finish(), "round {round}");
                        }
                    }
                }
            }
        }
        // 6 heads x 4^3 plain names x 2 (with or without a connection), in both rounds.
        assert_eq!(made, 2 * 6 * 64 * 2);
        assert!(blocks.middles_kept() > 300, "{}", blocks.middles_kept());
    }

    /// Growing numbers through one table, across the points where their leading digits change
    /// (and where they first have any): every line is `serde_json`'s, with its hash.
    #[test]
    fn leading_digits_carried_across_lines() {
        let mut blocks = LinePieces::default();
        let outcome = Outcome {
            actor: Actor::Etcd,
            action: "deliver",
            what: "kv.txn",
            conn: Some(4),
            result: "ok",
            rev: 11,
            compact_rev: 2,
            emitted: 1,
            minute_relists: None,
            minute_etcd_bytes: None,
        };
        let starts = [
            0u64,
            9_990,
            99_990,
            99_999_990,
            999_999_990,
            123_456_789_999_990,
        ];
        let mut lines = 0;
        for start in starts {
            for i in start..start + 25 {
                let t = i * 1_000_003;
                let fire = EventKey {
                    due_ns: t,
                    seq: i * 3,
                };
                let record = StepRecord {
                    step: i,
                    t_ns: t,
                    fire,
                    outcome: &outcome,
                };
                let mut line = LineBuf::<true>::default();
                assert!(write_fast(&mut line, &record, &mut blocks, i));
                let reference = serde_json::to_vec(&record).unwrap();
                let mut hash = crate::kernel::Fnv64::from_state(i);
                hash.update(&reference);
                assert_eq!(line.as_bytes(), &reference[..]);
                assert_eq!(line.hash(), hash.finish(), "line {i}");
                lines += 1;
            }
        }
        assert_eq!(lines, 25 * starts.len());
    }

    proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            ..crate::kernel::proptest_kept("tests/trace_line.proptest-regressions")
        })]

        /// The fast writer gives `serde_json`'s bytes whenever it finishes a line, and finishes
        /// every line whose names are plain and short.
        #[test]
        fn fast_lines_are_serde_json_lines(
            step in number(), t_ns in number(), due_ns in number(), seq in number(),
            kind in any::<u8>(), index in any::<u32>(),
            names in proptest::array::uniform3(0usize..NAMES.len()),
            conn in proptest::option::of(number()),
            rev in signed(), compact_rev in signed(), emitted in any::<u32>(),
            minute_relists in proptest::option::of(number()),
            minute_etcd_bytes in proptest::option::of(number()),
        ) {
            let outcome = Outcome {
                actor: actor(kind, index),
                action: NAMES[names[0]],
                what: NAMES[names[1]],
                conn,
                result: NAMES[names[2]],
                rev,
                compact_rev,
                emitted,
                minute_relists,
                minute_etcd_bytes,
            };
            let record = StepRecord { step, t_ns, fire: EventKey { due_ns, seq }, outcome: &outcome };
            let mut line = LineBuf::<true>::default();
            let mut blocks = LinePieces::default();
            let state = rev as u64;
            let finished = write_fast(&mut line, &record, &mut blocks, state);
            // The hash-only writer finishes the same lines with the same hash, storing nothing.
            let mut hash_only = LineBuf::<false>::default();
            prop_assert_eq!(write_fast(&mut hash_only, &record, &mut blocks, state), finished);
            prop_assert!(hash_only.as_bytes().is_empty());
            if finished {
                prop_assert_eq!(hash_only.hash(), line.hash());
            }
            let fast_enough = names.iter().all(|&n| n < 4);
            prop_assert_eq!(finished, fast_enough);
            if finished {
                let reference = serde_json::to_vec(&record).unwrap();
                let mut hash = crate::kernel::Fnv64::from_state(state);
                hash.update(&reference);
                prop_assert_eq!(line.hash(), hash.finish(), "the line's hash, from {}", state);
                prop_assert_eq!(
                    String::from_utf8(line.as_bytes().to_vec()).unwrap(),
                    String::from_utf8(reference).unwrap()
                );
            }
        }
    }
}
