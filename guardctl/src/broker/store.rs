//! Where audit events end up: a hash-chained JSON Lines file per session (the record of truth)
//! and, when it can be opened, the shared SQLite database (the index `guardctl log` queries).
//! The format of both is documented, and kept stable, in `docs/AUDIT.md`.
//!
//! Only the broker's writer thread owns a [`Store`]; it hands over events in batches so that
//! one `write` and one SQLite transaction cover many events.

pub mod chain;
pub mod sqlite;

use crate::broker::event::AuditEvent;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Version of the stored record and database layout (`v` in every JSON line,
/// `meta.schema_version` in SQLite). Bumped only with a migration note in docs/AUDIT.md.
pub const SCHEMA_VERSION: u32 = 1;

/// Counts the writer reports to the database with each batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub broker_dropped: u64,
    pub client_dropped: u64,
}

pub struct Store {
    jsonl: File,
    session: String,
    /// Hash of the last record written (or the genesis value).
    prev: String,
    /// Records in the file so far.
    seq: u64,
    /// Of those, `lost` records (the broker's records of events a process could not deliver;
    /// not events themselves).
    lost_records: u64,
    db: Option<sqlite::Db>,
    line: Vec<u8>,
    out: Vec<u8>,
}

impl Store {
    /// A store appending to `jsonl`. If the file already holds records (a broker restarted for
    /// the same session), the chain continues from its last hash. `db` is the SQLite path; when
    /// it cannot be opened the JSON Lines file alone is written (with one warning).
    pub fn open(mut jsonl: File, db: Option<&Path>, session: &str) -> io::Result<Store> {
        // A record cut short by a crash stays visible to `log verify`; new records start on a
        // line of their own.
        // Only a regular file can hold earlier records (the tests also write to pipes).
        let existing = jsonl.metadata()?.is_file() && jsonl.metadata()?.len() > 0;
        if existing && ends_without_newline(&mut jsonl)? {
            jsonl.write_all(b"\n")?;
        }
        let last = if existing {
            last_record(&mut jsonl)?
        } else {
            None
        };
        let (seq, prev) = match last {
            Some((seq, hash)) => (seq, hash),
            None => (0, chain::genesis(session)),
        };
        let db = db.and_then(|p| match sqlite::Db::open(p, session) {
            Ok(d) => Some(d),
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "guard: audit database {} unavailable ({e}); writing JSON Lines only",
                    p.display()
                );
                None
            }
        });
        // A continued file (restarted serve, launcher fallback) may hold `lost` records already.
        let lost_records = if seq > 0 {
            db.as_ref().map(|d| d.lost_records(session)).unwrap_or(0)
        } else {
            0
        };
        Ok(Store {
            jsonl,
            session: session.to_string(),
            prev,
            seq,
            lost_records,
            db,
            line: Vec::with_capacity(1024),
            out: Vec::with_capacity(64 * 1024),
        })
    }

    /// Appends `events` to the JSON Lines file (one write), then to the database in one
    /// transaction. Returns how many records were written to the file.
    pub fn write_batch(&mut self, events: &[AuditEvent], counts: Counts) -> io::Result<u64> {
        self.out.clear();
        let mut rows = Vec::with_capacity(events.len());
        for ev in events {
            let seq = self.seq + 1;
            let Some(hash) = chain::encode(ev, seq, &self.prev, &mut self.line) else {
                continue;
            };
            self.out.extend_from_slice(&self.line);
            self.out.push(b'\n');
            rows.push((seq, hash.clone()));
            if ev.action == "lost" {
                self.lost_records += 1;
            }
            self.seq = seq;
            self.prev = hash;
        }
        self.jsonl.write_all(&self.out)?;
        if let Some(db) = &mut self.db
            && let Err(e) = db.insert(events, &rows, &self.session, counts)
        {
            // The JSON Lines file is the record of truth; a broken index must not stop it.
            let _ = writeln!(
                io::stderr(),
                "guard: audit database write failed ({e}); writing JSON Lines only"
            );
            self.db = None;
        }
        Ok(rows.len() as u64)
    }

    /// Events in the JSON Lines file (this broker's and any earlier one's): its records
    /// except `lost` records.
    pub fn events(&self) -> u64 {
        self.seq.saturating_sub(self.lost_records)
    }

    /// The counts the database holds for this session (a restarted `serve` continues them).
    pub fn stored_counts(&self) -> Counts {
        self.db
            .as_ref()
            .and_then(|d| d.counts(&self.session))
            .unwrap_or_default()
    }

    /// Records the final counts (events only reach the database in batches).
    pub fn finish(&mut self, counts: Counts) {
        if let Some(db) = &mut self.db {
            let _ = db.insert(&[], &[], &self.session, counts);
        }
    }
}

/// The `seq` and `hash` of the last complete record of `f`, leaving the cursor at the end.
fn last_record(f: &mut File) -> io::Result<Option<(u64, String)>> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(256 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut tail)?;
    f.seek(SeekFrom::End(0))?;
    let found = tail
        .split(|&b| b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            Some((
                v.get("seq")?.as_u64()?,
                v.get("hash")?.as_str()?.to_string(),
            ))
        });
    Ok(found)
}

fn ends_without_newline(f: &mut File) -> io::Result<bool> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    f.seek(SeekFrom::End(0))?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn ev(i: usize) -> AuditEvent {
        AuditEvent {
            ts: format!("2026-11-22T02:00:{:02}.000Z", i % 60),
            session: "s1".into(),
            agent: "a".into(),
            model: "m".into(),
            host: "h".into(),
            pid: i as u32,
            ppid: 1,
            exe: "/bin/x".into(),
            runtime: "native".into(),
            cwd: "/".into(),
            action: if i.is_multiple_of(2) { "read" } else { "exec" }.into(),
            target: format!("/f{i}"),
            decision: "deny".into(),
            rule: Some("r".into()),
            reason: String::new(),
            tags: vec!["T".into()],
            enforce_decision: None,
            dropped_before: 0,
            approval: None,
            delivery: None,
            layer: None,
        }
    }

    fn open(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
    }

    /// A broker restarted on the same session file (after a crash that cut a record short)
    /// continues the chain; verify reports only the cut record, and the database agrees.
    #[test]
    fn a_restarted_store_continues_the_chain_and_indexes_every_record() {
        let dir = std::env::temp_dir().join(format!("guard-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (log, db) = (dir.join("s1.jsonl"), dir.join("audit.db"));
        let evs: Vec<AuditEvent> = (0..10).map(ev).collect();
        let mut st = Store::open(open(&log), Some(&db), "s1").unwrap();
        assert_eq!(st.write_batch(&evs[..6], Counts::default()).unwrap(), 6);
        drop(st);
        let mut st = Store::open(open(&log), Some(&db), "s1").unwrap();
        let counts = Counts {
            broker_dropped: 3,
            client_dropped: 4,
        };
        assert_eq!(st.write_batch(&evs[6..], counts).unwrap(), 4);
        st.finish(counts);
        drop(st);

        let text = std::fs::read(&log).unwrap();
        let mut v = chain::Verifier::new("s1");
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            v.next(line).unwrap();
        }
        let (n, head) = v.head();
        assert_eq!(n, 10);
        let conn = sqlite::connect_read(&db).unwrap();
        let (records, last, bd, cd): (i64, String, i64, i64) = conn
            .query_row(
                "SELECT records, last_hash, broker_dropped, client_dropped FROM sessions WHERE session='s1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((records, last.as_str(), bd, cd), (10, head, 3, 4));
        let reads: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE session='s1' AND action='read'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(reads, 5);
        let version: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());

        // A crash mid-record: the next broker starts a fresh line; verify names the cut line.
        let mut f = open(&log);
        f.write_all(b"{\"ts\":\"2026").unwrap();
        drop(f);
        let mut st = Store::open(open(&log), None, "s1").unwrap();
        st.write_batch(&evs[..1], Counts::default()).unwrap();
        drop(st);
        let text = std::fs::read(&log).unwrap();
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 12);
        let mut v = chain::Verifier::new("s1");
        let bad = lines.iter().position(|l| v.next(l).is_err());
        assert_eq!(bad, Some(10));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
