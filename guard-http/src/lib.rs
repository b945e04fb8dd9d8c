//! Reassembles the HTTP requests a client writes into a TLS connection, from the plaintext
//! captured at `SSL_write`, so libguard can gate each request (method, host, path, headers,
//! body, GraphQL operation) before it reaches the server.
//!
//! One [`Connection`] per TLS connection. Feed it the plaintext of every write, in order,
//! with [`Connection::feed`]; each call returns the [`Event`]s the new bytes completed and
//! whether a request is still being written ([`FeedResult::request_started`]). HTTP/1.0,
//! HTTP/1.1 and HTTP/2 are understood; the protocol is taken from ALPN
//! ([`Connection::http1`], [`Connection::http2`]) or detected from the first bytes
//! ([`Connection::new`], [`detect`]).
//!
//! # Holding writes until a request is complete
//!
//! A gate that must decide before any byte of a request reaches the server cannot pass a
//! write through while that write carries part of a request it has not judged. The intended
//! use from the `SSL_write` hook:
//!
//! 1. Feed the write's bytes. The parser keeps its own copy of whatever it needs (a partial
//!    head, the captured body), so the caller only keeps the raw bytes it is holding back.
//! 2. If the result has a [`Event::Malformed`], fail closed: deny if a deny or ask rule could
//!    apply to this connection (or always), and do not send the held bytes.
//! 3. Judge every reported request ([`Event::Complete`], [`Event::TooLarge`],
//!    [`Event::Head`]). A deny kills the connection: the held bytes are dropped and the write
//!    fails. An ask blocks this thread until answered.
//! 4. If [`FeedResult::request_started`] is true, some byte written so far belongs to a
//!    request that has not been reported yet: append this write to the held buffer and
//!    report the write as done to the application (return its length). Otherwise write the
//!    held bytes and this write to the server, in order, and clear the held buffer.
//!
//! ```
//! use guard_http::{Connection, Event};
//!
//! /// What an `SSL_write` hook does with one write; `send` stands for the real SSL_write.
//! fn on_write(conn: &mut Connection, held: &mut Vec<u8>, buf: &[u8], send: &mut Vec<u8>) -> bool {
//!     let r = conn.feed(buf);
//!     for e in &r.events {
//!         let allowed = match e {
//!             Event::Malformed(_) => false, // fail closed
//!             Event::Complete(req) | Event::TooLarge(req) | Event::Head(req) => {
//!                 !(req.host() == Some("api.example.com") && req.method() == "DELETE")
//!             }
//!         };
//!         if !allowed {
//!             held.clear();
//!             return false; // the write fails; the caller tears the connection down
//!         }
//!     }
//!     held.extend_from_slice(buf);
//!     if !r.request_started {
//!         send.append(held);
//!     }
//!     true
//! }
//!
//! let (mut conn, mut held, mut sent) = (Connection::new(), Vec::new(), Vec::new());
//! assert!(on_write(&mut conn, &mut held, b"POST /a HTTP/1.1\r\nHost: api.example.com\r\n", &mut sent));
//! assert!(sent.is_empty()); // the head is incomplete: held back
//! assert!(on_write(&mut conn, &mut held, b"Content-Length: 2\r\n\r\nok", &mut sent));
//! assert!(sent.starts_with(b"POST /a") && held.is_empty());
//! let deny = b"DELETE /v HTTP/1.1\r\nHost: API.example.com:443\r\n\r\n";
//! assert!(!on_write(&mut conn, &mut held, deny, &mut sent));
//! assert!(!sent.starts_with(b"DELETE") && !sent.windows(6).any(|w| w == b"DELETE"));
//! ```
//!
//! Bytes are released in connection order only: on HTTP/2 a held request on one stream also
//! holds frames of other streams written after it, because frames cannot be reordered safely
//! (HPACK state and stream order depend on it).
//!
//! Holding is bounded by [`Limits::max_body`] (1 MiB by default): when a body would exceed
//! it, the request is reported as [`Event::TooLarge`] with its head and the body prefix, and
//! from then on the rest of its body is only counted, never buffered, so the caller can
//! release and stream it. With [`BodyMode::HeadOnly`] a request is reported as soon as its
//! head is complete and no body is ever copied (the fast mode for hosts whose rules only
//! look at method, host and path).
//! [`Connection::feed_into_with`] makes that choice per request, when its head is complete.
//!
//! A captured body knows where its bytes sat in the stream ([`Request::body_spans`]), so a
//! caller holding the raw bytes can rewrite it in place without re-framing
//! ([`patch_body`], same length only).
//!
//! Two situations need the client to hear from the server before the body arrives, so
//! holding the head would stall until the client's own timeout:
//! - HTTP/1.1 `Expect: 100-continue` ([`Request::expect_continue`]): curl waits 1 s, then
//!   sends the body anyway.
//! - HTTP/2 flow control: a client sends at most the server's window (64 KiB unless the
//!   server raised it) before waiting for `WINDOW_UPDATE` ([`Connection::h2_held_flow`] and
//!   [`Responses::h2_send_window`] tell when a held request has reached it).
//!
//! For both, the caller should use a short hold timeout: when it expires, decide on
//! [`Connection::pending_heads`] (heads whose body is still arriving), and release.
//!
//! After an upgrade (`CONNECT`, or `Upgrade` with `Connection: upgrade`) the bytes that
//! follow are not HTTP; they are reported as opaque ([`FeedResult::opaque`]). Without seeing
//! the response the parser cannot know whether the server accepted the upgrade, so a caller
//! that gates a host strictly should refuse upgrades to it.
//!
//! # Limits
//!
//! Every buffer is bounded by [`Limits`]: head size, header count, HTTP/2 header block and
//! decoded header list size, HPACK dynamic table size, concurrent streams, chunk-size line
//! length and body capture. A stream that exceeds a structural limit is
//! [`Event::Malformed`], never a panic or unbounded allocation.
//!
//! # Not done here
//!
//! Content codings (`Content-Encoding: gzip`) are not decompressed: [`Request::body`] is the
//! body with transfer framing removed. Responses are not parsed.

mod h1;
mod h2;
mod hpack;
mod huffman;
mod request;
mod response;

pub use hpack::HpackError;
pub use request::{BodySpan, Request, Version};

/// Per-request body decision (see [`Connection::feed_into_with`]).
pub(crate) type Decide<'a> = &'a mut dyn FnMut(&Request) -> BodyMode;
pub use response::{Responses, Status, h1_status};

/// Bounds on everything the parser buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// HTTP/1: request line plus headers, in bytes. HTTP/2: one encoded header block
    /// (HEADERS plus CONTINUATION fragments).
    pub max_head_bytes: usize,
    /// Decoded header list size, counted as HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE does
    /// (name + value + 32 per field). Bounds HPACK expansion.
    pub max_header_list: usize,
    /// Header fields per request (trailers included).
    pub max_headers: usize,
    /// Body bytes captured per request before it is reported as [`Event::TooLarge`].
    pub max_body: usize,
    /// Largest HPACK dynamic table the client may ask for.
    pub max_hpack_table: usize,
    /// HTTP/2 streams with a request in progress at once.
    pub max_streams: usize,
    /// HTTP/1 chunk-size line (with extensions) and trailer line length.
    pub max_chunk_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_header_list: 64 * 1024,
            max_headers: 128,
            max_body: 1024 * 1024,
            max_hpack_table: 64 * 1024,
            max_streams: 128,
            max_chunk_line: 4096,
        }
    }
}

/// Whether bodies are captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyMode {
    /// Capture bodies up to [`Limits::max_body`].
    #[default]
    Capture,
    /// Report each request when its head is complete ([`Event::Head`]) and never copy body
    /// bytes. Requests without a body are still reported as [`Event::Complete`].
    HeadOnly,
}

/// Parser configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    /// Buffer bounds.
    pub limits: Limits,
    /// Body capture.
    pub body: BodyMode,
}

/// Why a stream could not be parsed. The connection is unusable from then on (for the
/// server too, in almost every case), so the caller should fail closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// HTTP/1 request line plus headers larger than [`Limits::max_head_bytes`].
    HeadTooLarge,
    /// More header fields than [`Limits::max_headers`].
    TooManyHeaders,
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    BadRequestLine,
    /// A header line is not `name: value`, or has forbidden bytes.
    BadHeader,
    /// A header line starts with whitespace (obsolete line folding, RFC 9112 §5.2).
    ObsFold,
    /// A carriage return not followed by a line feed.
    BareCr,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// Several `Host` headers, or a `Host` that disagrees with `:authority`.
    ConflictingHost,
    /// The host or authority is not a valid authority.
    BadHost,
    /// `Content-Length` is not a number, or several disagree.
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`: a classic smuggling vector.
    ConflictingLength,
    /// `Transfer-Encoding` whose last coding is not `chunked`, or one in HTTP/1.0.
    BadTransferEncoding,
    /// A chunk-size line or chunk terminator that does not parse.
    BadChunk,
    /// A chunk-size or trailer line longer than [`Limits::max_chunk_line`].
    ChunkLineTooLarge,
    /// The HTTP/2 connection preface is wrong.
    BadPreface,
    /// An HTTP/2 framing or stream-state violation; the text names which.
    Protocol(&'static str),
    /// The HPACK block did not decode.
    Hpack(HpackError),
    /// HTTP/2 header block larger than [`Limits::max_head_bytes`].
    HeaderBlockTooLarge,
    /// Missing, duplicated, unknown or misplaced pseudo-header.
    BadPseudoHeader,
    /// An upper-case or connection-specific header field in HTTP/2.
    BadH2Header,
    /// More concurrent streams than [`Limits::max_streams`].
    TooManyStreams,
    /// The body length disagrees with `Content-Length`.
    ContentLengthMismatch,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Protocol(what) => write!(f, "HTTP/2 protocol error: {what}"),
            Malformed::Hpack(e) => write!(f, "HPACK error: {e:?}"),
            other => write!(f, "malformed HTTP: {other:?}"),
        }
    }
}

impl std::error::Error for Malformed {}

/// What the bytes fed so far completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole request: head and complete body.
    Complete(Request),
    /// The body exceeds [`Limits::max_body`]: the head and the body prefix seen so far
    /// (possibly empty when `Content-Length` announced the size). The rest of the body is
    /// counted but not captured and the request is not reported again.
    TooLarge(Request),
    /// [`BodyMode::HeadOnly`]: the head of a request whose body follows uncaptured.
    Head(Request),
    /// The stream cannot be parsed; reported again on every later feed.
    Malformed(Malformed),
}

/// The outcome of one [`Connection::feed`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedResult {
    /// Events in stream order.
    pub events: Vec<Event>,
    /// Some byte fed so far belongs to a request that no event has reported yet: a caller
    /// that decides before the server sees a request must hold the bytes.
    pub request_started: bool,
    /// Some of these bytes were not parsed: the protocol is unknown, or the connection was
    /// upgraded (tunnel). They carry no request the parser can see.
    pub opaque: bool,
}

impl FeedResult {
    /// The first malformation, if any.
    pub fn malformed(&self) -> Option<Malformed> {
        self.events.iter().find_map(|e| match e {
            Event::Malformed(m) => Some(*m),
            _ => None,
        })
    }

    /// Requests reported in these bytes (complete, too large, or heads), in order.
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.events.iter().filter_map(|e| match e {
            Event::Complete(r) | Event::TooLarge(r) | Event::Head(r) => Some(r),
            Event::Malformed(_) => None,
        })
    }
}

/// What a connection's first bytes look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// The HTTP/2 client preface.
    Http2,
    /// Neither.
    Unknown,
}

/// HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Guesses the protocol from the first bytes of a connection. `None` means the bytes are a
/// prefix of both possibilities and more are needed (at most 24 bytes decide it).
pub fn detect(first: &[u8]) -> Option<Protocol> {
    let n = first.len().min(H2_PREFACE.len());
    if first[..n] == H2_PREFACE[..n] {
        // "PRI" is also a plausible HTTP/1 method token, so wait for the whole preface.
        return if n == H2_PREFACE.len() {
            Some(Protocol::Http2)
        } else {
            None
        };
    }
    // An HTTP/1 request starts with an upper-case method token and a space; leading CRLFs
    // are allowed by RFC 9112 §2.2.
    let start = first.iter().position(|&b| b != b'\r' && b != b'\n');
    let start = start?;
    let rest = &first[start..];
    for (i, &b) in rest.iter().enumerate().take(21) {
        match b {
            b'A'..=b'Z' | b'-' | b'_' => continue,
            b' ' if i > 0 => return Some(Protocol::Http1),
            _ => return Some(Protocol::Unknown),
        }
    }
    if rest.len() > 20 {
        Some(Protocol::Unknown)
    } else {
        None
    }
}

enum State {
    Detect(Vec<u8>),
    H1(Box<h1::Parser>),
    H2(Box<h2::Parser>),
    Opaque,
}

/// The request reassembler for one connection.
pub struct Connection {
    config: Config,
    state: State,
    failed: Option<Malformed>,
    /// Bytes fed so far (the stream offset of the next byte).
    fed: u64,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

impl Connection {
    /// A connection whose protocol is detected from its first bytes, with default limits.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A connection whose protocol is detected from its first bytes.
    pub fn with_config(config: Config) -> Self {
        Connection {
            config,
            state: State::Detect(Vec::new()),
            failed: None,
            fed: 0,
        }
    }

    /// ALPN said `http/1.1` (or nothing, and the caller knows it is HTTP/1).
    pub fn http1(config: Config) -> Self {
        Connection {
            config,
            state: State::H1(Box::new(h1::Parser::new(config))),
            failed: None,
            fed: 0,
        }
    }

    /// ALPN said `h2`: the stream must start with the client preface.
    pub fn http2(config: Config) -> Self {
        Connection {
            config,
            state: State::H2(Box::new(h2::Parser::new(config))),
            failed: None,
            fed: 0,
        }
    }

    /// The protocol, once known.
    pub fn protocol(&self) -> Option<Protocol> {
        match self.state {
            State::Detect(_) => None,
            State::H1(_) => Some(Protocol::Http1),
            State::H2(_) => Some(Protocol::Http2),
            State::Opaque => Some(Protocol::Unknown),
        }
    }

    /// The malformation that stopped this connection, if any.
    pub fn failed(&self) -> Option<Malformed> {
        self.failed
    }

    /// Feeds the plaintext of one write.
    pub fn feed(&mut self, bytes: &[u8]) -> FeedResult {
        let mut out = FeedResult::default();
        self.feed_into(bytes, &mut out);
        out
    }

    /// Like [`Connection::feed`], but appends to `out` (whose `request_started` and
    /// `opaque` are overwritten), so a caller can reuse one event vector.
    pub fn feed_into(&mut self, bytes: &[u8], out: &mut FeedResult) {
        let mode = self.config.body;
        self.feed_into_with(bytes, out, &mut |_| mode)
    }

    /// Like [`Connection::feed_into`], but `body_mode` decides, for each request whose head
    /// is complete and whose body follows, whether the body is captured
    /// ([`BodyMode::Capture`]: the request is reported once complete or too large) or not
    /// ([`BodyMode::HeadOnly`]: it is reported now as [`Event::Head`] and its body is only
    /// counted). [`Config::body`] is not consulted. A gate whose rules for the request's host
    /// never look at bodies can so judge on the head alone, and release an `Expect:
    /// 100-continue` head or a large upload at once instead of holding it.
    pub fn feed_into_with(
        &mut self,
        bytes: &[u8],
        out: &mut FeedResult,
        body_mode: &mut dyn FnMut(&Request) -> BodyMode,
    ) {
        out.request_started = false;
        out.opaque = false;
        if let Some(m) = self.failed {
            out.events.push(Event::Malformed(m));
            return;
        }
        self.fed += bytes.len() as u64;
        if let State::Detect(buf) = &mut self.state {
            buf.extend_from_slice(&bytes[..bytes.len().min(64)]);
            match detect(buf) {
                None if bytes.len() <= 64 => {
                    // Still ambiguous (at most 24 bytes): nothing reaches the server until
                    // the protocol is known.
                    out.request_started = !buf.is_empty();
                    return;
                }
                found => {
                    let held = std::mem::take(buf);
                    let already = held.len() - bytes.len().min(64);
                    self.state = match found.unwrap_or(Protocol::Unknown) {
                        Protocol::Http1 => State::H1(Box::new(h1::Parser::new(self.config))),
                        Protocol::Http2 => State::H2(Box::new(h2::Parser::new(self.config))),
                        Protocol::Unknown => State::Opaque,
                    };
                    // Replay the bytes held from earlier feeds, then this write.
                    if already > 0 {
                        self.run(&held[..already], out, body_mode);
                    }
                }
            }
        }
        self.run(bytes, out, body_mode);
    }

    /// Bytes fed so far: the stream offset (as in [`BodySpan`]) of the next byte.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    fn run(&mut self, bytes: &[u8], out: &mut FeedResult, decide: Decide<'_>) {
        let r = match &mut self.state {
            State::Detect(_) => Ok(()),
            State::H1(p) => p.feed(bytes, out, decide),
            State::H2(p) => p.feed(bytes, out, decide),
            State::Opaque => {
                out.opaque = !bytes.is_empty();
                Ok(())
            }
        };
        match &self.state {
            State::H1(p) => out.request_started = p.request_started(),
            State::H2(p) => out.request_started = p.request_started(),
            _ => {}
        }
        if let Err(m) = r {
            self.failed = Some(m);
            out.events.push(Event::Malformed(m));
            out.request_started = false;
        }
    }

    /// Heads of requests that have started but not been reported, whose headers are
    /// complete (the body is still arriving). For a hold timeout; see the crate doc.
    pub fn pending_heads(&self) -> Vec<Request> {
        match &self.state {
            State::H1(p) => p.pending_head().into_iter().collect(),
            State::H2(p) => p.pending_heads(),
            _ => Vec::new(),
        }
    }

    /// HTTP/2 flow control as the client has used it: DATA bytes (padding included) sent on
    /// the connection, and per stream whose request is still held back (started, not yet
    /// reported), the bytes sent on it. `None` for HTTP/1, or in the middle of a frame. With
    /// [`Responses::h2_send_window`] it tells when a held request cannot grow any more: the
    /// client waits for a `WINDOW_UPDATE` the server will not send before it sees the body.
    pub fn h2_held_flow(&self) -> Option<(u64, Vec<(u32, u64)>)> {
        match &self.state {
            State::H2(p) => p.held_flow(),
            _ => None,
        }
    }

    /// SETTINGS the HTTP/2 client sent, in order, as `(identifier, value)`; the last value
    /// of an identifier is in force. Note that the client's SETTINGS_HEADER_TABLE_SIZE
    /// bounds the *server's* HPACK encoder, not the client's; the client's encoder is bound
    /// by the server's settings, which this parser never sees, so the decoder here accepts
    /// table size updates up to [`Limits::max_hpack_table`].
    pub fn h2_client_settings(&self) -> &[(u16, u32)] {
        match &self.state {
            State::H2(p) => p.settings(),
            _ => &[],
        }
    }
}

/// Writes `body` over the body bytes of `req` inside `raw`, which holds the client's byte
/// stream from stream offset `raw_start` on: each of [`Request::body_spans`] gets the
/// matching slice of `body`. The framing around the body (Content-Length, chunk sizes, HTTP/2
/// frame lengths, padding, HPACK state, flow-control accounting) stays valid only because the
/// length does not change: `body` must be exactly as long as [`Request::body`]. Returns false,
/// and changes nothing, when it is not, when the body was not captured whole (a too-large or
/// head-only request), or when a span lies outside `raw`.
pub fn patch_body(raw: &mut [u8], raw_start: u64, req: &Request, body: &[u8]) -> bool {
    if body.len() != req.body().len() || !req.body_complete() {
        return false;
    }
    let end = raw_start + raw.len() as u64;
    let total: usize = req.body_spans().iter().map(|s| s.len).sum();
    if total != body.len()
        || req
            .body_spans()
            .iter()
            .any(|s| s.offset < raw_start || s.offset + s.len as u64 > end)
    {
        return false;
    }
    let mut from = 0usize;
    for s in req.body_spans() {
        // In range: checked above.
        let at = (s.offset - raw_start) as usize;
        raw[at..at + s.len].copy_from_slice(&body[from..from + s.len]);
        from += s.len;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_protocols() {
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(detect(b"\r\nPOST /x HTTP/1.1"), Some(Protocol::Http1));
        assert_eq!(detect(b"M-SEARCH * HTTP/1.1"), Some(Protocol::Http1));
        assert_eq!(detect(H2_PREFACE), Some(Protocol::Http2));
        assert_eq!(detect(b"PRI * HTTP/2.0\r\n"), None);
        assert_eq!(detect(b"PRI * HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(detect(b"GE"), None);
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"\x16\x03\x01\x02\x00"), Some(Protocol::Unknown));
        assert_eq!(detect(b"get / HTTP/1.1"), Some(Protocol::Unknown));
        assert_eq!(detect(b" GET"), Some(Protocol::Unknown));
        assert_eq!(detect(&[b'A'; 30]), Some(Protocol::Unknown));
    }

    #[test]
    fn detection_across_feeds_replays_held_bytes() {
        let mut c = Connection::new();
        let r = c.feed(b"PR");
        assert!(r.request_started && r.events.is_empty());
        let r = c.feed(b"I * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(c.protocol(), Some(Protocol::Http1));
        let reqs: Vec<_> = r.requests().collect();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method(), "PRI");
        assert!(!r.request_started);
    }

    #[test]
    fn unknown_protocol_is_opaque() {
        let mut c = Connection::new();
        let r = c.feed(b"\x00\x01binary");
        assert!(r.opaque && r.events.is_empty() && !r.request_started);
        assert_eq!(c.protocol(), Some(Protocol::Unknown));
        assert!(c.feed(b"more").opaque);
    }

    #[test]
    fn malformed_is_sticky() {
        let mut c = Connection::new();
        let r = c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n");
        assert_eq!(r.malformed(), Some(Malformed::ObsFold));
        assert_eq!(c.failed(), Some(Malformed::ObsFold));
        let r = c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.malformed(), Some(Malformed::ObsFold));
        assert_eq!(r.requests().count(), 0);
    }
}
