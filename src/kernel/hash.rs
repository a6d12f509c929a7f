//! A stable 64-bit hash (FNV-1a) for trace hashes and digests. Fixed constants, byte-oriented:
//! the same bytes hash the same on every machine, unlike `std`'s `RandomState`.

/// FNV-1a 64-bit offset basis.
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64-bit hasher over bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET)
    }
}

impl Fnv64 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// A hasher that has already fed bytes whose hash so far is `state` (what [`Fnv64::finish`]
    /// gave): feeding more continues exactly as the original would.
    pub fn from_state(state: u64) -> Self {
        Fnv64(state)
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = fnv_byte(h, b);
        }
        self.0 = h;
    }
    /// Feeds a `u64` in little-endian order (platform independent).
    pub fn update_u64(&mut self, v: u64) {
        self.update(&v.to_le_bytes());
    }
    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl std::hash::Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// What feeding one fixed byte string does to an FNV-1a state, precomputed so that it costs one
/// multiplication and one table read instead of a multiplication per byte.
///
/// Feeding byte `b` maps `h` to `(h ^ b) * P`; `h ^ b` differs from `h` by an amount that
/// depends only on `h`'s low byte, and the low byte after a multiplication depends only on the
/// low bytes before it. So feeding `k` fixed bytes maps `h` to `h * P^k + add[h & 0xff]`, and
/// `add` has one entry per possible low byte: `add[l]` is the hash of the bytes from the state
/// `l`, less `l * P^k` (all wrapping). The result is bit for bit [`Fnv64::update`]'s (tests).
#[derive(Clone)]
pub struct FnvJump {
    mul: u64,
    add: [u64; 256],
}

impl FnvJump {
    /// The jump over `bytes` (usable in a `const` or `static`).
    pub const fn new(bytes: &[u8]) -> Self {
        let mut mul: u64 = 1;
        let mut i = 0;
        while i < bytes.len() {
            mul = mul.wrapping_mul(PRIME);
            i += 1;
        }
        let mut add = [0u64; 256];
        let mut low = 0;
        while low < 256 {
            let mut h = low as u64;
            let mut i = 0;
            while i < bytes.len() {
                h = (h ^ bytes[i] as u64).wrapping_mul(PRIME);
                i += 1;
            }
            add[low] = h.wrapping_sub((low as u64).wrapping_mul(mul));
            low += 1;
        }
        FnvJump { mul, add }
    }

    /// The state after feeding the bytes to a hasher in state `h`.
    #[inline(always)]
    pub fn apply(&self, h: u64) -> u64 {
        h.wrapping_mul(self.mul)
            .wrapping_add(self.add[(h & 0xff) as usize])
    }
}

impl Default for FnvJump {
    /// The jump over no bytes (leaves a state as it is).
    fn default() -> Self {
        FnvJump::new(b"")
    }
}

impl std::fmt::Debug for FnvJump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnvJump").field("mul", &self.mul).finish()
    }
}

/// Feeds one byte to an FNV-1a state.
#[inline(always)]
pub fn fnv_byte(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(PRIME)
}

/// FNV-1a 64 of a byte string.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.update(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64(b"foobar"), 0x85944171f73967e8);
    }
    /// A jump gives what feeding its bytes one by one gives, from any state (every low byte,
    /// random high bytes) and for strings of every length up to 70.
    #[test]
    fn jumps_match_feeding_byte_by_byte() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let jump = FnvJump::new(&bytes);
            for low in 0..256u64 {
                let state = (next() & !0xff) | low;
                let mut h = Fnv64::from_state(state);
                h.update(&bytes);
                assert_eq!(jump.apply(state), h.finish(), "{bytes:?} from {state:#x}");
            }
        }
        static QUOTE: FnvJump = FnvJump::new(b"{\"step\":");
        assert_eq!(QUOTE.apply(fnv64(b"")), fnv64(b"{\"step\":"));
    }
}
