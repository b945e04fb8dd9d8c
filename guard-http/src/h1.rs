//! HTTP/1.0 and HTTP/1.1 request reassembly (RFC 9112): request line and headers,
//! `Content-Length` and chunked bodies with extensions and trailers, pipelining, and
//! requests split across writes at any byte.
//!
//! Ambiguous framing that servers disagree on (both `Content-Length` and
//! `Transfer-Encoding`, several `Host`s, obsolete line folding, bare CR) is reported as
//! malformed rather than guessed at, because a guess that differs from the server's is
//! exactly how a request slips past a gate.

use crate::request::{Request, Version, split_authority};
use crate::{BodyMode, Config, Decide, Event, FeedResult, Malformed};

enum St {
    /// Reading the request line and headers.
    Head,
    /// A `Content-Length` body with this many bytes left.
    Body(u64),
    /// A chunk-size line.
    ChunkSize,
    /// Chunk data with this many bytes left.
    ChunkData(u64),
    /// The CRLF after chunk data; `true` once the CR was seen.
    ChunkEnd(bool),
    /// Trailer lines after the last chunk.
    Trailers,
    /// After `CONNECT` or an upgrade: the rest is not HTTP.
    Tunnel,
}

pub(crate) struct Parser {
    config: Config,
    st: St,
    /// A partial head, chunk-size line or trailer line carried across writes.
    buf: Vec<u8>,
    /// Where to resume looking for the end of the head in `buf`.
    scan_from: usize,
    /// The request whose body is being read.
    cur: Option<Request>,
    /// `cur` was already reported (too large, or head-only): its body is only counted.
    reported: bool,
    /// Switch to `Tunnel` once `cur` ends.
    tunnel_after: bool,
    /// Bytes fed so far: the stream offset just past the last input.
    fed: u64,
}

impl Parser {
    pub(crate) fn new(config: Config) -> Self {
        Parser {
            config,
            st: St::Head,
            buf: Vec::new(),
            scan_from: 0,
            cur: None,
            reported: false,
            tunnel_after: false,
            fed: 0,
        }
    }

    pub(crate) fn request_started(&self) -> bool {
        match self.st {
            St::Head => !self.buf.is_empty(),
            St::Tunnel => false,
            _ => !self.reported,
        }
    }

    pub(crate) fn pending_head(&self) -> Option<Request> {
        if self.reported {
            return None;
        }
        let mut r = self.cur.clone()?;
        r.body_complete = false;
        Some(r)
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
                St::Head => {
                    // RFC 9112 §2.2: ignore empty lines before the request line.
                    if self.buf.is_empty() {
                        let skip = input
                            .iter()
                            .position(|&b| b != b'\r' && b != b'\n')
                            .unwrap_or(input.len());
                        input = &input[skip..];
                        if input.is_empty() {
                            break;
                        }
                    }
                    let used = self.head(input, out, decide)?;
                    input = &input[used..];
                }
                St::Body(left) => {
                    let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.body_bytes(&input[..n], end - input.len() as u64, out);
                    input = &input[n..];
                    let left = left - n as u64;
                    if left == 0 {
                        self.finish(out);
                    } else {
                        self.st = St::Body(left);
                    }
                }
                St::ChunkData(left) => {
                    let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.body_bytes(&input[..n], end - input.len() as u64, out);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.st = if left == 0 {
                        St::ChunkEnd(false)
                    } else {
                        St::ChunkData(left)
                    };
                }
                St::ChunkEnd(cr) => {
                    let b = input[0];
                    input = &input[1..];
                    self.st = match (cr, b) {
                        (false, b'\r') => St::ChunkEnd(true),
                        (_, b'\n') => St::ChunkSize,
                        _ => return Err(Malformed::BadChunk),
                    };
                }
                St::ChunkSize | St::Trailers => {
                    let Some(used) = self.line(input)? else {
                        break;
                    };
                    input = &input[used..];
                    let line = std::mem::take(&mut self.buf);
                    let r = if matches!(self.st, St::ChunkSize) {
                        self.chunk_size(&line)
                    } else {
                        self.trailer(&line, out)
                    };
                    // Keep the allocation for the next line.
                    self.buf = line;
                    self.buf.clear();
                    r?;
                }
                St::Tunnel => {
                    out.opaque = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Consumes head bytes; returns how many of `input` were used.
    fn head(
        &mut self,
        input: &[u8],
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<usize, Malformed> {
        let max = self.config.limits.max_head_bytes;
        if self.buf.is_empty() {
            // Fast path: the whole head is in this write, parse it in place.
            if let Some(end) = find_head_end(input, 0) {
                if end > max {
                    return Err(Malformed::HeadTooLarge);
                }
                let req = parse_head(&input[..end], self.config)?;
                self.start(req, out, decide)?;
                return Ok(end);
            }
            if input.len() > max {
                return Err(Malformed::HeadTooLarge);
            }
            self.buf.extend_from_slice(input);
            self.scan_from = 0;
            return Ok(input.len());
        }
        let old = self.buf.len();
        // Never copy more than could still belong to a head within the limit.
        let take = input.len().min((max + 4).saturating_sub(old));
        self.buf.extend_from_slice(&input[..take]);
        // The terminator may straddle the previous write: look back three bytes.
        match find_head_end(&self.buf, self.scan_from.saturating_sub(3)) {
            Some(end) => {
                if end > max {
                    return Err(Malformed::HeadTooLarge);
                }
                let req = parse_head(&self.buf[..end], self.config)?;
                self.buf.clear();
                self.scan_from = 0;
                self.start(req, out, decide)?;
                Ok(end - old)
            }
            None => {
                if self.buf.len() > max {
                    return Err(Malformed::HeadTooLarge);
                }
                self.scan_from = self.buf.len();
                Ok(take)
            }
        }
    }

    /// A head was parsed: decide how its body is framed, and (through `decide`) whether it
    /// is captured.
    fn start(
        &mut self,
        parsed: Parsed,
        out: &mut FeedResult,
        decide: Decide<'_>,
    ) -> Result<(), Malformed> {
        let Parsed {
            req,
            framing,
            tunnel,
        } = parsed;
        self.tunnel_after = tunnel;
        self.reported = false;
        let cap = self.config.limits.max_body as u64;
        match framing {
            Framing::None | Framing::Length(0) => {
                self.cur = Some(req);
                self.finish(out);
            }
            Framing::Length(n) => {
                self.st = St::Body(n);
                if decide(&req) == BodyMode::HeadOnly {
                    self.report_head(&req, out);
                } else if n > cap {
                    // Announced too large: report now instead of holding up to the cap.
                    let mut r = req.clone();
                    r.body_complete = false;
                    out.events.push(Event::TooLarge(r));
                    self.reported = true;
                }
                self.cur = Some(req);
            }
            Framing::Chunked => {
                self.st = St::ChunkSize;
                if decide(&req) == BodyMode::HeadOnly {
                    self.report_head(&req, out);
                }
                self.cur = Some(req);
            }
        }
        Ok(())
    }

    fn report_head(&mut self, req: &Request, out: &mut FeedResult) {
        let mut r = req.clone();
        r.body_complete = false;
        out.events.push(Event::Head(r));
        self.reported = true;
    }

    /// Captures body bytes that were written at stream offset `at`.
    fn body_bytes(&mut self, data: &[u8], at: u64, out: &mut FeedResult) {
        if self.reported {
            return;
        }
        let cap = self.config.limits.max_body;
        let Some(req) = self.cur.as_mut() else {
            return;
        };
        let room = cap - req.body.len().min(cap);
        if data.len() <= room {
            req.add_body(data, at);
        } else {
            req.add_body(&data[..room], at);
            let mut r = req.clone();
            r.body_complete = false;
            out.events.push(Event::TooLarge(r));
            self.reported = true;
            // The prefix was handed over; free it rather than keep 1 MiB per connection.
            req.body = Vec::new();
            req.body_spans = Vec::new();
        }
    }

    fn finish(&mut self, out: &mut FeedResult) {
        if let Some(req) = self.cur.take()
            && !self.reported
        {
            out.events.push(Event::Complete(req));
        }
        self.reported = false;
        self.st = if self.tunnel_after {
            St::Tunnel
        } else {
            St::Head
        };
    }

    /// Accumulates one line into `buf`; returns the bytes used once the line is complete
    /// (without its terminator in `buf`), or `None` when `input` ran out first.
    fn line(&mut self, input: &[u8]) -> Result<Option<usize>, Malformed> {
        let max = self.config.limits.max_chunk_line;
        match memchr::memchr(b'\n', input) {
            Some(i) => {
                // The limit counts the line without its CR LF.
                if self.buf.len() + i > max + 1 {
                    return Err(Malformed::ChunkLineTooLarge);
                }
                self.buf.extend_from_slice(&input[..i]);
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                Ok(Some(i + 1))
            }
            None => {
                if self.buf.len() + input.len() > max + 1 {
                    return Err(Malformed::ChunkLineTooLarge);
                }
                self.buf.extend_from_slice(input);
                Ok(None)
            }
        }
    }

    fn chunk_size(&mut self, line: &[u8]) -> Result<(), Malformed> {
        if line.contains(&b'\r') {
            return Err(Malformed::BareCr);
        }
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 {
            return Err(Malformed::BadChunk);
        }
        let mut size = 0u64;
        for &b in &line[..digits] {
            size = size * 16 + u64::from(hex_val(b));
        }
        // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
        let ext = &line[digits..];
        let trimmed = trim_ows(ext);
        if !trimmed.is_empty() && (trimmed[0] != b';' || !valid_chunk_ext(trimmed)) {
            return Err(Malformed::BadChunk);
        }
        self.st = if size == 0 {
            St::Trailers
        } else {
            St::ChunkData(size)
        };
        Ok(())
    }

    fn trailer(&mut self, line: &[u8], out: &mut FeedResult) -> Result<(), Malformed> {
        if line.is_empty() {
            self.finish(out);
            return Ok(());
        }
        let limits = self.config.limits;
        let Some(req) = self.cur.as_mut() else {
            return Err(Malformed::BadChunk);
        };
        if req.headers.len() + req.trailers.len() >= limits.max_headers {
            return Err(Malformed::TooManyHeaders);
        }
        let (name, value) = parse_field(line)?;
        req.trailers.push((name, value));
        Ok(())
    }
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b.wrapping_sub(b'A').wrapping_add(10),
    }
}

fn valid_chunk_ext(ext: &[u8]) -> bool {
    let mut in_quote = false;
    let mut escaped = false;
    for &b in ext {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            } else if b < 0x20 && b != b'\t' || b == 0x7f {
                return false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if !(is_tchar(b) || matches!(b, b';' | b'=' | b' ' | b'\t')) {
            return false;
        }
    }
    !in_quote
}

/// Index just past the empty line that ends a head (CRLF CRLF, or bare LFs, which
/// RFC 9112 §2.2 lets a recipient accept), searching from `from`.
fn find_head_end(data: &[u8], from: usize) -> Option<usize> {
    let from = from.min(data.len());
    for i in memchr::memchr_iter(b'\n', &data[from..]) {
        let i = from + i;
        match data.get(i + 1) {
            Some(b'\n') => return Some(i + 2),
            Some(b'\r') if data.get(i + 2) == Some(&b'\n') => return Some(i + 3),
            _ => {}
        }
    }
    None
}

enum Framing {
    None,
    Length(u64),
    Chunked,
}

struct Parsed {
    req: Request,
    framing: Framing,
    tunnel: bool,
}

/// RFC 9110 §5.6.2 token characters, as a table: this runs for every byte of every name.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
};

fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `name: value` with RFC 9110 §5 character rules.
fn parse_field(line: &[u8]) -> Result<(String, Vec<u8>), Malformed> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(Malformed::ObsFold);
    }
    let colon = memchr::memchr(b':', line).ok_or(Malformed::BadHeader)?;
    let name = &line[..colon];
    // No whitespace between name and colon (RFC 9112 §5.1), and a non-empty token.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Malformed::BadHeader);
    }
    let value = trim_ows(&line[colon + 1..]);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Malformed::BadHeader);
    }
    let mut name = name.to_vec();
    name.make_ascii_lowercase();
    // `name` is all tchar, hence ASCII: this never fails and never copies.
    let name = String::from_utf8(name).map_err(|_| Malformed::BadHeader)?;
    Ok((name, value.to_vec()))
}

fn parse_head(head: &[u8], config: Config) -> Result<Parsed, Malformed> {
    let limits = config.limits;
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().ok_or(Malformed::BadRequestLine)?;
    if request_line.contains(&b'\r') {
        return Err(Malformed::BareCr);
    }
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::BadRequestLine);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Malformed::BadRequestLine);
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(Malformed::BadRequestLine);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => return Err(Malformed::BadRequestLine),
    };
    // Checked above: both are ASCII, so these never fail.
    let method = String::from_utf8(method.to_vec()).map_err(|_| Malformed::BadRequestLine)?;
    let target = String::from_utf8(target.to_vec()).map_err(|_| Malformed::BadRequestLine)?;

    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(16);
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.contains(&b'\r') {
            return Err(Malformed::BareCr);
        }
        if headers.len() >= limits.max_headers {
            return Err(Malformed::TooManyHeaders);
        }
        headers.push(parse_field(line)?);
    }

    // Request target forms (RFC 9112 §3.2).
    let is_connect = method == "CONNECT";
    let (scheme, uri_authority, path) = if is_connect {
        (None, Some(target.clone()), String::new())
    } else if target.starts_with('/') || target == "*" {
        (None, None, target)
    } else if let Some((scheme, rest)) = target.split_once("://") {
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (auth, path) = rest.split_at(split);
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        (
            Some(scheme.to_ascii_lowercase()),
            Some(auth.to_string()),
            path,
        )
    } else {
        return Err(Malformed::BadRequestLine);
    };

    let mut host_header: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut te: Option<Vec<u8>> = None;
    let mut expect_continue = false;
    let mut upgrade = false;
    let mut connection_upgrade = false;
    for (name, value) in &headers {
        match name.as_str() {
            "host" => {
                if host_header.is_some() {
                    return Err(Malformed::ConflictingHost);
                }
                host_header = Some(value);
            }
            "content-length" => {
                let n = parse_content_length(value)?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(Malformed::BadContentLength);
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                // Several fields are one comma-separated list.
                let t = te.get_or_insert_with(Vec::new);
                if !t.is_empty() {
                    t.push(b',');
                }
                t.extend_from_slice(value);
            }
            "expect" => expect_continue |= value.eq_ignore_ascii_case(b"100-continue"),
            "upgrade" => upgrade = true,
            "connection" => {
                connection_upgrade |= value
                    .split(|&b| b == b',')
                    .any(|t| trim_ows(t).eq_ignore_ascii_case(b"upgrade"));
            }
            _ => {}
        }
    }

    let framing = match (te, content_length) {
        (Some(_), Some(_)) => return Err(Malformed::ConflictingLength),
        (Some(te), None) => {
            if version == Version::Http10 {
                return Err(Malformed::BadTransferEncoding);
            }
            let last = te
                .rsplit(|&b| b == b',')
                .next()
                .map(trim_ows)
                .unwrap_or(b"");
            if !last.eq_ignore_ascii_case(b"chunked") {
                return Err(Malformed::BadTransferEncoding);
            }
            Framing::Chunked
        }
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::None,
    };

    let authority = match (&uri_authority, host_header) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(h)) => Some(String::from_utf8(h.to_vec()).map_err(|_| Malformed::BadHost)?),
        (None, None) => None,
    };
    if version == Version::Http11 && host_header.is_none() {
        return Err(Malformed::MissingHost);
    }
    let (host, port) = match &authority {
        Some(a) => {
            let (h, p) = split_authority(a).ok_or(Malformed::BadHost)?;
            (Some(h), p)
        }
        None => (None, None),
    };

    Ok(Parsed {
        req: Request {
            version,
            stream_id: 0,
            method,
            scheme,
            authority,
            host,
            port,
            path,
            headers,
            trailers: Vec::new(),
            body: Vec::new(),
            body_complete: true,
            expect_continue,
            body_spans: Vec::new(),
        },
        framing,
        tunnel: is_connect || (upgrade && connection_upgrade),
    })
}

/// RFC 9110 §8.6: digits, or a list of identical values.
fn parse_content_length(value: &[u8]) -> Result<u64, Malformed> {
    let mut result: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let part = trim_ows(part);
        if part.is_empty() || part.len() > 18 || !part.iter().all(u8::is_ascii_digit) {
            return Err(Malformed::BadContentLength);
        }
        let n = part.iter().fold(0u64, |a, &b| a * 10 + u64::from(b - b'0'));
        if result.is_some_and(|r| r != n) {
            return Err(Malformed::BadContentLength);
        }
        result = Some(n);
    }
    result.ok_or(Malformed::BadContentLength)
}

#[cfg(test)]
mod tests {
    use crate::{BodyMode, Config, Connection, Event, FeedResult, Limits, Malformed, Request};

    fn conn() -> Connection {
        Connection::http1(Config::default())
    }

    fn complete(r: &FeedResult) -> Vec<Request> {
        r.events
            .iter()
            .map(|e| match e {
                Event::Complete(r) => r.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    /// Feeds `data` split at `cut`, and checks that the result is independent of the cut.
    fn feed_split(data: &[u8], cut: usize, config: Config) -> (Vec<Event>, bool) {
        let mut c = Connection::http1(config);
        let mut events = c.feed(&data[..cut]).events;
        let r = c.feed(&data[cut..]);
        events.extend(r.events);
        (events, r.request_started)
    }

    fn one(data: &[u8]) -> Request {
        let r = conn().feed(data);
        let mut v = complete(&r);
        assert_eq!(v.len(), 1, "{r:?}");
        v.remove(0)
    }

    const POST: &[u8] = b"POST /graphql?x=1 HTTP/1.1\r\nHost: API.Example.com:8443\r\nContent-Type: application/json\r\nContent-Length: 27\r\nX-Multi: a\r\nx-multi: b\r\n\r\n{\"query\":\"mutation{del}\"}\r\n";

    #[test]
    fn body_spans_and_in_place_patch_with_chunks_and_pipelining() {
        let mut raw = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nwxyz".to_vec();
        let mut c = conn();
        // Fed in two writes that split the second body.
        let mut ev = c.feed(&raw[..raw.len() - 2]).events;
        ev.extend(c.feed(&raw[raw.len() - 2..]).events);
        let v: Vec<Request> = ev
            .iter()
            .map(|e| match e {
                Event::Complete(r) => r.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(v[0].body_spans().len(), 2, "one per chunk");
        assert_eq!(v[1].body_spans().len(), 1, "adjacent runs merge");
        assert_eq!(c.fed(), raw.len() as u64);
        assert!(crate::patch_body(&mut raw, 0, &v[0], b"ABCDE"));
        assert!(crate::patch_body(&mut raw, 0, &v[1], b"WXYZ"));
        let w = complete(&conn().feed(&raw));
        assert_eq!((w[0].body(), w[1].body()), (&b"ABCDE"[..], &b"WXYZ"[..]));
        assert_eq!(w[0].trailers().count(), 1, "framing intact");
    }

    #[test]
    fn body_mode_per_request_releases_heads() {
        let mut c = conn();
        let mut out = FeedResult::default();
        let head =
            b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        c.feed_into_with(head, &mut out, &mut |_| BodyMode::HeadOnly);
        assert!(matches!(&out.events[..], [Event::Head(r)] if r.expect_continue()));
        assert!(!out.request_started, "nothing left to hold");
        out.events.clear();
        c.feed_into_with(b"hello", &mut out, &mut |_| panic!("no new head"));
        assert!(out.events.is_empty() && !out.request_started);
        // The next request is captured.
        c.feed_into_with(
            b"POST /g HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
            &mut out,
            &mut |_| BodyMode::Capture,
        );
        assert!(matches!(&out.events[..], [Event::Complete(r)] if r.body() == b"{}"));
    }

    #[test]
    fn content_length_request() {
        let r = one(POST);
        assert_eq!(r.method(), "POST");
        assert_eq!(r.host(), Some("api.example.com"));
        assert_eq!(r.port(), Some(8443));
        assert_eq!(r.authority(), Some("API.Example.com:8443"));
        assert_eq!(r.path(), "/graphql?x=1");
        assert_eq!(r.body(), b"{\"query\":\"mutation{del}\"}\r\n");
        assert!(r.is_graphql());
        assert_eq!(r.header("CONTENT-TYPE"), Some("application/json"));
        let multi: Vec<_> = r
            .headers()
            .filter(|(n, _)| *n == "x-multi")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(multi, [b"a", b"b"]);
        assert!(r.body_complete());
    }

    #[test]
    fn every_split_point_gives_the_same_request() {
        let whole = one(POST);
        for cut in 0..=POST.len() {
            let (events, started) = feed_split(POST, cut, Config::default());
            assert_eq!(events, vec![Event::Complete(whole.clone())], "cut {cut}");
            assert!(!started);
        }
    }

    #[test]
    fn byte_at_a_time_reports_progress() {
        let mut c = conn();
        for (i, b) in POST.iter().enumerate() {
            let r = c.feed(std::slice::from_ref(b));
            if i + 1 < POST.len() {
                assert!(r.events.is_empty() && r.request_started, "byte {i}");
            } else {
                assert_eq!(complete(&r).len(), 1);
                assert!(!r.request_started);
            }
        }
    }

    const CHUNKED: &[u8] = b"PUT /up HTTP/1.1\r\nhost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;name=\"v;al\"\r\nhello\r\n1A ; ext ; e2=tok\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n";

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let r = one(CHUNKED);
        assert_eq!(r.body(), b"helloabcdefghijklmnopqrstuvwxyz");
        let t: Vec<_> = r.trailers().collect();
        assert_eq!(t, [("x-checksum", &b"abc"[..]), ("x-other", &b"d"[..])]);
        for cut in 0..=CHUNKED.len() {
            let (events, started) = feed_split(CHUNKED, cut, Config::default());
            assert_eq!(events, vec![Event::Complete(r.clone())], "cut {cut}");
            assert!(!started);
        }
    }

    #[test]
    fn bare_lf_line_endings() {
        let r = one(b"POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n");
        assert_eq!(r.body(), b"abc");
    }

    #[test]
    fn pipelining_and_get_without_body() {
        let mut data = Vec::new();
        data.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        data.extend_from_slice(b"HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n");
        data.extend_from_slice(POST);
        data.extend_from_slice(CHUNKED);
        data.extend_from_slice(b"\r\nGET /c HTTP/1.0\r\n\r\n");
        data.extend_from_slice(b"DELETE /d HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = conn().feed(&data);
        let v = complete(&r);
        let paths: Vec<_> = v.iter().map(|r| r.path()).collect();
        assert_eq!(paths, ["/a", "/b", "/graphql?x=1", "/up", "/c", "/d"]);
        assert!(v[0].body().is_empty() && v[1].body().is_empty());
        assert_eq!(v[4].host(), None);
        assert!(!r.request_started);
        // Split anywhere, the same six requests come out.
        for cut in (0..=data.len()).step_by(7) {
            let (events, _) = feed_split(&data, cut, Config::default());
            assert_eq!(events.len(), 6, "cut {cut}");
            assert_eq!(events, r.events);
        }
    }

    #[test]
    fn get_with_content_length_has_that_body() {
        // A GET may carry a body; ignoring it would desync from the server.
        let r = conn().feed(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /x HTTP/1.1\r\nHost: h\r\n\r\n");
        let v = complete(&r);
        assert_eq!(v[0].body(), b"abc");
        assert_eq!(v[1].path(), "/x");
    }

    #[test]
    fn expect_continue_and_pending_head() {
        let mut c = conn();
        let r = c.feed(
            b"POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n",
        );
        assert!(r.events.is_empty() && r.request_started);
        let heads = c.pending_heads();
        assert_eq!(heads.len(), 1);
        assert!(heads[0].expect_continue() && !heads[0].body_complete());
        assert_eq!(heads[0].path(), "/u");
        let r = c.feed(b"data");
        let v = complete(&r);
        assert!(v[0].expect_continue());
        assert_eq!(v[0].body(), b"data");
        assert!(c.pending_heads().is_empty());
    }

    #[test]
    fn absolute_and_other_target_forms() {
        let r = one(b"GET http://Proxy.Example:81?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(r.host(), Some("proxy.example"));
        assert_eq!(r.port(), Some(81));
        assert_eq!(r.path(), "/?q=1");
        assert_eq!(r.scheme(), Some("http"));
        let r = one(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.path(), "*");
    }

    #[test]
    fn connect_and_upgrade_become_opaque() {
        let mut c = conn();
        let r = c.feed(
            b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n\x00\x01raw",
        );
        let v = complete(&r);
        assert_eq!(v[0].host(), Some("db.internal"));
        assert_eq!(v[0].port(), Some(5432));
        assert!(r.opaque && !r.request_started);
        let mut c = conn();
        let r = c.feed(b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n");
        assert_eq!(complete(&r).len(), 1);
        assert!(c.feed(b"\x81\x05hello").opaque);
        // Upgrade without Connection: upgrade is not an upgrade.
        let mut c = conn();
        c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(
            complete(&c.feed(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")).len(),
            1
        );
    }

    #[test]
    fn malformed_inputs() {
        let cases: &[(&[u8], Malformed)] = &[
            (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", Malformed::ObsFold),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX\r: y\r\n\r\n", Malformed::BareCr),
            (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", Malformed::BadHeader),
            (b"GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", Malformed::BadHeader),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", Malformed::BadHeader),
            (b"GET / HTTP/1.1\r\n\r\n", Malformed::MissingHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Malformed::ConflictingHost),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Malformed::BadHost),
            (b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", Malformed::BadRequestLine),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", Malformed::BadRequestLine),
            (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", Malformed::BadRequestLine),
            (b"GET relative HTTP/1.1\r\nHost: h\r\n\r\n", Malformed::BadRequestLine),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", Malformed::BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n", Malformed::BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n", Malformed::BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", Malformed::BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Malformed::ConflictingLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Malformed::BadTransferEncoding),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Malformed::BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Malformed::BadChunk),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", Malformed::BadChunk),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;\"open\r\n", Malformed::BadChunk),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", Malformed::BadChunk),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", Malformed::BadHeader),
        ];
        for (data, want) in cases {
            let r = conn().feed(data);
            assert_eq!(
                r.malformed(),
                Some(*want),
                "{}",
                String::from_utf8_lossy(data)
            );
            assert_eq!(r.requests().count(), 0);
        }
        // Content-Length as a list of identical values is allowed.
        let r = conn().feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n\r\nab");
        assert_eq!(complete(&r)[0].body(), b"ab");
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic spread of hostile inputs: every prefix of every case, and bytes
        // flipped in valid requests.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for base in [POST, CHUNKED] {
            for i in 0..base.len() {
                for flip in [0x00u8, 0x0a, 0x0d, 0x20, 0x3a, 0xff] {
                    let mut d = base.to_vec();
                    d[i] = flip;
                    let _ = conn().feed(&d);
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let cut = (seed as usize) % (d.len() + 1);
                    let _ = feed_split(&d, cut, Config::default());
                }
            }
        }
    }

    fn small(f: impl FnOnce(&mut Limits)) -> Config {
        let mut c = Config::default();
        f(&mut c.limits);
        c
    }

    #[test]
    fn head_size_limit() {
        let cfg = small(|l| l.max_head_bytes = 64);
        let ok = b"GET / HTTP/1.1\r\nHost: h\r\nX: 01234567890123456789012345678901\r\n\r\n";
        assert_eq!(ok.len(), 64);
        let bad = b"GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012\r\n\r\n";
        for cut in 0..=ok.len() {
            let (e, _) = feed_split(ok, cut, cfg);
            assert!(matches!(e[..], [Event::Complete(_)]), "cut {cut}");
            let (e, _) = feed_split(bad, cut, cfg);
            assert!(
                matches!(e[..], [Event::Malformed(Malformed::HeadTooLarge)]),
                "cut {cut}"
            );
        }
        // An endless head without a terminator is cut off at the limit, never buffered.
        let mut c = Connection::http1(cfg);
        c.feed(b"GET / HTTP/1.1\r\n");
        let r = c.feed(&[b'a'; 100]);
        assert_eq!(r.malformed(), Some(Malformed::HeadTooLarge));
    }

    #[test]
    fn header_count_limit() {
        let cfg = small(|l| l.max_headers = 3);
        let mut c = Connection::http1(cfg);
        assert_eq!(
            complete(&c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n")).len(),
            1
        );
        let r = c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        assert_eq!(r.malformed(), Some(Malformed::TooManyHeaders));
        // Trailers count too.
        let r = Connection::http1(cfg).feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\nU: 2\r\n\r\n");
        assert_eq!(r.malformed(), Some(Malformed::TooManyHeaders));
    }

    #[test]
    fn chunk_line_limit() {
        let cfg = small(|l| l.max_chunk_line = 16);
        let ok = Connection::http1(cfg).feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=0123456789ab\r\nx\r\n0\r\n\r\n");
        assert_eq!(complete(&ok)[0].body(), b"x");
        let mut c = Connection::http1(cfg);
        c.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=0123");
        let r = c.feed(b"456789abcdef\r\n");
        assert_eq!(r.malformed(), Some(Malformed::ChunkLineTooLarge));
    }

    #[test]
    fn body_cap_content_length() {
        let cfg = small(|l| l.max_body = 10);
        let mut c = Connection::http1(cfg);
        let r = c.feed(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789");
        assert_eq!(complete(&r)[0].body(), b"0123456789");
        // Announced larger than the cap: reported at once, body not held.
        let r = c.feed(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n01234");
        match &r.events[..] {
            [Event::TooLarge(req)] => {
                assert_eq!(req.path(), "/big");
                assert!(req.body().is_empty() && !req.body_complete());
            }
            other => panic!("{other:?}"),
        }
        assert!(!r.request_started);
        let r = c.feed(b"56789");
        assert!(r.events.is_empty() && !r.request_started);
        // The next request parses normally.
        let r = c.feed(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(complete(&r)[0].path(), "/after");
    }

    #[test]
    fn body_cap_chunked_reports_prefix() {
        let cfg = small(|l| l.max_body = 8);
        let data = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n";
        for cut in 0..=data.len() {
            let (e, started) = feed_split(data, cut, cfg);
            match &e[..] {
                [Event::TooLarge(big), Event::Complete(next)] => {
                    assert_eq!(big.body(), b"abcdefgh", "cut {cut}");
                    assert_eq!(next.path(), "/n");
                }
                other => panic!("cut {cut}: {other:?}"),
            }
            assert!(!started);
        }
    }

    #[test]
    fn head_only_mode_never_copies_bodies() {
        let cfg = Config {
            body: BodyMode::HeadOnly,
            ..Config::default()
        };
        let mut c = Connection::http1(cfg);
        let r = c.feed(b"POST /h HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
        match &r.events[..] {
            [Event::Head(req)] => assert_eq!(req.path(), "/h"),
            other => panic!("{other:?}"),
        }
        assert!(!r.request_started);
        let r = c.feed(b"12345GET /g HTTP/1.1\r\nHost: h\r\n\r\n");
        // A request without a body is complete at its head.
        assert_eq!(complete(&r)[0].path(), "/g");
        let r = c.feed(CHUNKED);
        assert!(matches!(&r.events[..], [Event::Head(_)]));
        assert!(!r.request_started);
    }
}
