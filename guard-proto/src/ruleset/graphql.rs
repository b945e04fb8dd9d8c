//! Finding the top-level field names of the operations in a GraphQL request body, without
//! allocating: a tokenizer that reads either the raw document or the JSON envelope's
//! `"query"` string (decoding JSON escapes on the fly), and a shallow parser that knows
//! operations, aliases, arguments, directives, inline fragments and named fragment spreads
//! (resolved by re-scanning the document for the fragment definition). Malformed input ends the
//! scan; it never panics.

// Nested `if`s inside match arms keep the lexer's side effects out of match guards.
#![allow(clippy::collapsible_match)]

use super::format::{GQL_MUTATION, GQL_QUERY, GQL_SUBSCRIPTION};

const NAME_MAX: usize = 96;
const MAX_FRAGMENT_DEPTH: u8 = 4;

/// A byte source: the raw document, or the inside of one JSON string (escapes decoded).
#[derive(Clone, Copy)]
struct Src<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
    json: bool,
}

impl Src<'_> {
    fn next(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let c = *self.b.get(self.pos)?;
        if !self.json || c != b'\\' {
            self.pos += 1;
            return Some(c);
        }
        let e = *self.b.get(self.pos + 1)?;
        self.pos += 2;
        Some(match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 8,
            b'f' => 12,
            b'u' => {
                let mut v: u32 = 0;
                for _ in 0..4 {
                    let h = *self.b.get(self.pos)?;
                    v = v * 16 + char::from(h).to_digit(16)?;
                    self.pos += 1;
                }
                // Names are ASCII; anything else only needs to be "not a name character".
                if v < 0x80 { v as u8 } else { 0xff }
            }
            other => other,
        })
    }

    fn peek(&self) -> Option<u8> {
        let mut c = *self;
        c.next()
    }
}

#[derive(Clone, Copy)]
enum Tok {
    Eof,
    Punct(u8),
    Spread,
    Name([u8; NAME_MAX], usize),
    Value,
}

impl Tok {
    fn is_name(&self, s: &[u8]) -> bool {
        matches!(self, Tok::Name(buf, len) if *len <= NAME_MAX && buf.get(..*len) == Some(s))
    }
}

#[derive(Clone, Copy)]
struct Lexer<'a> {
    src: Src<'a>,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Lexer<'_> {
    fn next(&mut self) -> Tok {
        loop {
            let Some(c) = self.src.next() else {
                return Tok::Eof;
            };
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => continue,
                0xef if self.src.peek() == Some(0xbb) => {
                    // UTF-8 BOM
                    self.src.next();
                    self.src.next();
                    continue;
                }
                b'#' => {
                    while let Some(d) = self.src.next() {
                        if d == b'\n' || d == b'\r' {
                            break;
                        }
                    }
                    continue;
                }
                b'.' => {
                    if self.src.peek() == Some(b'.') {
                        self.src.next();
                        if self.src.peek() == Some(b'.') {
                            self.src.next();
                        }
                        return Tok::Spread;
                    }
                    return Tok::Punct(b'.');
                }
                b'"' => {
                    self.skip_string();
                    return Tok::Value;
                }
                c if is_name_start(c) => {
                    let mut buf = [0u8; NAME_MAX];
                    buf[0] = c;
                    let mut len = 1;
                    while let Some(d) = self.src.peek() {
                        if !is_name_char(d) {
                            break;
                        }
                        self.src.next();
                        if let Some(slot) = buf.get_mut(len) {
                            *slot = d;
                        }
                        len += 1;
                    }
                    return Tok::Name(buf, len);
                }
                c if c.is_ascii_digit() || c == b'-' => {
                    while let Some(d) = self.src.peek() {
                        if !(d.is_ascii_alphanumeric() || d == b'.' || d == b'+' || d == b'-') {
                            break;
                        }
                        self.src.next();
                    }
                    return Tok::Value;
                }
                other => return Tok::Punct(other),
            }
        }
    }

    /// After an opening `"`: skips a string or a `"""` block string.
    fn skip_string(&mut self) {
        let mut probe = self.src;
        if probe.next() == Some(b'"') && probe.next() == Some(b'"') {
            self.src = probe;
            // Block string: ends at an unescaped `"""`.
            let mut quotes = 0;
            while let Some(c) = self.src.next() {
                if c == b'\\' && quotes == 0 {
                    // `\"""` is an escaped triple quote.
                    let mut p = self.src;
                    if p.next() == Some(b'"') && p.next() == Some(b'"') && p.next() == Some(b'"') {
                        self.src = p;
                    }
                    continue;
                }
                if c == b'"' {
                    quotes += 1;
                    if quotes == 3 {
                        return;
                    }
                } else {
                    quotes = 0;
                }
            }
            return;
        }
        while let Some(c) = self.src.next() {
            match c {
                b'\\' => {
                    self.src.next();
                }
                b'"' | b'\n' => return,
                _ => {}
            }
        }
    }

    fn peek(&self) -> Tok {
        let mut l = *self;
        l.next()
    }

    /// After an opening `open`: skips to the matching `close`.
    fn skip_balanced(&mut self, open: u8, close: u8) {
        let mut depth = 1usize;
        loop {
            match self.next() {
                Tok::Eof => return,
                Tok::Punct(c) if c == open => depth += 1,
                Tok::Punct(c) if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Skips up to and including the next `{` at parenthesis depth 0; false at the end.
    fn skip_to_selection(&mut self) -> bool {
        loop {
            match self.next() {
                Tok::Eof => return false,
                Tok::Punct(b'{') => return true,
                Tok::Punct(b'(') => self.skip_balanced(b'(', b')'),
                Tok::Punct(b'}') => return false,
                _ => {}
            }
        }
    }
}

/// Calls `f(operation kind bit, field name)` for every top-level field of every operation in
/// the body (raw document, JSON envelope or batched array). Stops early when `f` returns true,
/// and returns whether it did.
pub(crate) fn for_each_top_field(body: &[u8], f: &mut dyn FnMut(u8, &[u8]) -> bool) -> bool {
    let mut i = 0;
    while body.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    let json = match body.get(i) {
        Some(b'[') => true,
        Some(b'{') => {
            let mut j = i + 1;
            while body.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
                j += 1;
            }
            matches!(body.get(j), Some(b'"') | Some(b'}'))
        }
        _ => false,
    };
    if !json {
        let src = Src {
            b: body,
            pos: 0,
            end: body.len(),
            json: false,
        };
        return scan_document(src, f);
    }
    scan_json_envelope(body, i, f)
}

fn scan_document(doc: Src<'_>, f: &mut dyn FnMut(u8, &[u8]) -> bool) -> bool {
    let mut lx = Lexer { src: doc };
    loop {
        let t = lx.next();
        let kind = match t {
            Tok::Eof => return false,
            Tok::Punct(b'{') => {
                if scan_selection(&mut lx, GQL_QUERY, doc, f, 0) {
                    return true;
                }
                continue;
            }
            t if t.is_name(b"query") => GQL_QUERY,
            t if t.is_name(b"mutation") => GQL_MUTATION,
            t if t.is_name(b"subscription") => GQL_SUBSCRIPTION,
            t if t.is_name(b"fragment") => {
                if lx.skip_to_selection() {
                    lx.skip_balanced(b'{', b'}');
                }
                continue;
            }
            _ => continue,
        };
        if !lx.skip_to_selection() {
            continue;
        }
        if scan_selection(&mut lx, kind, doc, f, 0) {
            return true;
        }
    }
}

/// After the `{` of a selection set: reports its fields (and those of fragments spread into it)
/// and consumes up to the matching `}`.
fn scan_selection(
    lx: &mut Lexer<'_>,
    kind: u8,
    doc: Src<'_>,
    f: &mut dyn FnMut(u8, &[u8]) -> bool,
    depth: u8,
) -> bool {
    loop {
        match lx.next() {
            Tok::Eof | Tok::Punct(b'}') => return false,
            Tok::Punct(b'(') => lx.skip_balanced(b'(', b')'),
            Tok::Punct(b'{') => lx.skip_balanced(b'{', b'}'),
            Tok::Punct(b'@') => {
                // Directive name; its arguments are skipped by the `(` arm.
                lx.next();
            }
            Tok::Spread => match lx.next() {
                Tok::Punct(b'{') => {
                    if scan_selection(lx, kind, doc, f, depth) {
                        return true;
                    }
                }
                t if t.is_name(b"on") || matches!(t, Tok::Punct(b'@')) => {
                    if lx.skip_to_selection() && scan_selection(lx, kind, doc, f, depth) {
                        return true;
                    }
                }
                Tok::Name(buf, len) => {
                    if depth < MAX_FRAGMENT_DEPTH
                        && let Some(name) = buf.get(..len)
                        && let Some(mut flx) = find_fragment(doc, name)
                        && scan_selection(&mut flx, kind, doc, f, depth + 1)
                    {
                        return true;
                    }
                }
                _ => {}
            },
            Tok::Name(buf, len) => {
                let mut field = (buf, len);
                if matches!(lx.peek(), Tok::Punct(b':')) {
                    lx.next();
                    match lx.next() {
                        Tok::Name(b2, l2) => field = (b2, l2),
                        _ => continue,
                    }
                }
                if field.1 <= NAME_MAX
                    && let Some(name) = field.0.get(..field.1)
                    && f(kind, name)
                {
                    return true;
                }
            }
            _ => {}
        }
    }
}

/// A lexer positioned just after the `{` of `fragment NAME on T ... {`.
fn find_fragment<'a>(doc: Src<'a>, name: &[u8]) -> Option<Lexer<'a>> {
    let mut lx = Lexer { src: doc };
    let mut depth = 0usize;
    loop {
        match lx.next() {
            Tok::Eof => return None,
            Tok::Punct(b'{') => depth += 1,
            Tok::Punct(b'}') => depth = depth.saturating_sub(1),
            Tok::Punct(b'(') => lx.skip_balanced(b'(', b')'),
            t if depth == 0 && t.is_name(b"fragment") => {
                if lx.next().is_name(name) {
                    return lx.skip_to_selection().then_some(lx);
                }
            }
            _ => {}
        }
    }
}

/// Walks a JSON body (object or array of objects) and scans the string value of every
/// top-level `"query"` key.
fn scan_json_envelope(b: &[u8], start: usize, f: &mut dyn FnMut(u8, &[u8]) -> bool) -> bool {
    // depth: 1 inside the top object (or an object directly in the top array).
    let mut i = start;
    let mut depth = 0usize;
    let top_is_array = b.get(start) == Some(&b'[');
    // Whether the next string at an envelope level is a key.
    let mut expect_key = false;
    let mut last_key_is_query = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'{' | b'[' => {
                depth += 1;
                expect_key = c == b'{';
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b',' => {
                expect_key = is_envelope_level(depth, top_is_array);
                i += 1;
            }
            b':' => {
                expect_key = false;
                i += 1;
            }
            b'"' => {
                let s = i + 1;
                let e = json_string_end(b, s);
                let envelope = is_envelope_level(depth, top_is_array);
                if envelope && expect_key {
                    last_key_is_query = b.get(s..e) == Some(b"query");
                } else if envelope && last_key_is_query {
                    let src = Src {
                        b,
                        pos: s,
                        end: e,
                        json: true,
                    };
                    if scan_document(src, f) {
                        return true;
                    }
                    last_key_is_query = false;
                }
                i = e + 1;
            }
            _ => i += 1,
        }
    }
    false
}

fn is_envelope_level(depth: usize, top_is_array: bool) -> bool {
    if top_is_array { depth == 2 } else { depth == 1 }
}

/// Index of the closing quote of the JSON string starting at `s` (or the end of the body).
fn json_string_end(b: &[u8], mut s: usize) -> usize {
    while let Some(&c) = b.get(s) {
        match c {
            b'\\' => s += 2,
            b'"' => return s,
            _ => s += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> Vec<(u8, String)> {
        let mut out = Vec::new();
        for_each_top_field(body.as_bytes(), &mut |k, n| {
            out.push((k, String::from_utf8_lossy(n).into_owned()));
            false
        });
        out
    }

    fn names(body: &str, kind: u8) -> Vec<String> {
        fields(body)
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .collect()
    }

    #[test]
    fn raw_documents() {
        assert_eq!(
            names("mutation { volumeDelete(volumeId: \"v\") }", GQL_MUTATION),
            ["volumeDelete"]
        );
        assert_eq!(
            names(
                "mutation Del($id: String!) { x: volumeDelete(volumeId: $id) { id } other }",
                GQL_MUTATION
            ),
            ["volumeDelete", "other"]
        );
        assert_eq!(names("{ me { volumeDelete } }", GQL_QUERY), ["me"]);
        assert!(names("query { me }", GQL_MUTATION).is_empty());
        // comments, commas, odd whitespace
        assert_eq!(
            names(
                "# volumeDelete\nmutation\n{\n# c\n  a : projectDelete ( id : \"x}\" ) ,\n}",
                GQL_MUTATION
            ),
            ["projectDelete"]
        );
    }

    #[test]
    fn fragments_inline_and_named() {
        let doc = "mutation { ...F ... on Mutation { serviceDelete } ... @include(if: true) { b } }\n fragment F on Mutation { volumeDelete nested { x } ...G }\n fragment G on Mutation { environmentDelete }";
        assert_eq!(
            names(doc, GQL_MUTATION),
            [
                "volumeDelete",
                "nested",
                "environmentDelete",
                "serviceDelete",
                "b"
            ]
        );
        // A self-referencing fragment terminates.
        let cyc = "mutation { ...A } fragment A on M { ...A a }";
        assert_eq!(
            names(cyc, GQL_MUTATION).last().map(String::as_str),
            Some("a")
        );
    }

    #[test]
    fn json_envelope_and_batches() {
        let body = r#"{"variables": {"query": "mutation { fake }"}, "query": "mutation {\n  volumeDelete(volumeId: \"v\") }"}"#;
        assert_eq!(names(body, GQL_MUTATION), ["volumeDelete"]);
        let batch = r#"[{"query":"query { a }"}, {"operationName":"X","query":"mutation X { \u0070rojectDelete }"}]"#;
        assert_eq!(names(batch, GQL_MUTATION), ["projectDelete"]);
        assert_eq!(names(batch, GQL_QUERY), ["a"]);
        let escaped = r#"{"query":"mutation { a: \"\" volumeDelete }"}"#;
        assert!(names(escaped, GQL_MUTATION).contains(&"volumeDelete".to_string()));
    }

    #[test]
    fn garbage_never_panics() {
        for body in [
            "",
            "{",
            "[",
            "\"",
            "{\"query\":\"",
            "mutation {",
            "...",
            "\"\"\"",
            "{\"query\": \"\\u12\"}",
            "mutation { a(b: \"\\",
            "\u{feff}mutation { x }",
        ] {
            let _ = fields(body);
        }
        let mut x: u64 = 0x1234_5678;
        let mut buf = [0u8; 64];
        let alphabet = b"{}()[]\":.,#\\ \nmutationqueryfragmenton@$!";
        for _ in 0..2000 {
            for b in &mut buf {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = alphabet[(x % alphabet.len() as u64) as usize];
            }
            for_each_top_field(&buf, &mut |_, _| false);
        }
    }
}
