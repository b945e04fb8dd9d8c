//! Spill files: events libguard could not send (broker dead, socket buffer full, backlog full)
//! and wrote to `<spill dir>/<pid>.spill` instead, plus `<pid>.lost`, the count of events it
//! could not even spill. The broker ingests both (at start, every second, and at session end)
//! into the session's store and removes them.
//!
//! Locking protocol (shared with libguard's `broker.rs`): a writer opens the file, takes a
//! non-blocking `flock` (shared for `.spill`, exclusive for `.lost`), checks the file still has
//! a link, writes and closes. The broker opens it, takes `LOCK_EX`, reads everything, unlinks
//! it while still holding the lock, then closes. A writer that opened the file before the
//! unlink either got its lock first (so its record is read) or finds no link once it has the
//! lock and reopens, creating a fresh file. Nothing is lost between read and unlink.
//!
//! Record format: `GSP1`, realtime ms (u64 LE), FNV-1a 32 of the frame (u32 LE), the frame.

use crate::broker::event::{AuditEvent, SessionInfo, rfc3339_ms};
use guard_proto::wire::{self, Message};
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 4] = b"GSP1";
const HEADER: usize = 16;

/// What one pass over a spill directory produced.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Events, marked `delivery: spill`, plus one `lost` record per `.lost` tally.
    pub events: Vec<AuditEvent>,
    /// Events counted in `.lost` tallies (also carried by the `lost` records).
    pub lost: u64,
    /// Records that failed their checksum or did not decode (cut short by a full disk; the
    /// writer counted those events as lost itself).
    pub corrupt: u64,
    /// Files skipped because a writer held its lock (retried on the next pass).
    pub busy: usize,
}

fn fnv32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h = (h ^ u32::from(x)).wrapping_mul(0x0100_0193);
    }
    h
}

/// Opens `path`, takes `LOCK_EX` (waiting at most `wait`), reads it whole and unlinks it.
/// `None` when it vanished or stayed locked.
fn take(path: &Path, wait: Duration) -> Result<Option<Vec<u8>>, ()> {
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    let start = Instant::now();
    loop {
        // SAFETY: flock on a file we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        if start.elapsed() >= wait {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Only regular files: anything else under that name was not written by libguard. No link
    // left: another ingester (a launcher's fallback, a second pass) already took it.
    if !f
        .metadata()
        .map(|m| m.is_file() && m.nlink() > 0)
        .unwrap_or(false)
    {
        return Ok(None);
    }
    let mut data = Vec::new();
    let _ = f.read_to_end(&mut data);
    let _ = fs::remove_file(path);
    drop(f);
    Ok(Some(data))
}

/// Decodes the records of one spill file.
pub fn parse(data: &[u8], info: &SessionInfo, out: &mut Ingested) {
    let mut pos = 0usize;
    while pos + HEADER <= data.len() {
        if &data[pos..pos + 4] != MAGIC {
            // Resynchronise on the next record after damage.
            match find(&data[pos + 1..], MAGIC) {
                Some(k) => {
                    pos += 1 + k;
                    continue;
                }
                None => break,
            }
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&data[pos + 4..pos + 12]);
        let mut sum = [0u8; 4];
        sum.copy_from_slice(&data[pos + 12..pos + 16]);
        let body = &data[pos + HEADER..];
        match wire::decode_frame(body) {
            Ok((Message::Event(ev), used)) if fnv32(&body[..used]) == u32::from_le_bytes(sum) => {
                let when = UNIX_EPOCH + Duration::from_millis(u64::from_le_bytes(ts));
                let mut a = AuditEvent::from_wire(&ev, info, when);
                a.delivery = Some("spill".into());
                out.events.push(a);
                pos += HEADER + used;
            }
            _ => {
                out.corrupt += 1;
                pos += 1;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The stored record for `n` events process `pid` could neither send nor spill.
pub fn lost_record(pid: u32, n: u64, info: &SessionInfo) -> AuditEvent {
    AuditEvent {
        ts: rfc3339_ms(SystemTime::now()),
        session: info.session.clone(),
        agent: info.agent.clone(),
        model: info.model.clone(),
        host: info.host.clone(),
        pid,
        ppid: 0,
        exe: String::new(),
        runtime: String::new(),
        cwd: String::new(),
        action: "lost".into(),
        target: String::new(),
        decision: "lost".into(),
        rule: None,
        reason: format!(
            "{n} events of this process could be neither sent to the broker nor spilled (spill file full or unwritable)"
        ),
        tags: Vec::new(),
        enforce_decision: None,
        dropped_before: n,
        approval: None,
        delivery: Some("spill".into()),
        layer: None,
    }
}

/// Ingests every `<pid>.spill` and `<pid>.lost` in `dir`. `wait`: how long to wait for a file
/// a writer holds locked (0 on periodic passes; a little at session end).
pub fn ingest_dir(dir: &Path, info: &SessionInfo, wait: Duration) -> Ingested {
    let mut out = Ingested::default();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Spill files first, so a process's `lost` record follows the events it did keep.
    names.sort_by_key(|p| p.extension().is_some_and(|x| x == "lost"));
    for path in names {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Ok(pid) = stem.parse::<u32>() else {
            continue;
        };
        let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
        if ext != "spill" && ext != "lost" {
            continue;
        }
        let data = match take(&path, wait) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(()) => {
                out.busy += 1;
                continue;
            }
        };
        if ext == "spill" {
            parse(&data, info, &mut out);
        } else if let Some(b) = data.get(..8) {
            let mut n = [0u8; 8];
            n.copy_from_slice(b);
            let n = u64::from_le_bytes(n);
            if n > 0 {
                out.lost += n;
                // A record of its own: a count must reach the log even when the process
                // spilled nothing it could attach it to. Not an event: `events` totals skip it.
                out.events.push(lost_record(pid, n, info));
            }
        }
    }
    out
}

/// Creates the spill directory of a session (mode 0700).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Removes a session's spill directory if it is empty (a process may still spill later; then
/// it cannot create its file and counts the event as lost in memory, as before spill existed).
pub fn remove_dir_if_empty(dir: &Path) {
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn info() -> SessionInfo {
        SessionInfo {
            session: "s".into(),
            agent: "a".into(),
            model: "m".into(),
            host: "h".into(),
        }
    }

    fn record(target: &str, ts: u64) -> Vec<u8> {
        let ev = wire::Event {
            session: "s",
            pid: 9,
            ppid: 1,
            exe: "/bin/x",
            runtime: "native",
            cwd: "/",
            action: "read",
            target,
            decision: "deny",
            enforce_decision: "deny",
            rule: "r",
            reason: "",
            tags: "",
            dropped_before: 2,
            approval_id: 0,
            approval_answer: "",
            approval_who: "",
            approval_latency_ms: 0,
        };
        let mut f = vec![0u8; 4096];
        let n = wire::encode_frame(&Message::Event(ev), &mut f).unwrap();
        f.truncate(n);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&fnv32(&f).to_le_bytes());
        out.extend_from_slice(&f);
        out
    }

    #[test]
    fn records_parse_and_damage_is_skipped() {
        let mut data = record("/a", 1_000);
        let cut = record("/cut", 2_000);
        data.extend_from_slice(&cut[..cut.len() - 3]);
        data.extend_from_slice(&record("/b", 3_000));
        let mut bad = record("/flipped", 4_000);
        let last = bad.len() - 1;
        bad[last] ^= 0x55;
        data.extend_from_slice(&bad);
        data.extend_from_slice(b"junk");
        let mut out = Ingested::default();
        parse(&data, &info(), &mut out);
        let targets: Vec<&str> = out.events.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(targets, ["/a", "/b"]);
        assert!(out.corrupt >= 2, "{out:?}");
        assert_eq!(out.events[0].ts, "1970-01-01T00:00:01.000Z");
        assert_eq!(out.events[1].delivery.as_deref(), Some("spill"));
        assert_eq!(out.events[1].dropped_before, 2);
    }

    #[test]
    fn a_directory_is_ingested_once_and_emptied() {
        let dir = std::env::temp_dir().join(format!("guard-spill-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        create_dir(&dir).unwrap();
        fs::write(dir.join("12.spill"), record("/x", 5)).unwrap();
        fs::write(dir.join("12.lost"), 7u64.to_le_bytes()).unwrap();
        fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        let out = ingest_dir(&dir, &info(), Duration::ZERO);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[0].target, "/x");
        assert_eq!(out.events[1].action, "lost");
        assert_eq!(out.events[1].dropped_before, 7);
        assert_eq!(out.lost, 7);
        assert!(!dir.join("12.spill").exists() && !dir.join("12.lost").exists());
        assert!(dir.join("notes.txt").exists());
        // A file a writer holds locked is left for the next pass.
        fs::write(dir.join("13.spill"), record("/y", 5)).unwrap();
        let held = File::open(dir.join("13.spill")).unwrap();
        // SAFETY: flock on our own fd.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_SH) }, 0);
        let out = ingest_dir(&dir, &info(), Duration::ZERO);
        assert_eq!((out.events.len(), out.busy), (0, 1));
        drop(held);
        let out = ingest_dir(&dir, &info(), Duration::ZERO);
        assert_eq!(out.events.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
