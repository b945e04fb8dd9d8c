//! The SQLite audit database: one table of events for every session of the state directory,
//! indexed for the filters of `guardctl log`, plus per-session counts. WAL mode, so readers
//! (`guardctl log`) never block the writer; each batch is one transaction. Several brokers may
//! share the file; SQLite serialises their transactions (a busy timeout covers the waits).

use super::{Counts, SCHEMA_VERSION};
use crate::broker::event::{AuditEvent, parse_rfc3339_ms};
use rusqlite::{Connection, params};
use std::path::Path;
use std::time::Duration;

/// The stable schema (documented in docs/AUDIT.md). Only additive changes without a version bump.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id               INTEGER PRIMARY KEY,
    session          TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    ts               TEXT NOT NULL,
    ts_ms            INTEGER NOT NULL,
    agent            TEXT NOT NULL,
    model            TEXT NOT NULL,
    host             TEXT NOT NULL,
    pid              INTEGER NOT NULL,
    ppid             INTEGER NOT NULL,
    exe              TEXT NOT NULL,
    runtime          TEXT NOT NULL,
    cwd              TEXT NOT NULL,
    action           TEXT NOT NULL,
    target           TEXT NOT NULL,
    decision         TEXT NOT NULL,
    enforce_decision TEXT,
    rule             TEXT,
    reason           TEXT NOT NULL,
    tags             TEXT NOT NULL,
    dropped_before   INTEGER NOT NULL,
    hash             TEXT NOT NULL,
    approval_id         INTEGER,
    approval_answer     TEXT,
    approval_who        TEXT,
    approval_latency_ms INTEGER,
    UNIQUE (session, seq)
);
CREATE INDEX IF NOT EXISTS events_session  ON events (session, seq);
CREATE INDEX IF NOT EXISTS events_ts       ON events (ts_ms);
CREATE INDEX IF NOT EXISTS events_action   ON events (action);
CREATE INDEX IF NOT EXISTS events_decision ON events (decision);
CREATE INDEX IF NOT EXISTS events_rule     ON events (rule);
CREATE INDEX IF NOT EXISTS events_agent    ON events (agent);
CREATE TABLE IF NOT EXISTS sessions (
    session        TEXT PRIMARY KEY,
    records        INTEGER NOT NULL,
    last_hash      TEXT NOT NULL,
    broker_dropped INTEGER NOT NULL,
    client_dropped INTEGER NOT NULL
);
";

/// Columns added after the first release (nullable, so the change is additive): added to
/// databases created before them when a broker opens one.
const ADDED_COLUMNS: [(&str, &str); 7] = [
    ("approval_id", "INTEGER"),
    ("approval_answer", "TEXT"),
    ("approval_who", "TEXT"),
    ("approval_latency_ms", "INTEGER"),
    ("approval_uid", "INTEGER"),
    ("approval_user", "TEXT"),
    ("delivery", "TEXT"),
];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut have = Vec::new();
    {
        let mut st = conn.prepare("SELECT name FROM pragma_table_info('events')")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        for r in rows {
            have.push(r?);
        }
    }
    for (name, ty) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            match conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {name} {ty}")) {
                Ok(()) => {}
                // Another broker sharing the file added it between our check and our ALTER.
                Err(e) if e.to_string().contains("duplicate column") => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

pub struct Db {
    conn: Connection,
}

/// Opens (creating if needed) the database at `path` with the connection settings every user
/// of it needs.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL with synchronous=NORMAL is durable against process crashes, the failure that matters
    // here; the JSON Lines file is the record of truth anyway.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// A read-only connection for queries.
pub fn connect_read(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

impl Db {
    pub fn open(path: &Path, session: &str) -> rusqlite::Result<Db> {
        let conn = connect(path)?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION.to_string()],
        )?;
        let _ = session;
        Ok(Db { conn })
    }

    /// Inserts `events` (with their chain positions `rows`) and updates the session's counts,
    /// in one transaction.
    pub fn insert(
        &mut self,
        events: &[AuditEvent],
        rows: &[(u64, String)],
        session: &str,
        counts: Counts,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO events (session, seq, ts, ts_ms, agent, model, host, pid, ppid,
                 exe, runtime, cwd, action, target, decision, enforce_decision, rule, reason, tags,
                 dropped_before, hash, approval_id, approval_answer, approval_who,
                 approval_latency_ms, approval_uid, approval_user, delivery)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,
                 ?22,?23,?24,?25,?26,?27,?28)",
            )?;
            // Events that failed to serialise have no row; they are skipped in both.
            for (ev, (seq, hash)) in events.iter().zip(rows) {
                let tags = serde_json::to_string(&ev.tags).unwrap_or_else(|_| "[]".into());
                st.execute(params![
                    ev.session,
                    *seq as i64,
                    ev.ts,
                    parse_rfc3339_ms(&ev.ts).unwrap_or(0),
                    ev.agent,
                    ev.model,
                    ev.host,
                    ev.pid,
                    ev.ppid,
                    ev.exe,
                    ev.runtime,
                    ev.cwd,
                    ev.action,
                    ev.target,
                    ev.decision,
                    ev.enforce_decision,
                    ev.rule,
                    ev.reason,
                    tags,
                    ev.dropped_before as i64,
                    hash,
                    ev.approval.as_ref().map(|a| a.id as i64),
                    ev.approval.as_ref().map(|a| a.answer.as_str()),
                    ev.approval.as_ref().map(|a| a.who.as_str()),
                    ev.approval.as_ref().map(|a| a.latency_ms as i64),
                    ev.approval.as_ref().and_then(|a| a.uid),
                    ev.approval.as_ref().and_then(|a| a.user.as_deref()),
                    ev.delivery,
                ])?;
            }
            if let Some((seq, hash)) = rows.last() {
                tx.execute(
                    "INSERT INTO sessions (session, records, last_hash, broker_dropped, client_dropped)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (session) DO UPDATE SET records = ?2, last_hash = ?3,
                       broker_dropped = ?4, client_dropped = ?5",
                    params![
                        session,
                        *seq as i64,
                        hash,
                        counts.broker_dropped as i64,
                        counts.client_dropped as i64
                    ],
                )?;
            } else {
                tx.execute(
                    "UPDATE sessions SET broker_dropped = ?2, client_dropped = ?3 WHERE session = ?1",
                    params![
                        session,
                        counts.broker_dropped as i64,
                        counts.client_dropped as i64
                    ],
                )?;
            }
        }
        tx.commit()
    }

    /// How many `lost` records of `session` the database holds.
    pub fn lost_records(&self, session: &str) -> u64 {
        self.conn
            .query_row(
                "SELECT count(*) FROM events WHERE session = ?1 AND action = 'lost'",
                params![session],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .unwrap_or(0)
    }

    /// The stored counts of `session`, if it has a row.
    pub fn counts(&self, session: &str) -> Option<Counts> {
        self.conn
            .query_row(
                "SELECT broker_dropped, client_dropped FROM sessions WHERE session = ?1",
                params![session],
                |r| {
                    Ok(Counts {
                        broker_dropped: r.get::<_, i64>(0)? as u64,
                        client_dropped: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_the_approval_columns_gains_them_on_open() {
        let dir = std::env::temp_dir().join(format!("guard-sqlite-alter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        let old: String = SCHEMA
            .lines()
            .filter(|l| !l.trim_start().starts_with("approval_"))
            .collect::<Vec<_>>()
            .join("\n");
        let cols = |c: &Connection| -> Vec<String> {
            let mut st = c
                .prepare("SELECT name FROM pragma_table_info('events')")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        {
            let c = connect(&path).unwrap();
            c.execute_batch(&old).unwrap();
            assert!(!cols(&c).iter().any(|n| n.starts_with("approval_")));
        }
        // Twice: the second open finds them present and must not fail.
        for _ in 0..2 {
            let db = Db::open(&path, "s").unwrap();
            let have = cols(&db.conn);
            for (name, _) in ADDED_COLUMNS {
                assert!(have.iter().any(|h| h == name), "{name} missing: {have:?}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
