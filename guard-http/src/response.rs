//! Response statuses from what a server sends (the plaintext a client reads), for the audit:
//! which status answered a request that was recorded.
//!
//! - HTTP/2: every frame is followed (9-byte headers, payloads skipped by length), and every
//!   header block is HPACK-decoded, because the server's dynamic table must stay in step even
//!   for blocks nobody asked about. A final `:status` (200-599) on a stream is reported with
//!   its stream id; informational ones (1xx) and trailers are not.
//! - HTTP/1: a status line at the start of a read (`HTTP/1.x NNN`), 1xx skipped. Bodies are
//!   not followed, so a response that starts in the middle of a read (pipelined responses
//!   arriving together) is missed: statuses are best effort there, and the caller pairs them
//!   with requests in order.
//!
//! Bounded: an HTTP/2 header block larger than [`Limits::max_head_bytes`] or one that does not
//! decode stops the reader (it reports nothing more; the connection itself is not affected).

use crate::Limits;
use crate::hpack::{Decoder, Field, HpackLimits};

/// A final response status and the stream it answers (0 on HTTP/1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub stream_id: u32,
    pub code: u16,
}

enum Mode {
    H1,
    H2(Box<H2>),
    Stopped,
}

struct H2 {
    hdr: [u8; 9],
    hdr_len: usize,
    /// Payload bytes still to come for the current frame.
    left: usize,
    /// The current frame is kept (HEADERS, CONTINUATION, PUSH_PROMISE).
    keep: bool,
    ftype: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
    /// Header block being assembled across CONTINUATION frames: (stream, is a push promise).
    block: Vec<u8>,
    block_of: Option<(u32, bool)>,
    decoder: Decoder,
    fields: Vec<Field>,
    max_block: usize,
    /// Flow-control credit the server gave the client (RFC 9113 §6.9): the initial stream
    /// window from its SETTINGS, what its WINDOW_UPDATEs added to the connection, and to
    /// streams (the latest [`STREAM_GRANTS`] streams).
    initial_window: u32,
    conn_added: u64,
    stream_added: Vec<(u32, u64)>,
}

/// Streams whose WINDOW_UPDATEs are remembered (the held requests are among the newest).
const STREAM_GRANTS: usize = 64;
/// RFC 9113 §6.9.2: the initial window of the connection and of every stream.
const DEFAULT_WINDOW: u64 = 65_535;
const SETTINGS: u8 = 0x4;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// Follows one connection's responses.
pub struct Responses {
    mode: Mode,
}

impl Responses {
    /// For a connection whose requests are HTTP/1.
    pub fn http1() -> Self {
        Responses { mode: Mode::H1 }
    }

    /// For a connection whose requests are HTTP/2 (the server's frames, from its SETTINGS on).
    pub fn http2(limits: Limits) -> Self {
        Responses {
            mode: Mode::H2(Box::new(H2 {
                hdr: [0; 9],
                hdr_len: 0,
                left: 0,
                keep: false,
                ftype: 0,
                flags: 0,
                stream: 0,
                payload: Vec::new(),
                block: Vec::new(),
                block_of: None,
                decoder: Decoder::new(HpackLimits {
                    max_table_size: limits.max_hpack_table,
                    max_list_size: limits.max_header_list,
                    max_fields: limits.max_headers + 8,
                }),
                fields: Vec::new(),
                max_block: limits.max_head_bytes,
                initial_window: DEFAULT_WINDOW as u32,
                conn_added: 0,
                stream_added: Vec::new(),
            })),
        }
    }

    /// HTTP/2: how many DATA bytes the server has let the client send in all, on the
    /// connection and on `stream`, from the frames seen so far (the defaults when none were:
    /// a conservative floor, since credit only grows). `None` for HTTP/1 or a connection given
    /// up on.
    pub fn h2_send_window(&self, stream: u32) -> Option<(u64, u64)> {
        let Mode::H2(h) = &self.mode else {
            return None;
        };
        let on_stream = h
            .stream_added
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, a)| *a)
            .sum::<u64>();
        Some((
            DEFAULT_WINDOW + h.conn_added,
            u64::from(h.initial_window) + on_stream,
        ))
    }

    /// Feeds one read; appends the final statuses it completed.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Status>) {
        let ok = match &mut self.mode {
            Mode::H1 => {
                if let Some(code) = h1_status(bytes).filter(|c| *c >= 200) {
                    out.push(Status { stream_id: 0, code });
                }
                true
            }
            Mode::H2(h) => h.feed(bytes, out),
            Mode::Stopped => true,
        };
        if !ok {
            self.mode = Mode::Stopped;
        }
    }
}

/// The status code of an HTTP/1 status line at the start of `b`.
pub fn h1_status(b: &[u8]) -> Option<u16> {
    if !(b.starts_with(b"HTTP/1.") && b.get(8) == Some(&b' ')) {
        return None;
    }
    let d = b.get(9..12)?;
    if !d.iter().all(u8::is_ascii_digit) || !matches!(b.get(12), None | Some(b' ' | b'\r')) {
        return None;
    }
    Some(d.iter().fold(0u16, |n, c| n * 10 + u16::from(c - b'0')))
}

const HEADERS: u8 = 1;
const PUSH_PROMISE: u8 = 5;
const CONTINUATION: u8 = 9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

impl H2 {
    /// false: give up on this connection.
    fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Status>) -> bool {
        while !bytes.is_empty() {
            if self.hdr_len < 9 {
                let k = (9 - self.hdr_len).min(bytes.len());
                self.hdr[self.hdr_len..self.hdr_len + k].copy_from_slice(&bytes[..k]);
                self.hdr_len += k;
                bytes = &bytes[k..];
                if self.hdr_len < 9 {
                    return true;
                }
                let h = self.hdr;
                self.left = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                self.ftype = h[3];
                self.flags = h[4];
                self.stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                self.keep = matches!(self.ftype, HEADERS | PUSH_PROMISE | CONTINUATION)
                    || (self.ftype == SETTINGS && self.flags & ACK == 0 && self.left <= 6 * 64)
                    || (self.ftype == WINDOW_UPDATE && self.left == 4);
                if self.keep && self.left > self.max_block {
                    return false;
                }
                self.payload.clear();
                if self.left == 0 && !self.frame_done(out) {
                    return false;
                }
                continue;
            }
            let k = self.left.min(bytes.len());
            if self.keep {
                self.payload.extend_from_slice(&bytes[..k]);
            }
            self.left -= k;
            bytes = &bytes[k..];
            if self.left == 0 && !self.frame_done(out) {
                return false;
            }
        }
        true
    }

    fn frame_done(&mut self, out: &mut Vec<Status>) -> bool {
        self.hdr_len = 0;
        if !self.keep {
            return true;
        }
        let p = core::mem::take(&mut self.payload);
        let ok = match self.ftype {
            SETTINGS => {
                self.settings_frame(&p);
                true
            }
            WINDOW_UPDATE => {
                self.window_update(&p);
                true
            }
            _ => self.header_frame(&p, out),
        };
        self.payload = p;
        ok
    }

    fn settings_frame(&mut self, p: &[u8]) {
        for e in p.chunks_exact(6) {
            if u16::from_be_bytes([e[0], e[1]]) == SETTINGS_INITIAL_WINDOW_SIZE {
                self.initial_window = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
            }
        }
    }

    fn window_update(&mut self, p: &[u8]) {
        let &[a, b, c, d] = p else {
            return;
        };
        let inc = u64::from(u32::from_be_bytes([a, b, c, d]) & 0x7fff_ffff);
        if self.stream == 0 {
            self.conn_added = self.conn_added.saturating_add(inc);
        } else if let Some(e) = self
            .stream_added
            .iter_mut()
            .find(|(s, _)| *s == self.stream)
        {
            e.1 = e.1.saturating_add(inc);
        } else {
            if self.stream_added.len() >= STREAM_GRANTS {
                self.stream_added.remove(0);
            }
            self.stream_added.push((self.stream, inc));
        }
    }

    fn header_frame(&mut self, p: &[u8], out: &mut Vec<Status>) -> bool {
        let frag = match self.ftype {
            HEADERS | PUSH_PROMISE => {
                if self.block_of.is_some() {
                    return false;
                }
                let mut s = 0usize;
                let mut e = p.len();
                if self.flags & PADDED != 0 {
                    let Some(&pad) = p.first() else { return false };
                    s = 1;
                    e = match e.checked_sub(usize::from(pad)) {
                        Some(e) => e,
                        None => return false,
                    };
                }
                if self.ftype == HEADERS && self.flags & PRIORITY != 0 {
                    s += 5;
                }
                if self.ftype == PUSH_PROMISE {
                    s += 4;
                }
                let Some(f) = p.get(s..e) else { return false };
                self.block_of = Some((self.stream, self.ftype == PUSH_PROMISE));
                self.block.clear();
                f
            }
            _ => {
                if self.block_of.map(|b| b.0) != Some(self.stream) {
                    return false;
                }
                p
            }
        };
        if self.block.len() + frag.len() > self.max_block {
            return false;
        }
        self.block.extend_from_slice(frag);
        if self.flags & END_HEADERS == 0 {
            return true;
        }
        let Some((stream, promise)) = self.block_of.take() else {
            return false;
        };
        self.fields.clear();
        if self.decoder.decode(&self.block, &mut self.fields).is_err() {
            return false;
        }
        if !promise {
            let code = self
                .fields
                .iter()
                .find(|(n, _)| n.as_slice() == b":status")
                .and_then(|(_, v)| core::str::from_utf8(v).ok()?.parse::<u16>().ok());
            if let Some(code) = code.filter(|c| *c >= 200) {
                out.push(Status {
                    stream_id: stream,
                    code,
                });
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, t, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn http1_status_lines() {
        assert_eq!(h1_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(h1_status(b"HTTP/1.0 404\r\n"), Some(404));
        assert_eq!(h1_status(b"HTTP/1.1 2x0 OK"), None);
        assert_eq!(h1_status(b"xHTTP/1.1 200 OK"), None);
        let mut r = Responses::http1();
        let mut out = Vec::new();
        r.feed(b"HTTP/1.1 100 Continue\r\n\r\n", &mut out);
        r.feed(
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
            &mut out,
        );
        assert_eq!(
            out,
            vec![Status {
                stream_id: 0,
                code: 403
            }]
        );
    }

    #[test]
    fn http2_statuses_per_stream_across_split_reads() {
        // SETTINGS, then HEADERS on stream 1 (":status: 200" static index 8), DATA, then
        // HEADERS on 3 with a literal ":status: 403" (indexed name 8, incremental indexing),
        // split in CONTINUATION, then stream 5 reusing the dynamic entry (index 62).
        let mut s = frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        s.extend(frame(HEADERS, END_HEADERS, 1, &[0x88]));
        s.extend(frame(0, 1, 1, b"{\"data\":1}"));
        s.extend(frame(HEADERS, 0, 3, &[0x48, 3]));
        s.extend(frame(CONTINUATION, END_HEADERS, 3, b"403"));
        s.extend(frame(HEADERS, END_HEADERS | PADDED, 5, &[2, 0xbe, 0, 0]));
        // A trailer block (no :status) and an informational 100 report nothing.
        s.extend(frame(
            HEADERS,
            END_HEADERS | 1,
            1,
            &[0x40, 1, b'x', 1, b'y'],
        ));
        let mut r = Responses::http2(Limits::default());
        let mut out = Vec::new();
        for chunk in s.chunks(5) {
            r.feed(chunk, &mut out);
        }
        assert_eq!(
            out,
            vec![
                Status {
                    stream_id: 1,
                    code: 200
                },
                Status {
                    stream_id: 3,
                    code: 403
                },
                Status {
                    stream_id: 5,
                    code: 403
                },
            ]
        );
    }

    #[test]
    fn http2_garbage_stops_quietly() {
        let mut r = Responses::http2(Limits::default());
        let mut out = Vec::new();
        r.feed(&frame(CONTINUATION, END_HEADERS, 1, b"zz"), &mut out);
        r.feed(&frame(HEADERS, END_HEADERS, 1, &[0x88]), &mut out);
        assert!(out.is_empty());
    }

    /// The server's credit: the protocol defaults until its SETTINGS and WINDOW_UPDATEs say
    /// more; a SETTINGS ACK or a stream's update does not move the connection's credit.
    #[test]
    fn flow_control_credit_follows_settings_and_window_updates() {
        let mut r = Responses::http2(Limits::default());
        let mut out = Vec::new();
        assert_eq!(r.h2_send_window(1), Some((65_535, 65_535)));
        let mut b = frame(0x4, 0, 0, &[0, 4, 0, 0x10, 0, 0]); // INITIAL_WINDOW_SIZE 1 MiB
        b.extend(frame(0x4, 0x1, 0, &[])); // ACK
        b.extend(frame(0x8, 0, 0, &[0, 0, 0x01, 0])); // connection +256
        b.extend(frame(0x8, 0, 3, &[0, 0, 0, 10])); // stream 3 +10
        // Split anywhere, the same credit.
        for chunk in b.chunks(5) {
            r.feed(chunk, &mut out);
        }
        assert_eq!(r.h2_send_window(1), Some((65_535 + 256, 1 << 20)));
        assert_eq!(r.h2_send_window(3), Some((65_535 + 256, (1 << 20) + 10)));
        assert_eq!(Responses::http1().h2_send_window(1), None);
    }
}
