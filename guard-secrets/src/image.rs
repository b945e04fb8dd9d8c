//! Byte helpers for the detector image (`Detectors::to_image` / `from_image`): the detector
//! set precompiled by the policy compiler and stored in the ruleset, so that a guarded process
//! does not rebuild keyword tables at its first scanned read.
//!
//! Little-endian, read strictly in sequence by [`Reader`], which checks every length against
//! what is left: a truncated or corrupt image yields `None`, never a panic or an allocation
//! larger than the image itself.

pub(crate) const MAGIC: &[u8; 4] = b"GSDI";
/// Bumped on any layout or semantic change (keyword minimisation, prefilter hashing, ...): an
/// image from another version is ignored and the set built at runtime.
pub(crate) const VERSION: u32 = 1;

#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: usize) {
        // Counts and indices of a detector set are far below 2^32 (ids, regexes and keyword
        // lists come from a policy file); saturate rather than wrap if not.
        self.out
            .extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len());
        self.out.extend_from_slice(b);
    }
}

pub(crate) struct Reader<'i> {
    rest: &'i [u8],
}

impl<'i> Reader<'i> {
    pub(crate) fn new(b: &'i [u8]) -> Self {
        Reader { rest: b }
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'i [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Some(a)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    pub(crate) fn u32(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)).ok()
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(crate) fn bytes(&mut self) -> Option<&'i [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
    pub(crate) fn str(&mut self) -> Option<&'i str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    /// A count of items of at least `min_size` bytes each: larger than what is left means
    /// corrupt (and must not size an allocation).
    pub(crate) fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()?;
        (n.checked_mul(min_size.max(1))? <= self.rest.len()).then_some(n)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
