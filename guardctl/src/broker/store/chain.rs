//! The hash chain of the JSON Lines audit log.
//!
//! A record is written as the event's JSON object with `v`, `seq` and `prev` appended, then
//! `hash` last: `hash` is the hex SHA-256 of the line's bytes up to (not including) `,"hash":`,
//! followed by `}`. Hashing the bytes as written (not a re-serialisation) keeps verification
//! independent of JSON formatting details. `prev` is the previous record's hash; the first
//! record's `prev` is [`genesis`] of the session. Without a secret this detects edits, removals,
//! insertions and reordering, not a whole file rewritten from scratch (see docs/AUDIT.md).

use super::SCHEMA_VERSION;
use crate::broker::event::AuditEvent;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

const HASH_KEY: &[u8] = b",\"hash\":\"";

fn hex(d: &[u8]) -> String {
    let mut s = String::with_capacity(d.len() * 2);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The `prev` of a session's first record.
pub fn genesis(session: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"guard-audit-v1 genesis\0");
    h.update(session.as_bytes());
    hex(&h.finalize())
}

/// Writes the record line for `ev` (without newline) into `line`; returns its hash.
pub fn encode(ev: &AuditEvent, seq: u64, prev: &str, line: &mut Vec<u8>) -> Option<String> {
    line.clear();
    serde_json::to_writer(&mut *line, ev).ok()?;
    if line.last() != Some(&b'}') {
        return None;
    }
    line.pop();
    let _ = write!(
        VecWriter(line),
        ",\"v\":{SCHEMA_VERSION},\"seq\":{seq},\"prev\":\"{prev}\"}}"
    );
    let hash = hex(&Sha256::digest(&line[..]));
    line.pop();
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    Some(hash)
}

struct VecWriter<'a>(&'a mut Vec<u8>);
impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Why a line breaks the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Broken {
    /// Not a record line at all (cut short, not JSON, no hash).
    Malformed,
    /// The content does not match its own hash: edited.
    Edited,
    /// A valid record whose `prev`/`seq` do not follow the record before it: a record was
    /// removed, inserted or moved.
    OutOfChain { want_seq: u64, got_seq: u64 },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Malformed => f.write_str("not a chained audit record (cut short or not JSON)"),
            Broken::Edited => f.write_str("content does not match its hash (edited)"),
            Broken::OutOfChain { want_seq, got_seq } => write!(
                f,
                "does not follow the previous record (expected seq {want_seq}, found seq {got_seq}): a record was removed, inserted or reordered"
            ),
        }
    }
}

/// Walks a chain line by line.
pub struct Verifier {
    prev: String,
    seq: u64,
}

impl Verifier {
    pub fn new(session: &str) -> Verifier {
        Verifier {
            prev: genesis(session),
            seq: 0,
        }
    }

    /// Checks the next line (without its newline).
    pub fn next(&mut self, line: &[u8]) -> Result<(), Broken> {
        let hash = check_line(line)?;
        let body_end = line.len() - (HASH_KEY.len() + 64 + 2);
        let v: serde_json::Value = {
            let mut body = line[..body_end].to_vec();
            body.push(b'}');
            serde_json::from_slice(&body).map_err(|_| Broken::Malformed)?
        };
        let got_seq = v
            .get("seq")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let prev = v.get("prev").and_then(serde_json::Value::as_str);
        if prev != Some(self.prev.as_str()) || got_seq != self.seq + 1 {
            return Err(Broken::OutOfChain {
                want_seq: self.seq + 1,
                got_seq,
            });
        }
        self.prev = hash;
        self.seq = got_seq;
        Ok(())
    }

    /// Records verified so far, and the last hash.
    pub fn head(&self) -> (u64, &str) {
        (self.seq, &self.prev)
    }
}

/// The line's hash if it matches its content.
fn check_line(line: &[u8]) -> Result<String, Broken> {
    let tail = HASH_KEY.len() + 64 + 2;
    if line.len() < tail + 2 || !line.ends_with(b"\"}") {
        return Err(Broken::Malformed);
    }
    let body_end = line.len() - tail;
    if &line[body_end..body_end + HASH_KEY.len()] != HASH_KEY {
        return Err(Broken::Malformed);
    }
    let stored = &line[body_end + HASH_KEY.len()..line.len() - 2];
    if !stored.iter().all(|b| b.is_ascii_hexdigit()) {
        return Err(Broken::Malformed);
    }
    let mut h = Sha256::new();
    h.update(&line[..body_end]);
    h.update(b"}");
    let computed = hex(&h.finalize());
    if computed.as_bytes() != stored {
        return Err(Broken::Edited);
    }
    Ok(computed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(target: &str) -> AuditEvent {
        AuditEvent {
            ts: "2026-11-22T02:00:00.000Z".into(),
            session: "s".into(),
            agent: "a".into(),
            model: "m".into(),
            host: "h".into(),
            pid: 1,
            ppid: 0,
            exe: "/bin/x".into(),
            runtime: "native".into(),
            cwd: "/".into(),
            action: "read".into(),
            target: target.into(),
            decision: "deny".into(),
            rule: Some("r".into()),
            reason: String::new(),
            tags: vec![],
            enforce_decision: None,
            dropped_before: 0,
            approval: None,
            delivery: None,
            layer: None,
        }
    }

    fn chain(n: usize) -> Vec<Vec<u8>> {
        let mut prev = genesis("s");
        (0..n)
            .map(|i| {
                let mut line = Vec::new();
                prev = encode(&ev(&format!("/f{i}")), i as u64 + 1, &prev, &mut line).unwrap();
                line
            })
            .collect()
    }

    fn first_bad(lines: &[Vec<u8>]) -> Option<(usize, Broken)> {
        let mut v = Verifier::new("s");
        lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| v.next(l).err().map(|e| (i + 1, e)))
    }

    #[test]
    fn intact_chain_verifies_and_lines_are_json() {
        let lines = chain(5);
        assert_eq!(first_bad(&lines), None);
        let v: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["prev"], genesis("s"));
        assert_eq!(v["v"], SCHEMA_VERSION);
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_bad_line() {
        let lines = chain(5);
        let mut edited = lines.clone();
        let s = String::from_utf8(edited[2].clone())
            .unwrap()
            .replace("/f2", "/g2");
        edited[2] = s.into_bytes();
        assert_eq!(first_bad(&edited), Some((3, Broken::Edited)));

        let mut removed = lines.clone();
        removed.remove(1);
        assert!(matches!(
            first_bad(&removed),
            Some((2, Broken::OutOfChain { .. }))
        ));

        let mut swapped = lines.clone();
        swapped.swap(3, 4);
        assert!(matches!(
            first_bad(&swapped),
            Some((4, Broken::OutOfChain { .. }))
        ));

        let mut inserted = lines.clone();
        inserted.insert(2, lines[0].clone());
        assert!(matches!(
            first_bad(&inserted),
            Some((3, Broken::OutOfChain { .. }))
        ));

        let mut cut = lines.clone();
        let n = cut[4].len();
        cut[4].truncate(n - 10);
        assert_eq!(first_bad(&cut), Some((5, Broken::Malformed)));

        // Another session's genesis does not verify.
        let mut v = Verifier::new("other");
        assert!(v.next(&lines[0]).is_err());
    }
}
