//! HPACK header block decoding (RFC 7541): integers, strings (raw and Huffman), the static
//! table, and the dynamic table with size updates and eviction.
//!
//! Only the client-to-server direction is decoded, so the table's upper bound is whatever
//! the server advertised, which is invisible here. The decoder accepts size updates up to its
//! own limit and fails closed beyond it. Every header block must be decoded, even for streams
//! the caller does not care about, because each one may change the dynamic table.

use std::collections::VecDeque;

use crate::huffman;

/// Per-entry overhead counted by RFC 7541 §4.1.
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block did not decode. Any of these is a COMPRESSION_ERROR for the real peer,
/// so the connection is dead for the server too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside a representation.
    Truncated,
    /// An integer needed more than 32 bits.
    IntegerOverflow,
    /// Index 0, or an index past the end of both tables.
    BadIndex,
    /// Bad Huffman padding or an EOS symbol in a string.
    Huffman,
    /// A dynamic table size update above the limit, or after the first field of a block.
    BadSizeUpdate,
    /// The decoded header list is larger than the configured limit (an "HPACK bomb").
    ListTooLarge,
    /// More header fields than the configured limit.
    TooManyHeaders,
}

/// RFC 7541 Appendix A.
static STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Limits for one decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HpackLimits {
    /// Largest dynamic table size a size update may set.
    pub max_table_size: usize,
    /// Largest decoded header list, counted as RFC 7540's SETTINGS_MAX_HEADER_LIST_SIZE does
    /// (name + value + 32 per field).
    pub max_list_size: usize,
    /// Most fields in one block.
    pub max_fields: usize,
}

/// One decoded field. Names are kept as bytes: HTTP/2 requires lower case, which the caller
/// checks, and the dynamic table may hold anything the peer put there.
pub(crate) type Field = (Vec<u8>, Vec<u8>);

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The decoder side of one HPACK context (one per HTTP/2 connection and direction).
pub(crate) struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    limits: HpackLimits,
}

impl Decoder {
    pub(crate) fn new(limits: HpackLimits) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            // RFC 7540 §6.5.2: SETTINGS_HEADER_TABLE_SIZE starts at 4096 for both peers.
            max_size: 4096.min(limits.max_table_size),
            limits,
        }
    }

    /// Current dynamic table size in RFC 7541 units.
    #[cfg(test)]
    pub(crate) fn table_size(&self) -> usize {
        self.size
    }

    /// Current maximum set by the last size update.
    #[cfg(test)]
    pub(crate) fn max_table_size(&self) -> usize {
        self.max_size
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let sz = name.len() + value.len() + ENTRY_OVERHEAD;
        if sz > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - sz);
        self.table.push_front((name.into(), value.into()));
        self.size += sz;
    }

    fn lookup(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::BadIndex);
        }
        if index <= STATIC_TABLE.len() {
            let (n, v) = STATIC_TABLE[index - 1];
            return Ok((n.as_bytes(), v.as_bytes()));
        }
        match self.table.get(index - STATIC_TABLE.len() - 1) {
            Some((n, v)) => Ok((n, v)),
            None => Err(HpackError::BadIndex),
        }
    }

    /// Decodes one complete header block into `out`. On error the decoder's table may be out
    /// of sync with the peer's, so the connection must be abandoned.
    pub(crate) fn decode(&mut self, block: &[u8], out: &mut Vec<Field>) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut list_size = 0usize;
        let mut seen_field = false;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let idx = decode_int(block, &mut pos, 7)?;
                let (n, v) = self.lookup(idx)?;
                let field = (n.to_vec(), v.to_vec());
                self.push(out, field, &mut list_size)?;
                seen_field = true;
            } else if b & 0xe0 == 0x20 {
                // RFC 7541 §4.2: size updates only at the start of a block.
                if seen_field {
                    return Err(HpackError::BadSizeUpdate);
                }
                let new = decode_int(block, &mut pos, 5)?;
                if new > self.limits.max_table_size {
                    return Err(HpackError::BadSizeUpdate);
                }
                self.max_size = new;
                self.evict_to(new);
            } else {
                let (prefix, index) = if b & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let idx = decode_int(block, &mut pos, prefix)?;
                let remaining = self.limits.max_list_size.saturating_sub(list_size);
                let name = if idx == 0 {
                    decode_string(block, &mut pos, remaining)?
                } else {
                    self.lookup(idx)?.0.to_vec()
                };
                let value = decode_string(block, &mut pos, remaining)?;
                if index {
                    self.insert(&name, &value);
                }
                self.push(out, (name, value), &mut list_size)?;
                seen_field = true;
            }
        }
        Ok(())
    }

    fn push(
        &self,
        out: &mut Vec<Field>,
        f: Field,
        list_size: &mut usize,
    ) -> Result<(), HpackError> {
        *list_size += f.0.len() + f.1.len() + ENTRY_OVERHEAD;
        if *list_size > self.limits.max_list_size {
            return Err(HpackError::ListTooLarge);
        }
        if out.len() >= self.limits.max_fields {
            return Err(HpackError::TooManyHeaders);
        }
        out.push(f);
        Ok(())
    }
}

/// RFC 7541 §5.1 integer with an `prefix`-bit prefix, starting at `block[*pos]`.
pub(crate) fn decode_int(block: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    let mask = ((1u16 << prefix) - 1) as u8;
    let first = *block.get(*pos).ok_or(HpackError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let b = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return usize::try_from(value).map_err(|_| HpackError::IntegerOverflow);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// RFC 7541 §5.2 string literal; `max_len` bounds the decoded length.
fn decode_string(block: &[u8], pos: &mut usize, max_len: usize) -> Result<Vec<u8>, HpackError> {
    let huff = *block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = decode_int(block, pos, 7)?;
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = block.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huff {
        // Huffman output is at most 8/5 of the input; reserving that avoids regrowth.
        let mut out = Vec::with_capacity((len * 8 / 5 + 1).min(max_len));
        huffman::decode(raw, &mut out, max_len).map_err(|e| match e {
            huffman::HuffmanError::TooLong => HpackError::ListTooLarge,
            _ => HpackError::Huffman,
        })?;
        Ok(out)
    } else {
        if len > max_len {
            return Err(HpackError::ListTooLarge);
        }
        Ok(raw.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> HpackLimits {
        HpackLimits {
            max_table_size: 65536,
            max_list_size: 65536,
            max_fields: 100,
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn strs(f: &[Field]) -> Vec<(String, String)> {
        f.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn integers() {
        // RFC 7541 C.1.
        let mut p = 0;
        assert_eq!(decode_int(&[0b0000_1010], &mut p, 5), Ok(10));
        p = 0;
        assert_eq!(decode_int(&[0x1f, 0x9a, 0x0a], &mut p, 5), Ok(1337));
        assert_eq!(p, 3);
        p = 0;
        assert_eq!(decode_int(&[42], &mut p, 8), Ok(42));
        p = 0;
        assert_eq!(
            decode_int(&[0x1f, 0x9a], &mut p, 5),
            Err(HpackError::Truncated)
        );
        p = 0;
        let huge = [0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(
            decode_int(&huge, &mut p, 5),
            Err(HpackError::IntegerOverflow)
        );
        p = 0;
        let long = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(
            decode_int(&long, &mut p, 5),
            Err(HpackError::IntegerOverflow)
        );
    }

    /// RFC 7541 C.3 (raw) and C.4 (Huffman): three requests sharing one dynamic table.
    #[test]
    fn rfc_request_sequences() {
        for blocks in [
            [
                "828684410f7777772e6578616d706c652e636f6d",
                "828684be58086e6f2d6361636865",
                "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
            ],
            [
                "828684418cf1e3c2e5f23a6ba0ab90f4ff",
                "828684be5886a8eb10649cbf",
                "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
            ],
        ] {
            let mut d = Decoder::new(lim());
            let mut out = Vec::new();
            d.decode(&hex(blocks[0]), &mut out).unwrap();
            assert_eq!(
                strs(&out),
                [
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "www.example.com")
                ]
                .map(|(a, b)| (a.to_string(), b.to_string()))
            );
            assert_eq!(d.table_size(), 57);
            out.clear();
            d.decode(&hex(blocks[1]), &mut out).unwrap();
            assert_eq!(
                strs(&out)[3],
                (":authority".into(), "www.example.com".into())
            );
            assert_eq!(strs(&out)[4], ("cache-control".into(), "no-cache".into()));
            assert_eq!(d.table_size(), 110);
            out.clear();
            d.decode(&hex(blocks[2]), &mut out).unwrap();
            assert_eq!(strs(&out)[2], (":path".into(), "/index.html".into()));
            assert_eq!(strs(&out)[4], ("custom-key".into(), "custom-value".into()));
            assert_eq!(d.table_size(), 164);
        }
    }

    /// Eviction as in RFC 7541 C.5 (256-byte table): the oldest entries leave first.
    #[test]
    fn eviction_and_size_update() {
        let mut d = Decoder::new(lim());
        let mut out = Vec::new();
        // Size update to 100, then two literals with incremental indexing (each 32+1+40).
        let mut block = vec![0x3f, 100 - 31];
        for name in [b'a', b'b'] {
            block.extend_from_slice(&[0x40, 1, name, 40]);
            block.extend_from_slice(&[b'x'; 40]);
        }
        d.decode(&block, &mut out).unwrap();
        assert_eq!(d.max_table_size(), 100);
        // Only "b" fits: "a" was evicted.
        assert_eq!(d.table_size(), 73);
        out.clear();
        d.decode(&[0xbe], &mut out).unwrap();
        assert_eq!(out[0].0, b"b");
        assert_eq!(d.decode(&[0xbf], &mut out), Err(HpackError::BadIndex));
        // Shrinking the table to 0 empties it.
        d.decode(&[0x20], &mut out).unwrap();
        assert_eq!(d.table_size(), 0);
        // An entry larger than the table is not added and empties it.
        let mut d = Decoder::new(lim());
        d.decode(&[0x40, 1, b'k', 1, b'v'], &mut out).unwrap();
        assert_eq!(d.table_size(), 34);
        let mut big = vec![0x40, 1, b'k', 0x7f, 0x81, 0x20];
        big.extend_from_slice(&[b'z'; 127 + 0x1 + 0x20 * 128]);
        d.decode(&big, &mut out).unwrap();
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn size_update_limits() {
        let mut d = Decoder::new(HpackLimits {
            max_table_size: 1000,
            ..lim()
        });
        let mut out = Vec::new();
        // 0x3f + 969 = 1000: allowed; 1001 is not.
        assert_eq!(d.decode(&[0x3f, 0xc9, 0x07], &mut out), Ok(()));
        assert_eq!(
            d.decode(&[0x3f, 0xca, 0x07], &mut out),
            Err(HpackError::BadSizeUpdate)
        );
        // A size update after a field is an error.
        assert_eq!(
            d.decode(&[0x82, 0x20], &mut out),
            Err(HpackError::BadSizeUpdate)
        );
    }

    #[test]
    fn never_indexed_and_without_indexing_do_not_touch_table() {
        let mut d = Decoder::new(lim());
        let mut out = Vec::new();
        d.decode(
            &[
                0x10, 1, b'a', 1, b'b', 0x00, 1, b'c', 1, b'd', 0x04, 1, b'/',
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(d.table_size(), 0);
        assert_eq!(
            strs(&out),
            [("a", "b"), ("c", "d"), (":path", "/")].map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn bad_input_errors() {
        let mut out = Vec::new();
        let mut d = Decoder::new(lim());
        assert_eq!(d.decode(&[0x80], &mut out), Err(HpackError::BadIndex));
        assert_eq!(d.decode(&[0xc0], &mut out), Err(HpackError::BadIndex));
        assert_eq!(
            d.decode(&[0x40, 5, b'a'], &mut out),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            d.decode(&[0x00, 0x81, 0x00, 0], &mut out),
            Err(HpackError::Huffman)
        );
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut seed = 0xdead_beef_cafe_f00du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut d = Decoder::new(lim());
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let block: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            out.clear();
            if d.decode(&block, &mut out).is_err() {
                d = Decoder::new(lim());
            }
            let mut h = Vec::new();
            let _ = huffman::decode(&block, &mut h, 1000);
        }
    }

    #[test]
    fn hpack_bomb_is_bounded() {
        let mut d = Decoder::new(HpackLimits {
            max_list_size: 8192,
            ..lim()
        });
        let mut out = Vec::new();
        // One 4000-byte entry, then referenced 1000 times: 4 MB decoded from 1 KB.
        let mut block = vec![0x40, 1, b'x', 0x7f, 0x81, 0x1e];
        block.extend_from_slice(&[b'y'; 127 + 1 + 30 * 128]);
        block.extend(std::iter::repeat_n(0xbe, 1000));
        assert_eq!(d.decode(&block, &mut out), Err(HpackError::ListTooLarge));
        let mut d = Decoder::new(HpackLimits {
            max_fields: 3,
            ..lim()
        });
        out.clear();
        assert_eq!(
            d.decode(&[0x82, 0x82, 0x82, 0x82], &mut out),
            Err(HpackError::TooManyHeaders)
        );
    }
}
