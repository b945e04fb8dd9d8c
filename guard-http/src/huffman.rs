//! HPACK Huffman decoding (RFC 7541 §5.2, Appendix B).
//!
//! The code table is kept as data, exactly as the RFC prints it. The code is canonical (codes
//! are assigned in order of length, then symbol), which a test checks. Codes of up to 8 bits
//! (nearly all printable characters) decode with one lookup in a 256-entry table built from
//! the RFC table at compile time; longer ones use canonical decoding, which needs only the
//! first code of each length and the symbols in (length, symbol) order.

const MAX_LEN: usize = 30;
const EOS: u16 = 256;

/// Why a Huffman string did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// The EOS symbol appeared inside the string (RFC 7541 §5.2: a decoding error).
    Eos,
    /// The padding was longer than 7 bits or not the most significant bits of EOS.
    BadPadding,
    /// The decoded string would exceed the caller's limit.
    TooLong,
}

struct Canonical {
    /// `limit[l]`: one past the largest code of length `l`, as an `l`-bit number.
    limit: [u32; MAX_LEN + 1],
    /// `first[l]`: the smallest code of length `l`.
    first: [u32; MAX_LEN + 1],
    /// `offset[l]`: index in `symbols` of the first symbol with a code of length `l`.
    offset: [u16; MAX_LEN + 1],
    /// Symbols ordered by (code length, symbol).
    symbols: [u16; 257],
}

const fn build() -> Canonical {
    let mut count = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[CODES[i].1 as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut limit = [0u32; MAX_LEN + 1];
    let mut offset = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut off = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        first[len] = code;
        offset[len] = off;
        limit[len] = code + count[len];
        off += count[len] as u16;
        code = (code + count[len]) << 1;
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = offset;
    let mut s = 0;
    while s < 257 {
        let l = CODES[s].1 as usize;
        symbols[next[l] as usize] = s as u16;
        next[l] += 1;
        s += 1;
    }
    Canonical {
        limit,
        first,
        offset,
        symbols,
    }
}

static TABLE: Canonical = build();

/// Codes of at most 8 bits (most printable characters) decoded with one lookup on the
/// next 8 bits: `(symbol, length)`, length 0 when the code is longer.
static FAST: [(u8, u8); 256] = build_fast();

const fn build_fast() -> [(u8, u8); 256] {
    let mut t = [(0u8, 0u8); 256];
    let mut s = 0;
    while s < 256 {
        let (code, len) = CODES[s];
        if len <= 8 {
            let shift = 8 - len as u32;
            let base = (code << shift) as usize;
            let mut i = 0;
            while i < (1 << shift) {
                t[base + i] = (s as u8, len);
                i += 1;
            }
        }
        s += 1;
    }
    t
}

/// Decodes `input` and appends the result to `out`, failing if `out` would grow past `max_len`
/// bytes in total.
pub(crate) fn decode(input: &[u8], out: &mut Vec<u8>, max_len: usize) -> Result<(), HuffmanError> {
    let t = &TABLE;
    let mut acc: u64 = 0;
    let mut nbits: usize = 0;
    let mut pos = 0;
    loop {
        while nbits <= 56 && pos < input.len() {
            acc |= u64::from(input[pos]) << (56 - nbits);
            nbits += 8;
            pos += 1;
        }
        if nbits == 0 {
            return Ok(());
        }
        // Up to 7 trailing one bits are the padding (a prefix of EOS). No complete code of
        // 7 bits or less is all ones, so this cannot swallow a real symbol.
        if nbits <= 7 {
            let mask = !0u64 << (64 - nbits);
            if acc & mask == mask {
                return Ok(());
            }
        }
        // Pad the window with ones past the end of input: a code that needs those bits is
        // caught below as running past the end.
        let window = if nbits >= MAX_LEN {
            (acc >> (64 - MAX_LEN)) as u32
        } else {
            ((acc >> (64 - MAX_LEN)) as u32) | ((1u32 << (MAX_LEN - nbits)) - 1)
        };
        let (fast_sym, fast_len) = FAST[(window >> (MAX_LEN - 8)) as usize];
        if fast_len != 0 {
            let len = usize::from(fast_len);
            if len > nbits {
                return Err(HuffmanError::BadPadding);
            }
            if out.len() >= max_len {
                return Err(HuffmanError::TooLong);
            }
            out.push(fast_sym);
            acc <<= len;
            nbits -= len;
            continue;
        }
        let mut len = 9;
        let sym = loop {
            let v = window >> (MAX_LEN - len);
            if v < t.limit[len] {
                break t.symbols[(t.offset[len] as u32 + (v - t.first[len])) as usize];
            }
            len += 1;
            if len > MAX_LEN {
                // Only reachable with all 30 bits set, which is EOS's code.
                return Err(HuffmanError::Eos);
            }
        };
        if len > nbits {
            return Err(HuffmanError::BadPadding);
        }
        if sym == EOS {
            return Err(HuffmanError::Eos);
        }
        if out.len() >= max_len {
            return Err(HuffmanError::TooLong);
        }
        out.push(sym as u8);
        acc <<= len;
        nbits -= len;
    }
}

/// RFC 7541 Appendix B: `(code, bit length)` for symbols 0..=255 and EOS (256),
/// written as data exactly as the RFC lists them.
pub(crate) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference encoder straight from the table, so tests do not trust the decoder's tables.
    fn encode(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc: u64 = 0;
        let mut n = 0;
        for &b in s {
            let (code, len) = CODES[b as usize];
            acc = (acc << len) | u64::from(code);
            n += usize::from(len);
            while n >= 8 {
                out.push((acc >> (n - 8)) as u8);
                n -= 8;
            }
        }
        if n > 0 {
            let pad = 8 - n;
            out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
        }
        out
    }

    #[test]
    fn table_is_canonical() {
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut code = 0u32;
        let mut prev = CODES[order[0]].1;
        for (i, &s) in order.iter().enumerate() {
            if i > 0 {
                code = (code + 1) << (CODES[s].1 - prev);
                prev = CODES[s].1;
            }
            assert_eq!(CODES[s].0, code, "symbol {s}");
        }
    }

    #[test]
    fn rfc_examples() {
        // RFC 7541 C.4.1: "www.example.com".
        let enc = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&enc, &mut out, 100).unwrap();
        assert_eq!(out, b"www.example.com");
        // C.4.2: "no-cache".
        out.clear();
        decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], &mut out, 100).unwrap();
        assert_eq!(out, b"no-cache");
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out, 1000).unwrap();
        assert_eq!(out, all);
        for b in 0..=255u8 {
            let s = [b, b'a', b, b];
            out.clear();
            decode(&encode(&s), &mut out, 10).unwrap();
            assert_eq!(out, s);
        }
    }

    #[test]
    fn rejects_bad_padding_eos_and_overflow() {
        let mut out = Vec::new();
        // 'a' is 00011 (5 bits); padding with zeros instead of ones.
        assert_eq!(
            decode(&[0b0001_1000], &mut out, 10),
            Err(HuffmanError::BadPadding)
        );
        // A whole byte of ones is padding longer than 7 bits.
        out.clear();
        let mut enc = encode(b"ab");
        enc.push(0xff);
        assert_eq!(decode(&enc, &mut out, 10), Err(HuffmanError::BadPadding));
        // EOS (30 ones) inside the string.
        out.clear();
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out, 10),
            Err(HuffmanError::Eos)
        );
        out.clear();
        assert_eq!(
            decode(&encode(b"abcdef"), &mut out, 3),
            Err(HuffmanError::TooLong)
        );
        // A truncated long code ('\0' is 13 bits) cannot decode.
        out.clear();
        assert!(decode(&encode(&[0])[..1], &mut out, 10).is_err());
        assert_eq!(decode(&[], &mut out, 10), Ok(()));
    }
}
