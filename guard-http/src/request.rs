//! The reassembled request handed to the policy: method, host, port, path, headers, body.

/// Which framing a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
    /// HTTP/2 (h2 inside TLS, or h2c with prior knowledge).
    Http2,
}

/// One request. Header names are lower-cased; values are the bytes sent (HTTP allows
/// non-UTF-8 `obs-text`), with leading and trailing whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub(crate) version: Version,
    pub(crate) stream_id: u32,
    pub(crate) method: String,
    pub(crate) scheme: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) trailers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) body_complete: bool,
    pub(crate) expect_continue: bool,
    /// Where each run of `body` bytes sits in the client's byte stream (see
    /// [`Request::body_spans`]).
    pub(crate) body_spans: Vec<BodySpan>,
}

/// Most runs recorded per body (16 bytes each): 1 MiB of body in 16 KiB DATA frames needs 64.
const MAX_SPANS: usize = 4096;

/// One run of body bytes in the connection's client byte stream: `len` bytes of
/// [`Request::body`] were written at stream offset `offset` (0 is the first byte ever fed to
/// the [`Connection`](crate::Connection)). Runs are in body order; their lengths add up to
/// `body().len()`. Framing between them (chunk-size lines, HTTP/2 frame headers, padding,
/// frames of other streams) is not body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySpan {
    /// Stream offset of the run's first byte.
    pub offset: u64,
    /// Bytes in the run.
    pub len: usize,
}

impl Request {
    /// Builds a request from an absolute URL, for tools that evaluate a request that was
    /// never sent (`guardctl policy explain http METHOD URL`). Header names are lower-cased;
    /// the host is normalised as for a captured request. Fails on a URL that is not
    /// `scheme://authority[/path][?query]`.
    pub fn from_url(
        method: &str,
        url: &str,
        headers: impl IntoIterator<Item = (String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> Result<Request, crate::Malformed> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(crate::Malformed::BadRequestLine)?;
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = path.split('#').next().unwrap_or("");
        let path = match path.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_string(),
        };
        let (host, port) = split_authority(authority).ok_or(crate::Malformed::BadHost)?;
        let is_token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !is_token(method) || path.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(crate::Malformed::BadRequestLine);
        }
        Ok(Request {
            version: Version::Http11,
            stream_id: 0,
            method: method.to_string(),
            scheme: Some(scheme.to_ascii_lowercase()),
            authority: Some(authority.to_string()),
            host: Some(host),
            port,
            path,
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v))
                .collect(),
            trailers: Vec::new(),
            body,
            body_complete: true,
            expect_continue: false,
            body_spans: Vec::new(),
        })
    }

    /// The framing the request used.
    pub fn version(&self) -> Version {
        self.version
    }

    /// HTTP/2 stream id; 0 for HTTP/1.x.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The method exactly as sent (methods are case-sensitive: `GET`, not `get`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// `:scheme` for HTTP/2, or the scheme of an absolute-form HTTP/1 target.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The authority as sent (`:authority`, the absolute-form target's, or `Host`).
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    /// The host, lower-cased, without port, without IPv6 brackets and without one trailing
    /// dot, so a rule for `api.example.com` also matches `API.Example.com.:443`.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port from the authority, when it names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The request target: path and query (`/v1/x?a=b`), `*`, or empty for `CONNECT`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Header fields in the order sent, names lower-cased. HTTP/2 pseudo-headers are not
    /// included (see the accessors above).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Trailer fields (chunked trailers or a trailing HTTP/2 HEADERS frame).
    pub fn trailers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.trailers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// First value of header `name` (case-insensitive), if it is valid UTF-8. Several
    /// values of one header are not joined: use `headers()` for those.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body with transfer framing removed (chunked decoded, HTTP/2 padding dropped).
    /// Content codings are NOT undone: a `Content-Encoding: gzip` body is returned
    /// compressed. Request bodies are rarely compressed; a policy that needs certainty can
    /// treat a compressed body on a guarded host as not inspectable.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// False when `body()` is only a prefix: the request was reported as `TooLarge` or in
    /// head-only mode.
    pub fn body_complete(&self) -> bool {
        self.body_complete
    }

    /// The client sent `Expect: 100-continue` and may wait for the server before sending
    /// the body (see the crate doc on holding).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// Where the captured body bytes were in the client's byte stream, in body order: what a
    /// caller holding the raw bytes needs to rewrite the body in place ([`patch_body`]).
    /// Empty for a request built by [`Request::from_url`]. At most 4096 runs are recorded;
    /// a body split into more (tiny chunks or DATA frames) has runs that do not cover it, and
    /// cannot be patched.
    ///
    /// [`patch_body`]: crate::patch_body
    pub fn body_spans(&self) -> &[BodySpan] {
        &self.body_spans
    }

    /// Appends `len` body bytes written at stream offset `offset` (adjacent runs merge).
    pub(crate) fn add_body(&mut self, data: &[u8], offset: u64) {
        if data.is_empty() {
            return;
        }
        self.body.extend_from_slice(data);
        let full = self.body_spans.len() >= MAX_SPANS;
        match self.body_spans.last_mut() {
            Some(last) if last.offset + last.len as u64 == offset => last.len += data.len(),
            // Past the bound (a body in thousands of tiny DATA frames) the runs stop being
            // recorded: they no longer add up to the body, which `patch_body` refuses.
            _ if full => {}
            _ => self.body_spans.push(BodySpan {
                offset,
                len: data.len(),
            }),
        }
    }

    /// A hint that this is a GraphQL request: `Content-Type: application/graphql`, or JSON
    /// whose body has a `"query"` key, or a `GET` whose query string has a `query=`
    /// parameter. This is a cheap scan, not a parse: the policy engine parses the body.
    pub fn is_graphql(&self) -> bool {
        let ct = self.header("content-type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/graphql") {
            return true;
        }
        if mime.eq_ignore_ascii_case("application/json") && json_has_query_key(&self.body) {
            return true;
        }
        if self.method == "GET"
            && let Some((_, q)) = self.path.split_once('?')
        {
            return q.split('&').any(|kv| kv.starts_with("query="));
        }
        false
    }
}

/// True when some `"query"` string is followed (after whitespace) by `:`: a key, not a value.
fn json_has_query_key(body: &[u8]) -> bool {
    let needle = b"\"query\"";
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&body[from..], needle) {
        let after = from + i + needle.len();
        let rest = &body[after..];
        if rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b':')
        {
            return true;
        }
        from = after;
    }
    false
}

/// Splits an authority (`userinfo@host:port`) into a normalised host and port.
/// Returns `None` when it is not a plausible authority (spaces, empty host, bad port).
pub(crate) fn split_authority(auth: &str) -> Option<(String, Option<u16>)> {
    let hostport = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\'))
    {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> Request {
        Request {
            version: Version::Http11,
            stream_id: 0,
            method: method.into(),
            scheme: None,
            authority: None,
            host: None,
            port: None,
            path: path.into(),
            headers: ct
                .map(|c| vec![("content-type".to_string(), c.as_bytes().to_vec())])
                .unwrap_or_default(),
            trailers: vec![],
            body: body.to_vec(),
            body_complete: true,
            expect_continue: false,
            body_spans: vec![],
        }
    }

    #[test]
    fn authority_normalisation() {
        let s = |a: &str| split_authority(a);
        assert_eq!(s("API.Example.COM"), Some(("api.example.com".into(), None)));
        assert_eq!(
            s("example.com.:8443"),
            Some(("example.com".into(), Some(8443)))
        );
        assert_eq!(s("[::1]:443"), Some(("::1".into(), Some(443))));
        assert_eq!(s("[2001:DB8::1]"), Some(("2001:db8::1".into(), None)));
        assert_eq!(s("user:pw@host:1"), Some(("host".into(), Some(1))));
        assert_eq!(s("host:"), Some(("host".into(), None)));
        assert_eq!(s("host:99999"), None);
        assert_eq!(s("host:12a"), None);
        assert_eq!(s(""), None);
        assert_eq!(s("a b"), None);
        assert_eq!(s("[::1"), None);
        assert_eq!(s("evil.com/x"), None);
    }

    #[test]
    fn from_url() {
        let r = Request::from_url(
            "POST",
            "https://Backboard.Railway.app/graphql/v2?x=1#frag",
            [("Content-Type".to_string(), b"application/json".to_vec())],
            br#"{"query":"mutation{volumeDelete}"}"#.to_vec(),
        )
        .unwrap();
        assert_eq!(r.host(), Some("backboard.railway.app"));
        assert_eq!(r.port(), None);
        assert_eq!(r.path(), "/graphql/v2?x=1");
        assert_eq!(r.scheme(), Some("https"));
        assert!(r.is_graphql());
        let r = Request::from_url("GET", "http://[::1]:8080?q", [], vec![]).unwrap();
        assert_eq!(
            (r.host(), r.port(), r.path()),
            (Some("::1"), Some(8080), "/?q")
        );
        assert!(Request::from_url("GET", "not a url", [], vec![]).is_err());
        assert!(Request::from_url("GET", "http:///path", [], vec![]).is_err());
        assert!(Request::from_url("G T", "http://h/", [], vec![]).is_err());
    }

    #[test]
    fn graphql_hint() {
        let j = Some("application/json; charset=utf-8");
        assert!(
            req(
                "POST",
                "/graphql",
                j,
                br#"{"query": "mutation { volumeDelete }"}"#
            )
            .is_graphql()
        );
        assert!(req("POST", "/", j, br#"[{"query" : "{a}"}]"#).is_graphql());
        assert!(!req("POST", "/", j, br#"{"q": "query"}"#).is_graphql());
        assert!(!req("POST", "/", j, br#"{"a": "\"query\""}"#).is_graphql());
        assert!(req("POST", "/", Some("application/graphql"), b"{ a }").is_graphql());
        assert!(!req("POST", "/", Some("text/plain"), br#"{"query": 1}"#).is_graphql());
        assert!(req("GET", "/graphql?query=%7Ba%7D", None, b"").is_graphql());
        assert!(!req("GET", "/search?q=query", None, b"").is_graphql());
    }
}
