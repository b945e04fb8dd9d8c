//! HTTP/2 request reassembly (RFC 9113) from the client's side of a connection: the
//! preface, frames split at any byte, HEADERS + CONTINUATION decoded with HPACK, DATA with
//! padding, many streams interleaved. A request completes at END_STREAM.
//!
//! DATA payloads are streamed (never buffered beyond the body cap); only HEADERS,
//! CONTINUATION and SETTINGS payloads are buffered, within limits. Frames that carry no
//! request data (PING, WINDOW_UPDATE, PRIORITY, GOAWAY, unknown types) are skipped by
//! length without copying.

use crate::hpack::{Decoder, Field, HpackLimits};
use crate::request::{Request, Version, split_authority};
use crate::{BodyMode, Config, Decide, Event, FeedResult, H2_PREFACE, Malformed};

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// RFC 9113 §4.2: frame payloads cannot exceed 2^24 - 1 anyway; SETTINGS are small.
const MAX_SETTINGS_PAYLOAD: usize = 6 * 64;

#[derive(Clone, Copy)]
struct FrameHeader {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

enum St {
    Preface(usize),
    /// Collecting the 9-byte frame header.
    Header,
    /// A frame whose payload is collected whole in `payload`.
    Buffered(FrameHeader),
    /// DATA: waiting for the pad length byte.
    DataPadLen(FrameHeader),
    /// DATA payload bytes left to deliver, then padding bytes to skip.
    Data {
        fh: FrameHeader,
        data_left: usize,
        pad_left: usize,
        /// Stream to deliver to; `None` for a stream already closed (ignored).
        open: bool,
    },
    /// Payload bytes to skip.
    Skip(usize),
}

struct Stream {
    id: u32,
    /// The head (and body captured so far), until it is reported.
    req: Option<Request>,
    /// Everything delivered for this stream has been reported.
    reported: bool,
    body_len: u64,
    content_length: Option<u64>,
    /// DATA payload (padding included) sent on this stream: what flow control counts.
    flow: u64,
}

pub(crate) struct Parser {
    config: Config,
    st: St,
    hdr: [u8; 9],
    hdr_len: usize,
    payload: Vec<u8>,
    /// Header block being collected from HEADERS + CONTINUATION.
    block: Vec<u8>,
    /// The stream whose CONTINUATION frames are expected, and its HEADERS flags.
    continuation: Option<(u32, u8)>,
    decoder: Decoder,
    fields: Vec<Field>,
    streams: Vec<Stream>,
    max_stream_id: u32,
    settings: Vec<(u16, u32)>,
    /// Bytes fed so far: the stream offset just past the last input.
    fed: u64,
    /// DATA payload (padding included) sent on the connection: what flow control counts.
    flow: u64,
}

impl Parser {
    pub(crate) fn new(config: Config) -> Self {
        let l = config.limits;
        Parser {
            config,
            st: St::Preface(0),
            hdr: [0; 9],
            hdr_len: 0,
            payload: Vec::new(),
            block: Vec::new(),
            continuation: None,
            decoder: Decoder::new(HpackLimits {
                max_table_size: l.max_hpack_table,
                max_list_size: l.max_header_list,
                max_fields: l.max_headers + 8,
            }),
            fields: Vec::new(),
            streams: Vec::new(),
            max_stream_id: 0,
            settings: Vec::new(),
            fed: 0,
            flow: 0,
        }
    }

    pub(crate) fn settings(&self) -> &[(u16, u32)] {
        &self.settings
    }

    pub(crate) fn request_started(&self) -> bool {
        if self.continuation.is_some() || self.streams.iter().any(|s| !s.reported) {
            return true;
        }
        match self.st {
            // A partial frame header may be the start of a HEADERS frame.
            St::Header => self.hdr_len > 0,
            St::Buffered(fh) => fh.kind == HEADERS || fh.kind == CONTINUATION,
            _ => false,
        }
    }

    /// Flow-controlled bytes sent on the connection, and `(stream, bytes)` for each stream
    /// whose request has started and not been reported (its body is still held back); `None`
    /// in the middle of a frame, when the client has more of it to write.
    pub(crate) fn held_flow(&self) -> Option<(u64, Vec<(u32, u64)>)> {
        if !matches!(self.st, St::Header) || self.hdr_len != 0 {
            return None;
        }
        let held = self
            .streams
            .iter()
            .filter(|s| !s.reported && s.req.is_some())
            .map(|s| (s.id, s.flow))
            .collect();
        Some((self.flow, held))
    }

    pub(crate) fn pending_heads(&self) -> Vec<Request> {
        self.streams
            .iter()
            .filter(|s| !s.reported)
            .filter_map(|s| {
                let mut r = s.req.clone()?;
                r.body_complete = false;
                Some(r)
            })
            .collect()
    }

    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        // The stream offset of `input[0]` is always `end - input.len()`.
        let end = self.fed + input.len() as u64;
        self.fed = end;
        while !input.is_empty() {
            match self.st {
                St::Preface(seen) => {
                    let n = input.len().min(H2_PREFACE.len() - seen);
                    if input[..n] != H2_PREFACE[seen..seen + n] {
                        return Err(Malformed::BadPreface);
                    }
                    input = &input[n..];
                    self.st = if seen + n == H2_PREFACE.len() {
                        St::Header
                    } else {
                        St::Preface(seen + n)
                    };
                }
                St::Header => {
                    let n = input.len().min(9 - self.hdr_len);
                    self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&input[..n]);
                    self.hdr_len += n;
                    input = &input[n..];
                    if self.hdr_len == 9 {
                        self.hdr_len = 0;
                        let h = self.hdr;
                        let fh = FrameHeader {
                            len: (usize::from(h[0]) << 16)
                                | (usize::from(h[1]) << 8)
                                | usize::from(h[2]),
                            kind: h[3],
                            flags: h[4],
                            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                        };
                        self.begin_frame(fh, out, decide)?;
                    }
                }
                St::Buffered(fh) => {
                    let need = fh.len - self.payload.len();
                    if self.payload.is_empty() && input.len() >= fh.len {
                        // The whole payload is here: no copy.
                        let (p, rest) = input.split_at(fh.len);
                        input = rest;
                        self.st = St::Header;
                        self.buffered_frame(fh, p, out, decide)?;
                    } else {
                        let n = input.len().min(need);
                        self.payload.extend_from_slice(&input[..n]);
                        input = &input[n..];
                        if self.payload.len() == fh.len {
                            let p = std::mem::take(&mut self.payload);
                            self.st = St::Header;
                            let r = self.buffered_frame(fh, &p, out, decide);
                            self.payload = p;
                            self.payload.clear();
                            r?;
                        }
                    }
                }
                St::DataPadLen(fh) => {
                    let pad = usize::from(input[0]);
                    input = &input[1..];
                    if pad > fh.len - 1 {
                        return Err(Malformed::Protocol("DATA padding exceeds the frame"));
                    }
                    self.start_data(fh, fh.len - 1 - pad, pad, out)?;
                }
                St::Data {
                    fh,
                    data_left,
                    pad_left,
                    open,
                } => {
                    if data_left > 0 {
                        let n = input.len().min(data_left);
                        if open {
                            let at = end - input.len() as u64;
                            self.data_bytes(fh.stream, &input[..n], at, out);
                        }
                        input = &input[n..];
                        self.st = St::Data {
                            fh,
                            data_left: data_left - n,
                            pad_left,
                            open,
                        };
                    } else {
                        let n = input.len().min(pad_left);
                        input = &input[n..];
                        self.st = St::Data {
                            fh,
                            data_left: 0,
                            pad_left: pad_left - n,
                            open,
                        };
                    }
                    if let St::Data {
                        data_left: 0,
                        pad_left: 0,
                        ..
                    } = self.st
                    {
                        self.st = St::Header;
                        if open && fh.flags & END_STREAM != 0 {
                            self.end_stream(fh.stream, out)?;
                        }
                    }
                }
                St::Skip(left) => {
                    let n = input.len().min(left);
                    input = &input[n..];
                    self.st = if left == n {
                        St::Header
                    } else {
                        St::Skip(left - n)
                    };
                }
            }
        }
        Ok(())
    }

    fn begin_frame(
        &mut self,
        fh: FrameHeader,
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        if let Some((sid, _)) = self.continuation
            && (fh.kind != CONTINUATION || fh.stream != sid)
        {
            return Err(Malformed::Protocol("expected CONTINUATION"));
        }
        match fh.kind {
            DATA => {
                if fh.stream == 0 {
                    return Err(Malformed::Protocol("DATA on stream 0"));
                }
                let len = fh.len as u64;
                self.flow += len;
                if let Some(st) = self.streams.iter_mut().find(|st| st.id == fh.stream) {
                    st.flow += len;
                }
                if fh.flags & PADDED != 0 {
                    if fh.len == 0 {
                        return Err(Malformed::Protocol("padded DATA without pad length"));
                    }
                    self.st = St::DataPadLen(fh);
                    return Ok(());
                }
                self.start_data(fh, fh.len, 0, out)?;
            }
            HEADERS | CONTINUATION => {
                if fh.stream == 0 {
                    return Err(Malformed::Protocol("HEADERS on stream 0"));
                }
                if fh.kind == CONTINUATION && self.continuation.is_none() {
                    return Err(Malformed::Protocol("unexpected CONTINUATION"));
                }
                if self.block.len() + fh.len > self.config.limits.max_head_bytes + 256 {
                    return Err(Malformed::HeaderBlockTooLarge);
                }
                self.buffer_or_run(fh, out, decide)?;
            }
            SETTINGS => {
                if fh.stream != 0 || !fh.len.is_multiple_of(6) || fh.len > MAX_SETTINGS_PAYLOAD {
                    return Err(Malformed::Protocol("bad SETTINGS frame"));
                }
                if fh.flags & 0x1 != 0 && fh.len != 0 {
                    return Err(Malformed::Protocol("SETTINGS ACK with payload"));
                }
                self.buffer_or_run(fh, out, decide)?;
            }
            PUSH_PROMISE => return Err(Malformed::Protocol("PUSH_PROMISE from a client")),
            RST_STREAM => {
                // The client abandoned the stream: nothing more will come for it.
                self.streams.retain(|s| s.id != fh.stream);
                self.skip(fh.len);
            }
            // PRIORITY, PING, GOAWAY, WINDOW_UPDATE and unknown types (which RFC 9113 §4.1
            // says to ignore) carry no request content.
            _ => self.skip(fh.len),
        }
        Ok(())
    }

    fn skip(&mut self, len: usize) {
        self.st = if len == 0 { St::Header } else { St::Skip(len) };
    }

    fn buffer_or_run(
        &mut self,
        fh: FrameHeader,
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        if fh.len == 0 {
            self.st = St::Header;
            return self.buffered_frame(fh, &[], out, decide);
        }
        self.st = St::Buffered(fh);
        Ok(())
    }

    fn start_data(
        &mut self,
        fh: FrameHeader,
        data_left: usize,
        pad_left: usize,
        out: &mut FeedResult,
    ) -> Result<(), Malformed> {
        let open = match self.streams.iter().position(|s| s.id == fh.stream) {
            Some(_) => true,
            None if fh.stream > self.max_stream_id => {
                return Err(Malformed::Protocol("DATA on an idle stream"));
            }
            // A closed stream (e.g. after the client's RST_STREAM): the server ignores or
            // rejects it; it cannot start a request.
            None => false,
        };
        self.st = St::Data {
            fh,
            data_left,
            pad_left,
            open,
        };
        if data_left == 0 && pad_left == 0 {
            self.st = St::Header;
            if open && fh.flags & END_STREAM != 0 {
                self.end_stream(fh.stream, out)?;
            }
        }
        Ok(())
    }

    /// Captures DATA payload bytes of stream `id` written at stream offset `at`.
    fn data_bytes(&mut self, id: u32, data: &[u8], at: u64, out: &mut FeedResult) {
        let cap = self.config.limits.max_body;
        let Some(s) = self.streams.iter_mut().find(|s| s.id == id) else {
            return;
        };
        s.body_len += data.len() as u64;
        if s.reported {
            return;
        }
        let Some(req) = s.req.as_mut() else {
            return;
        };
        let room = cap - req.body.len().min(cap);
        if data.len() <= room {
            req.add_body(data, at);
        } else {
            req.add_body(&data[..room], at);
            if let Some(mut r) = s.req.take() {
                r.body_complete = false;
                out.events.push(Event::TooLarge(r));
            }
            s.reported = true;
        }
    }

    fn end_stream(&mut self, id: u32, out: &mut FeedResult) -> Result<(), Malformed> {
        let Some(i) = self.streams.iter().position(|s| s.id == id) else {
            return Ok(());
        };
        let s = self.streams.swap_remove(i);
        if s.content_length.is_some_and(|cl| cl != s.body_len) {
            return Err(Malformed::ContentLengthMismatch);
        }
        if let (false, Some(req)) = (s.reported, s.req) {
            out.events.push(Event::Complete(req));
        }
        Ok(())
    }

    fn buffered_frame(
        &mut self,
        fh: FrameHeader,
        p: &[u8],
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        match fh.kind {
            SETTINGS => {
                for e in p.chunks_exact(6) {
                    let id = u16::from_be_bytes([e[0], e[1]]);
                    let v = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
                    if self.settings.len() < 64 {
                        self.settings.push((id, v));
                    }
                }
                Ok(())
            }
            HEADERS => {
                let mut frag = p;
                let mut pad = 0;
                if fh.flags & PADDED != 0 {
                    let (&n, rest) = frag
                        .split_first()
                        .ok_or(Malformed::Protocol("HEADERS too short"))?;
                    pad = usize::from(n);
                    frag = rest;
                }
                if fh.flags & PRIORITY_FLAG != 0 {
                    frag = frag
                        .get(5..)
                        .ok_or(Malformed::Protocol("HEADERS too short"))?;
                }
                if pad > frag.len() {
                    return Err(Malformed::Protocol("HEADERS padding exceeds the frame"));
                }
                let frag = &frag[..frag.len() - pad];
                self.header_fragment(fh.stream, fh.flags, fh.flags, frag, out, decide)
            }
            CONTINUATION => {
                let (sid, flags) = self
                    .continuation
                    .ok_or(Malformed::Protocol("unexpected CONTINUATION"))?;
                self.header_fragment(sid, flags, fh.flags, p, out, decide)
            }
            _ => Ok(()),
        }
    }

    /// Adds a fragment to the header block; decodes it at END_HEADERS. `first_flags` are the
    /// HEADERS frame's (END_STREAM lives there), `flags` the current frame's.
    fn header_fragment(
        &mut self,
        sid: u32,
        first_flags: u8,
        flags: u8,
        frag: &[u8],
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        if flags & END_HEADERS == 0 {
            if self.block.len() + frag.len() > self.config.limits.max_head_bytes {
                return Err(Malformed::HeaderBlockTooLarge);
            }
            self.block.extend_from_slice(frag);
            self.continuation = Some((sid, first_flags));
            return Ok(());
        }
        self.continuation = None;
        let end_stream = first_flags & END_STREAM != 0;
        if self.block.is_empty() {
            if frag.len() > self.config.limits.max_head_bytes {
                return Err(Malformed::HeaderBlockTooLarge);
            }
            self.header_block(sid, end_stream, frag, out, decide)
        } else {
            if self.block.len() + frag.len() > self.config.limits.max_head_bytes {
                return Err(Malformed::HeaderBlockTooLarge);
            }
            let mut block = std::mem::take(&mut self.block);
            block.extend_from_slice(frag);
            let r = self.header_block(sid, end_stream, &block, out, decide);
            block.clear();
            self.block = block;
            r
        }
    }

    fn header_block(
        &mut self,
        sid: u32,
        end_stream: bool,
        block: &[u8],
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        // Always decode first: every block updates the shared HPACK table.
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        let r = self
            .decoder
            .decode(block, &mut fields)
            .map_err(Malformed::Hpack);
        let r = r.and_then(|()| self.apply_block(sid, end_stream, &mut fields, out, decide));
        self.fields = fields;
        r
    }

    fn apply_block(
        &mut self,
        sid: u32,
        end_stream: bool,
        fields: &mut Vec<Field>,
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        if sid.is_multiple_of(2) {
            return Err(Malformed::Protocol("client stream ids are odd"));
        }
        if let Some(s) = self.streams.iter_mut().find(|s| s.id == sid) {
            // A second header block on an open stream is a trailer section.
            if !end_stream {
                return Err(Malformed::Protocol("trailers without END_STREAM"));
            }
            if let Some(req) = s.req.as_mut() {
                for (n, v) in fields.drain(..) {
                    if n.first() == Some(&b':') {
                        return Err(Malformed::BadPseudoHeader);
                    }
                    check_name(&n)?;
                    if req.headers.len() + req.trailers.len() >= self.config.limits.max_headers {
                        return Err(Malformed::TooManyHeaders);
                    }
                    req.trailers
                        .push((String::from_utf8_lossy(&n).into_owned(), v));
                }
            }
            return self.end_stream(sid, out);
        }
        if sid <= self.max_stream_id {
            return Err(Malformed::Protocol("HEADERS on a closed stream"));
        }
        self.max_stream_id = sid;
        let (req, content_length) = build_request(sid, fields, self.config)?;
        let cap = self.config.limits.max_body as u64;
        if end_stream {
            if content_length.is_some_and(|c| c != 0) {
                return Err(Malformed::ContentLengthMismatch);
            }
            out.events.push(Event::Complete(req));
            return Ok(());
        }
        if self.streams.len() >= self.config.limits.max_streams {
            return Err(Malformed::TooManyStreams);
        }
        let mut s = Stream {
            id: sid,
            req: Some(req),
            reported: false,
            body_len: 0,
            flow: 0,
            content_length,
        };
        let head_only = s
            .req
            .as_ref()
            .is_some_and(|r| decide(r) == BodyMode::HeadOnly);
        if head_only || content_length.is_some_and(|c| c > cap) {
            if let Some(mut r) = s.req.clone() {
                r.body_complete = false;
                out.events.push(if head_only {
                    Event::Head(r)
                } else {
                    Event::TooLarge(r)
                });
            }
            s.reported = true;
        }
        self.streams.push(s);
        Ok(())
    }
}

/// RFC 9113 §8.2: lower-case names, no connection-specific fields.
fn check_name(n: &[u8]) -> Result<(), Malformed> {
    if n.is_empty()
        || n.iter()
            .any(|&b| b.is_ascii_uppercase() || b <= b' ' || b == b':' || b >= 0x7f)
    {
        return Err(Malformed::BadH2Header);
    }
    if matches!(
        n,
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
    ) {
        return Err(Malformed::BadH2Header);
    }
    Ok(())
}

fn ascii(v: Vec<u8>) -> Result<String, Malformed> {
    if v.iter().any(|&b| b <= b' ' || b >= 0x7f) {
        return Err(Malformed::BadPseudoHeader);
    }
    String::from_utf8(v).map_err(|_| Malformed::BadPseudoHeader)
}

fn build_request(
    sid: u32,
    fields: &mut Vec<Field>,
    config: Config,
) -> Result<(Request, Option<u64>), Malformed> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut protocol = None;
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(fields.len());
    let mut host_header: Option<String> = None;
    let mut content_length: Option<u64> = None;
    let mut expect_continue = false;
    for (n, v) in fields.drain(..) {
        if let Some(pseudo) = n.strip_prefix(b":") {
            // Pseudo-headers come first, once each (RFC 9113 §8.3).
            if !headers.is_empty() {
                return Err(Malformed::BadPseudoHeader);
            }
            let slot = match pseudo {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"authority" => &mut authority,
                b"path" => &mut path,
                b"protocol" => &mut protocol,
                _ => return Err(Malformed::BadPseudoHeader),
            };
            if slot.is_some() {
                return Err(Malformed::BadPseudoHeader);
            }
            *slot = Some(ascii(v)?);
            continue;
        }
        check_name(&n)?;
        if headers.len() >= config.limits.max_headers {
            return Err(Malformed::TooManyHeaders);
        }
        match &n[..] {
            b"te" if !v.eq_ignore_ascii_case(b"trailers") => return Err(Malformed::BadH2Header),
            b"host" => {
                if host_header.is_some() {
                    return Err(Malformed::ConflictingHost);
                }
                host_header = Some(String::from_utf8(v.clone()).map_err(|_| Malformed::BadHost)?);
            }
            b"content-length" => {
                let s = std::str::from_utf8(&v).map_err(|_| Malformed::BadContentLength)?;
                if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Malformed::BadContentLength);
                }
                let c = s.parse::<u64>().map_err(|_| Malformed::BadContentLength)?;
                if content_length.is_some_and(|o| o != c) {
                    return Err(Malformed::BadContentLength);
                }
                content_length = Some(c);
            }
            b"expect" => expect_continue |= v.eq_ignore_ascii_case(b"100-continue"),
            _ => {}
        }
        // check_name accepted only ASCII, so this never fails and never copies.
        let name = String::from_utf8(n).map_err(|_| Malformed::BadH2Header)?;
        headers.push((name, v));
    }
    let method = method.ok_or(Malformed::BadPseudoHeader)?;
    let plain_connect = method == "CONNECT" && protocol.is_none();
    if plain_connect {
        // RFC 9113 §8.5: CONNECT has only :method and :authority.
        if scheme.is_some() || path.is_some() || authority.is_none() {
            return Err(Malformed::BadPseudoHeader);
        }
    } else if scheme.is_none() || path.as_deref().is_none_or(str::is_empty) {
        return Err(Malformed::BadPseudoHeader);
    }
    if protocol.is_some() && method != "CONNECT" {
        return Err(Malformed::BadPseudoHeader);
    }
    let authority = authority.filter(|a| !a.is_empty());
    let (host, port) = match (&authority, &host_header) {
        (Some(a), h) => {
            let hp = split_authority(a).ok_or(Malformed::BadHost)?;
            if let Some(h) = h {
                // A Host that names another origin than :authority is how a request
                // would be routed differently from how it was judged.
                if split_authority(h).as_ref() != Some(&hp) {
                    return Err(Malformed::ConflictingHost);
                }
            }
            (Some(hp.0), hp.1)
        }
        (None, Some(h)) => {
            let hp = split_authority(h).ok_or(Malformed::BadHost)?;
            (Some(hp.0), hp.1)
        }
        (None, None) => (None, None),
    };
    let authority = authority.or(host_header);
    Ok((
        Request {
            version: Version::Http2,
            stream_id: sid,
            method,
            scheme,
            authority,
            host,
            port,
            path: path.unwrap_or_default(),
            headers,
            trailers: Vec::new(),
            body: Vec::new(),
            body_complete: true,
            expect_continue,
            body_spans: Vec::new(),
        },
        content_length,
    ))
}

#[cfg(test)]
mod tests {
    //! Hand-built frames with raw (non-Huffman) HPACK literals, to reach the framing corner
    //! cases precisely; real encoder output is tested in `tests/fixtures.rs`.
    use super::*;
    use crate::{Config, Connection, Limits};

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        let len = payload.len() as u32;
        f.extend_from_slice(&len.to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Literal without indexing, new name, raw strings (lengths < 127).
    fn lit(out: &mut Vec<u8>, n: &str, v: &str) {
        out.push(0x00);
        out.push(n.len() as u8);
        out.extend_from_slice(n.as_bytes());
        out.push(v.len() as u8);
        out.extend_from_slice(v.as_bytes());
    }

    fn block(method: &str, path: &str, auth: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        lit(&mut b, ":method", method);
        lit(&mut b, ":scheme", "https");
        lit(&mut b, ":authority", auth);
        lit(&mut b, ":path", path);
        for (n, v) in extra {
            lit(&mut b, n, v);
        }
        b
    }

    fn preface() -> Vec<u8> {
        let mut v = H2_PREFACE.to_vec();
        // SETTINGS: HEADER_TABLE_SIZE=0, ENABLE_PUSH=0.
        v.extend(frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]));
        v
    }

    fn conn() -> Connection {
        Connection::http2(Config::default())
    }

    fn reqs(events: &[Event]) -> Vec<Request> {
        events
            .iter()
            .map(|e| match e {
                Event::Complete(r) => r.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    /// Interleaved streams, CONTINUATION, padding, priority, control frames.
    fn busy_stream() -> Vec<u8> {
        let mut s = preface();
        s.extend(frame(0x8, 0, 0, &[0, 0, 0xff, 0xff])); // WINDOW_UPDATE
        // Stream 1: POST with padded + priority HEADERS split by a CONTINUATION.
        let b1 = block(
            "POST",
            "/graphql",
            "API.example.com:443",
            &[("content-type", "application/json")],
        );
        let (a, b) = b1.split_at(20);
        let mut p = vec![3]; // pad length
        p.extend_from_slice(&[0x80, 0, 0, 0, 16]); // exclusive dep on 0, weight 16
        p.extend_from_slice(a);
        p.extend_from_slice(&[0, 0, 0]);
        s.extend(frame(HEADERS, PADDED | PRIORITY_FLAG, 1, &p));
        s.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        // Stream 3: GET, END_STREAM on HEADERS.
        s.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            3,
            &block("GET", "/a?b=c", "x.test", &[]),
        ));
        s.extend(frame(0x6, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8])); // PING
        // Stream 5: PUT whose body is interleaved with stream 1's.
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            5,
            &block("PUT", "/f", "x.test", &[]),
        ));
        s.extend(frame(DATA, 0, 1, b"{\"query\":"));
        s.extend(frame(DATA, PADDED, 5, &[2, b'a', b'b', 0, 0]));
        s.extend(frame(0x2, 0, 1, &[0, 0, 0, 3, 10])); // PRIORITY
        s.extend(frame(0xfa, 0, 1, b"unknown frame type"));
        s.extend(frame(
            DATA,
            PADDED | END_STREAM,
            1,
            &[1, b'"', b'm', b'"', b'}', 0],
        ));
        s.extend(frame(DATA, 0, 5, b"cd"));
        // Stream 5 ends with trailers.
        let mut t = Vec::new();
        lit(&mut t, "x-sum", "42");
        s.extend(frame(HEADERS, END_STREAM | END_HEADERS, 5, &t));
        s.extend(frame(0x7, 0, 0, &[0, 0, 0, 5, 0, 0, 0, 0])); // GOAWAY
        s
    }

    #[test]
    fn interleaved_streams() {
        let data = busy_stream();
        let r = conn().feed(&data);
        assert!(!r.request_started);
        let v = reqs(&r.events);
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[0].stream_id(), v[0].method(), v[0].path()),
            (3, "GET", "/a?b=c")
        );
        assert_eq!((v[1].stream_id(), v[1].method()), (1, "POST"));
        assert_eq!(v[1].host(), Some("api.example.com"));
        assert_eq!(v[1].port(), Some(443));
        assert_eq!(v[1].scheme(), Some("https"));
        assert_eq!(v[1].body(), b"{\"query\":\"m\"}");
        assert!(v[1].is_graphql());
        assert_eq!(v[2].body(), b"abcd");
        assert_eq!(v[2].trailers().collect::<Vec<_>>(), [("x-sum", &b"42"[..])]);
        assert_eq!(
            v[1].headers().collect::<Vec<_>>(),
            [("content-type", &b"application/json"[..])]
        );
    }

    /// The bytes of `raw` that `req`'s body spans point at (raw starts at stream offset 0).
    fn at_spans(raw: &[u8], req: &Request) -> Vec<u8> {
        let mut v = Vec::new();
        for s in req.body_spans() {
            v.extend_from_slice(&raw[s.offset as usize..s.offset as usize + s.len]);
        }
        v
    }

    #[test]
    fn body_spans_locate_data_payloads_and_patch_in_place() {
        let mut data = busy_stream();
        let v = reqs(&conn().feed(&data).events);
        // Padding, frames of other streams and frame headers are not body.
        assert_eq!(at_spans(&data, &v[1]), v[1].body());
        assert_eq!(at_spans(&data, &v[2]), v[2].body());
        assert_eq!(v[1].body_spans().len(), 2);
        assert!(v[0].body_spans().is_empty());
        // Same-length bodies written over the spans: the stream still parses, with the new
        // bodies and everything else unchanged.
        assert!(crate::patch_body(&mut data, 0, &v[1], b"{\"query\":\"M\"}"));
        assert!(crate::patch_body(&mut data, 0, &v[2], b"WXYZ"));
        let w = reqs(&conn().feed(&data).events);
        assert_eq!(w[1].body(), b"{\"query\":\"M\"}");
        assert_eq!(w[2].body(), b"WXYZ");
        assert_eq!((w[0].path(), w[2].trailers().count()), (v[0].path(), 1));
        // Refused, and nothing written: another length, a window that misses a span.
        let before = data.clone();
        assert!(!crate::patch_body(&mut data, 0, &w[2], b"abc"));
        let cut = w[2].body_spans()[0].offset as usize + 1;
        assert!(!crate::patch_body(
            &mut data[cut..],
            cut as u64,
            &w[2],
            b"abcd"
        ));
        assert_eq!(data, before);
        // Split at every byte, the spans are the same.
        for cut in 0..=data.len() {
            let mut c = conn();
            let mut e = c.feed(&data[..cut]).events;
            e.extend(c.feed(&data[cut..]).events);
            let x = reqs(&e);
            assert_eq!(x[2].body_spans(), w[2].body_spans(), "cut {cut}");
        }
    }

    #[test]
    fn body_spans_are_bounded() {
        let mut c = conn();
        let mut s = preface();
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/p", "h", &[]),
        ));
        for _ in 0..5000 {
            s.extend(frame(DATA, 0, 1, b"x"));
        }
        s.extend(frame(DATA, END_STREAM, 1, b"y"));
        let v = reqs(&c.feed(&s).events);
        assert_eq!(v[0].body().len(), 5001);
        assert_eq!(v[0].body_spans().len(), 4096);
        let mut raw = s.clone();
        let body = vec![b'z'; 5001];
        assert!(!crate::patch_body(&mut raw, 0, &v[0], &body));
        assert_eq!(raw, s);
    }

    #[test]
    fn body_mode_per_request() {
        let mut c = conn();
        let mut s = preface();
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/big", "h", &[]),
        ));
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            3,
            &block("POST", "/gql", "h", &[]),
        ));
        s.extend(frame(DATA, END_STREAM, 1, b"0123456789"));
        s.extend(frame(DATA, END_STREAM, 3, b"{}"));
        let mut out = FeedResult::default();
        let mut asked = Vec::new();
        c.feed_into_with(&s, &mut out, &mut |r| {
            asked.push(r.path().to_string());
            if r.path() == "/big" {
                BodyMode::HeadOnly
            } else {
                BodyMode::Capture
            }
        });
        assert_eq!(asked, ["/big", "/gql"]);
        assert!(!out.request_started);
        match &out.events[..] {
            [Event::Head(a), Event::Complete(b)] => {
                assert_eq!((a.path(), a.body()), ("/big", &b""[..]));
                assert_eq!((b.path(), b.body()), ("/gql", &b"{}"[..]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.fed(), s.len() as u64);
    }

    #[test]
    fn every_split_point() {
        let data = busy_stream();
        let whole = conn().feed(&data).events;
        for cut in 0..=data.len() {
            let mut c = conn();
            let mut e = c.feed(&data[..cut]).events;
            let r = c.feed(&data[cut..]);
            e.extend(r.events);
            assert_eq!(e, whole, "cut {cut}");
            assert!(!r.request_started);
        }
    }

    #[test]
    fn progress_and_pending_heads() {
        let mut c = conn();
        let r = c.feed(&preface());
        assert!(!r.request_started && r.events.is_empty());
        assert_eq!(c.h2_client_settings(), [(1, 0), (2, 0)]);
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/p", "h", &[]),
        ));
        assert!(r.request_started && r.events.is_empty());
        let heads = c.pending_heads();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].path(), "/p");
        let r = c.feed(&frame(DATA, END_STREAM, 1, b"x"));
        assert_eq!(reqs(&r.events)[0].body(), b"x");
        assert!(!r.request_started && c.pending_heads().is_empty());
        // A partial frame header might be a HEADERS: hold it.
        assert!(c.feed(&[0, 0]).request_started);
    }

    #[test]
    fn rst_stream_drops_request() {
        let mut c = conn();
        c.feed(&preface());
        c.feed(&frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/p", "h", &[]),
        ));
        let r = c.feed(&frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]));
        assert!(!r.request_started && r.events.is_empty());
        // Late DATA on the closed stream is ignored, not an error.
        let r = c.feed(&frame(DATA, END_STREAM, 1, b"late"));
        assert!(r.events.is_empty() && c.failed().is_none());
    }

    #[test]
    fn content_length_is_checked() {
        let mut c = conn();
        c.feed(&preface());
        c.feed(&frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/p", "h", &[("content-length", "3")]),
        ));
        let r = c.feed(&frame(DATA, END_STREAM, 1, b"ab"));
        assert_eq!(r.malformed(), Some(Malformed::ContentLengthMismatch));
    }

    #[test]
    fn malformed_h2() {
        let hb = |extra: &[(&str, &str)]| {
            frame(
                HEADERS,
                END_STREAM | END_HEADERS,
                1,
                &block("GET", "/", "h", extra),
            )
        };
        let cases: Vec<(Vec<u8>, Malformed)> = vec![
            (hb(&[("Upper", "x")]), Malformed::BadH2Header),
            (hb(&[("connection", "close")]), Malformed::BadH2Header),
            (hb(&[("te", "gzip")]), Malformed::BadH2Header),
            (hb(&[("host", "other.example")]), Malformed::ConflictingHost),
            (hb(&[(":path", "/again")]), Malformed::BadPseudoHeader),
            (
                frame(HEADERS, END_STREAM | END_HEADERS, 1, &{
                    let mut b = Vec::new();
                    lit(&mut b, ":method", "GET");
                    lit(&mut b, "accept", "*/*");
                    lit(&mut b, ":path", "/");
                    b
                }),
                Malformed::BadPseudoHeader,
            ),
            (
                frame(HEADERS, END_STREAM | END_HEADERS, 1, &{
                    let mut b = Vec::new();
                    lit(&mut b, ":method", "GET");
                    lit(&mut b, ":bogus", "x");
                    b
                }),
                Malformed::BadPseudoHeader,
            ),
            (
                frame(HEADERS, END_STREAM | END_HEADERS, 1, &{
                    let mut b = Vec::new();
                    lit(&mut b, ":method", "GET");
                    lit(&mut b, ":scheme", "https");
                    b
                }),
                Malformed::BadPseudoHeader,
            ),
            (
                frame(
                    HEADERS,
                    END_STREAM | END_HEADERS,
                    2,
                    &block("GET", "/", "h", &[]),
                ),
                Malformed::Protocol("client stream ids are odd"),
            ),
            (
                frame(
                    HEADERS,
                    END_STREAM | END_HEADERS,
                    0,
                    &block("GET", "/", "h", &[]),
                ),
                Malformed::Protocol("HEADERS on stream 0"),
            ),
            (
                frame(HEADERS, END_STREAM | END_HEADERS, 1, &[0x80]),
                Malformed::Hpack(crate::HpackError::BadIndex),
            ),
            (
                frame(DATA, 0, 7, b"x"),
                Malformed::Protocol("DATA on an idle stream"),
            ),
            (
                frame(DATA, PADDED, 1, &[9, 1]),
                Malformed::Protocol("DATA padding exceeds the frame"),
            ),
            (
                frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, &[200, 0x82]),
                Malformed::Protocol("HEADERS padding exceeds the frame"),
            ),
            (
                frame(CONTINUATION, END_HEADERS, 1, &[0x82]),
                Malformed::Protocol("unexpected CONTINUATION"),
            ),
            (
                frame(PUSH_PROMISE, 0, 1, &[0, 0, 0, 2]),
                Malformed::Protocol("PUSH_PROMISE from a client"),
            ),
            (
                frame(SETTINGS, 0, 0, &[0, 1, 0]),
                Malformed::Protocol("bad SETTINGS frame"),
            ),
            (
                {
                    let mut v = frame(HEADERS, END_STREAM, 1, &block("GET", "/", "h", &[]));
                    v.extend(frame(DATA, 0, 1, b"x"));
                    v
                },
                Malformed::Protocol("expected CONTINUATION"),
            ),
            (
                {
                    let mut v = hb(&[]);
                    v.extend(hb(&[]));
                    v
                },
                Malformed::Protocol("HEADERS on a closed stream"),
            ),
        ];
        for (i, (f, want)) in cases.into_iter().enumerate() {
            let mut data = preface();
            data.extend(f);
            let r = conn().feed(&data);
            assert_eq!(r.malformed(), Some(want), "case {i}");
        }
        let r = conn().feed(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
        assert_eq!(r.malformed(), Some(Malformed::BadPreface));
    }

    #[test]
    fn connect_and_host_header() {
        let mut c = conn();
        c.feed(&preface());
        let mut b = Vec::new();
        lit(&mut b, ":method", "CONNECT");
        lit(&mut b, ":authority", "db.internal:5432");
        let r = c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &b));
        let v = reqs(&r.events);
        assert_eq!(
            (v[0].host(), v[0].port(), v[0].path()),
            (Some("db.internal"), Some(5432), "")
        );
        // Without :authority, the Host header names the host.
        let mut b = Vec::new();
        lit(&mut b, ":method", "GET");
        lit(&mut b, ":scheme", "https");
        lit(&mut b, ":path", "/");
        lit(&mut b, "host", "Only.Host:8080");
        let r = c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &b));
        let v = reqs(&r.events);
        assert_eq!((v[0].host(), v[0].port()), (Some("only.host"), Some(8080)));
        // Host equal to :authority (after normalisation) is fine.
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            5,
            &block("GET", "/", "A.b:1", &[("host", "a.B:1")]),
        ));
        assert_eq!(reqs(&r.events).len(), 1);
    }

    fn limited(f: impl FnOnce(&mut Limits)) -> Connection {
        let mut cfg = Config::default();
        f(&mut cfg.limits);
        let mut c = Connection::http2(cfg);
        c.feed(&preface());
        c
    }

    #[test]
    fn body_cap_and_head_only() {
        let mut c = limited(|l| l.max_body = 4);
        c.feed(&frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/big", "h", &[]),
        ));
        let r = c.feed(&frame(DATA, 0, 1, b"0123456789"));
        match &r.events[..] {
            [Event::TooLarge(req)] => assert_eq!(req.body(), b"0123"),
            other => panic!("{other:?}"),
        }
        assert!(!r.request_started);
        let r = c.feed(&frame(DATA, END_STREAM, 1, b"more"));
        assert!(r.events.is_empty() && !r.request_started);
        // Announced by content-length: reported at the head.
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS,
            3,
            &block("POST", "/cl", "h", &[("content-length", "5")]),
        ));
        assert!(matches!(&r.events[..], [Event::TooLarge(q)] if q.path() == "/cl"));

        let cfg = Config {
            body: BodyMode::HeadOnly,
            ..Config::default()
        };
        let mut c = Connection::http2(cfg);
        c.feed(&preface());
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/h", "h", &[]),
        ));
        assert!(matches!(&r.events[..], [Event::Head(q)] if q.path() == "/h"));
        assert!(!r.request_started);
        let r = c.feed(&frame(DATA, END_STREAM, 1, b"body"));
        assert!(r.events.is_empty());
    }

    #[test]
    fn header_block_limit() {
        let b = block("GET", "/", "h", &[("x", &"y".repeat(100))]);
        let mut c = limited(|l| l.max_head_bytes = b.len());
        let r = c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &b));
        assert_eq!(reqs(&r.events).len(), 1);
        let big = block("GET", "/", "h", &[("x", &"y".repeat(101))]);
        let r = c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &big));
        assert_eq!(r.malformed(), Some(Malformed::HeaderBlockTooLarge));
        // Endless CONTINUATION frames are cut off too.
        let mut c = limited(|l| l.max_head_bytes = 1000);
        c.feed(&frame(HEADERS, 0, 1, &[0x82]));
        let mut last = None;
        for _ in 0..20 {
            let r = c.feed(&frame(CONTINUATION, 0, 1, &[0x82; 100]));
            if let Some(m) = r.malformed() {
                last = Some(m);
                break;
            }
        }
        assert_eq!(last, Some(Malformed::HeaderBlockTooLarge));
    }

    #[test]
    fn stream_and_header_count_limits() {
        let mut c = limited(|l| l.max_streams = 2);
        c.feed(&frame(
            HEADERS,
            END_HEADERS,
            1,
            &block("POST", "/", "h", &[]),
        ));
        c.feed(&frame(
            HEADERS,
            END_HEADERS,
            3,
            &block("POST", "/", "h", &[]),
        ));
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS,
            5,
            &block("POST", "/", "h", &[]),
        ));
        assert_eq!(r.malformed(), Some(Malformed::TooManyStreams));

        let mut c = limited(|l| l.max_headers = 2);
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &block("GET", "/", "h", &[("a", "1"), ("b", "2")]),
        ));
        assert_eq!(reqs(&r.events).len(), 1);
        let r = c.feed(&frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &block("GET", "/", "h", &[("a", "1"), ("b", "2"), ("c", "3")]),
        ));
        assert_eq!(r.malformed(), Some(Malformed::TooManyHeaders));
    }

    #[test]
    fn header_list_limit() {
        // RFC 7540 accounting: name + value + 32 per field. The first block costs 201, the
        // second exactly 300 (fits), the third 301 (does not).
        let mut c = limited(|l| l.max_header_list = 300);
        let ok = block("GET", "/", "h", &[("a", "1")]);
        assert_eq!(
            reqs(
                &c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &ok))
                    .events
            )
            .len(),
            1
        );
        let edge = block("GET", "/", "h", &[("a", &"1".repeat(100))]);
        assert_eq!(
            reqs(
                &c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &edge))
                    .events
            )
            .len(),
            1
        );
        let big = block("GET", "/", "h", &[("a", &"1".repeat(101))]);
        let r = c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &big));
        assert_eq!(
            r.malformed(),
            Some(Malformed::Hpack(crate::HpackError::ListTooLarge))
        );
    }

    #[test]
    fn hpack_table_limit() {
        let mut c = limited(|l| l.max_hpack_table = 8192);
        // Size update to 8192 is accepted, 8193 is not.
        let mut ok = vec![0x3f, 0xe1, 0x3f];
        ok.extend(block("GET", "/", "h", &[]));
        assert_eq!(
            reqs(
                &c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &ok))
                    .events
            )
            .len(),
            1
        );
        let mut bad = vec![0x3f, 0xe2, 0x3f];
        bad.extend(block("GET", "/", "h", &[]));
        let r = c.feed(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &bad));
        assert_eq!(
            r.malformed(),
            Some(Malformed::Hpack(crate::HpackError::BadSizeUpdate))
        );
    }

    #[test]
    fn garbage_never_panics() {
        let base = busy_stream();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 24..base.len() {
            for flip in [0x00u8, 0x01, 0x04, 0x08, 0x20, 0x7f, 0xff] {
                let mut d = base.clone();
                d[i] = flip;
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let cut = (seed as usize) % (d.len() + 1);
                let mut c = conn();
                let _ = c.feed(&d[..cut]);
                let _ = c.feed(&d[cut..]);
            }
        }
    }
}
