//! The sessions a `guardctl serve` broker stores events for.
//!
//! A `guardctl run` that attaches to `serve` writes its start record to the state directory's
//! `sessions/index.jsonl` with `"broker": "serve"` before it starts the command; that record is
//! the registration (durable, so a restarted `serve` knows the sessions still running). Events
//! naming a session that has no such record are refused (counted, not stored): a process cannot
//! invent a session. Within one user, a process could still name another attached session;
//! the socket directory is private to the user, so this is the same trust boundary as the log.

use crate::broker::event::SessionInfo;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// An attached session.
#[derive(Clone, Debug)]
pub struct Entry {
    pub info: SessionInfo,
    /// Its launcher's pid (the only peer allowed to end it).
    pub launcher: u32,
}

#[derive(Default)]
struct Known {
    sessions: HashMap<String, Entry>,
    ended: HashSet<String>,
    /// Length of the index when it was last read: it only grows, so a lookup of an unknown
    /// name re-reads it only when it changed (a flood of forged names costs one `stat` each).
    loaded_len: Option<u64>,
    /// Live connections that sent events of each session.
    conns: HashMap<String, usize>,
    /// Events of each session the broker lost (queue full) not yet added to its store's counts.
    dropped: HashMap<String, u64>,
}

pub struct Registry {
    pub state: PathBuf,
    host: String,
    known: Mutex<Known>,
}

impl Registry {
    pub fn new(state: PathBuf, host: String) -> Registry {
        Registry {
            state,
            host,
            known: Mutex::new(Known::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Directory of the sessions' audit logs.
    pub fn sessions_dir(&self) -> PathBuf {
        self.state.join("sessions")
    }

    /// Root of the per-session spill directories.
    pub fn spill_root(&self) -> PathBuf {
        self.state.join("spill")
    }

    fn reload(&self, k: &mut Known) {
        let path = self.sessions_dir().join("index.jsonl");
        let len = std::fs::metadata(&path).map(|m| m.len()).ok();
        if len.is_none() || len == k.loaded_len {
            return;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        k.loaded_len = Some(text.len() as u64);
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let session = s("session");
            if session.is_empty() {
                continue;
            }
            match v.get("event").and_then(|e| e.as_str()) {
                Some("start") if s("broker") == "serve" => {
                    let launcher = v.get("pid").and_then(|p| p.as_u64()).unwrap_or(0) as u32;
                    k.sessions.insert(
                        session.clone(),
                        Entry {
                            info: SessionInfo {
                                session,
                                agent: s("agent"),
                                model: s("model"),
                                host: self.host.clone(),
                            },
                            launcher,
                        },
                    );
                }
                Some("end") => {
                    k.ended.insert(session);
                }
                _ => {}
            }
        }
    }

    /// The attached session named `session`, if it registered.
    pub fn lookup(&self, session: &str) -> Option<SessionInfo> {
        let mut k = self.lock();
        if let Some(e) = k.sessions.get(session) {
            return Some(e.info.clone());
        }
        self.reload(&mut k);
        k.sessions.get(session).map(|e| e.info.clone())
    }

    /// The running (not ended) session whose launcher is `pid`.
    pub fn by_launcher(&self, pid: u32) -> Option<String> {
        let mut k = self.lock();
        self.reload(&mut k);
        k.sessions
            .iter()
            .filter(|(s, e)| e.launcher == pid && !k.ended.contains(*s))
            .map(|(s, _)| s.clone())
            .max()
    }

    /// Whether the session's launcher wrote its end record.
    pub fn ended(&self, session: &str) -> bool {
        self.lock().ended.contains(session)
    }

    pub fn conn_opened(&self, session: &str) {
        *self.lock().conns.entry(session.to_string()).or_default() += 1;
    }

    pub fn conn_closed(&self, session: &str) {
        let mut k = self.lock();
        if let Some(n) = k.conns.get_mut(session) {
            *n = n.saturating_sub(1);
        }
    }

    pub fn conns(&self, session: &str) -> usize {
        self.lock().conns.get(session).copied().unwrap_or(0)
    }

    pub fn add_dropped(&self, session: &str) {
        *self.lock().dropped.entry(session.to_string()).or_default() += 1;
    }

    /// The session's broker drops counted since the last call (they are added to its store's
    /// totals, which continue across restarts through the database).
    pub fn take_dropped(&self, session: &str) -> u64 {
        self.lock().dropped.remove(session).unwrap_or(0)
    }
}
