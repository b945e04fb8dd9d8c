//! The audit event as stored (one JSON object per line) and RFC 3339 time helpers.
//!
//! The broker builds an [`AuditEvent`] from each `wire::Event` a guarded process sends, adding
//! what the process cannot be trusted with or does not know: the timestamp, the session's
//! identity (session, agent, model, host). Field order in the struct is the order in the file.

use guard_proto::wire;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who the session is: stamped on every event the broker writes.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub session: String,
    pub agent: String,
    pub model: String,
    pub host: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub ts: String,
    pub session: String,
    pub agent: String,
    pub model: String,
    pub host: String,
    pub pid: u32,
    pub ppid: u32,
    pub exe: String,
    pub runtime: String,
    pub cwd: String,
    pub action: String,
    pub target: String,
    pub decision: String,
    pub rule: Option<String>,
    pub reason: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce_decision: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_before: u64,
    /// Present on events that concluded an ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// `spill` when the event reached the broker through the process's spill file (the broker
    /// was dead or not reading when it happened); absent for events received live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// `seccomp` for events the kernel layer's supervisor wrote (`broker/seccomp.rs`); absent
    /// for the in-process layer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// How an ask was answered, as the asking process saw it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The broker's ask id; 0 when the broker never replied (timeout, unreachable).
    pub id: u64,
    /// `approved`, `denied`, `timeout` or `unreachable`.
    pub answer: String,
    /// Who answered: `<user> (uid <uid>)` for a human (the approving client's credentials),
    /// with ` remembered` / ` earlier denial` appended when an earlier answer of that human
    /// applied; `timeout` when the asking process gave up; `broker` for the broker's own
    /// refusals; empty when no broker could be asked.
    pub who: String,
    /// From sending the request to the reply (or giving up), measured by the asking process.
    pub latency_ms: u64,
    /// The approving human's uid (from `SO_PEERCRED` of the approve/deny/watch connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// That uid's user name (from the password database; the uid in decimal if it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The `(uid, user)` inside a `who` written by the broker (`alice (uid 1000)[ suffix]`).
pub fn parse_who(who: &str) -> Option<(u32, String)> {
    let open = who.rfind(" (uid ")?;
    let rest = &who[open + 6..];
    let close = rest.find(')')?;
    let uid = rest[..close].parse().ok()?;
    let user = &who[..open];
    (!user.is_empty()).then(|| (uid, user.to_string()))
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl AuditEvent {
    /// Builds the stored event. The session fields always come from the broker: the socket is
    /// private to one session, and a process must not be able to file events under another.
    pub fn from_wire(ev: &wire::Event<'_>, info: &SessionInfo, now: SystemTime) -> AuditEvent {
        let tags = ev
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        let enforce_decision = (!ev.enforce_decision.is_empty()
            && ev.enforce_decision != ev.decision)
            .then(|| ev.enforce_decision.to_string());
        AuditEvent {
            ts: rfc3339_ms(now),
            session: info.session.clone(),
            agent: info.agent.clone(),
            model: info.model.clone(),
            host: info.host.clone(),
            pid: ev.pid,
            ppid: ev.ppid,
            exe: ev.exe.to_string(),
            runtime: ev.runtime.to_string(),
            cwd: ev.cwd.to_string(),
            action: ev.action.to_string(),
            target: if ev.action.starts_with("exec") {
                hide_env_assignments(ev.target)
            } else {
                ev.target.to_string()
            },
            decision: ev.decision.to_string(),
            rule: (!ev.rule.is_empty()).then(|| ev.rule.to_string()),
            reason: ev.reason.to_string(),
            tags,
            enforce_decision,
            dropped_before: ev.dropped_before,
            approval: (!ev.approval_answer.is_empty()).then(|| {
                let human = parse_who(ev.approval_who);
                Approval {
                    id: ev.approval_id,
                    answer: ev.approval_answer.to_string(),
                    who: ev.approval_who.to_string(),
                    latency_ms: ev.approval_latency_ms,
                    uid: human.as_ref().map(|h| h.0),
                    user: human.map(|h| h.1),
                }
            }),
            delivery: None,
            layer: None,
        }
    }
}

/// Replaces the value of every `NAME=value` word of a command line (`VAR=x cmd`, `env -i
/// TOKEN=... cmd`) with `<redacted>`: those are environment variable values, which audit events
/// never carry. Only upper-case identifiers count, the convention for environment variables, so
/// `--opt=x`, `user.name=x` and `key=value` arguments stay readable.
pub fn hide_env_assignments(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for (i, word) in target.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.split_once('=') {
            Some((name, value))
                if !value.is_empty()
                    && name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                out.push_str(name);
                out.push_str("=<redacted>");
            }
            _ => out.push_str(word),
        }
    }
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-22T02:35:12.123Z`.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64;
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Compact UTC stamp for session ids: `20261122T023512`.
pub fn compact_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `t`/space accepted as separator;
/// a bare date means midnight UTC) into milliseconds since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let day_ms = days_from_civil(y, mo as u32, d as u32) * 86_400_000;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_ms = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let off = (oh * 60 + om) * 60_000;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    Some(day_ms + ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms - offset_ms)
}

/// This machine's host name (empty if it cannot be read).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success when
    // the name fits, and we search for the NUL within the buffer anyway.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0i64, 951_782_400_123, 1_763_778_912_007, 4_102_444_799_999] {
            let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
            let s = rfc3339_ms(t);
            assert_eq!(parse_rfc3339_ms(&s), Some(ms), "{s}");
        }
        assert_eq!(
            rfc3339_ms(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            compact_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229T000000"
        );
    }

    #[test]
    fn rfc3339_offsets_and_garbage() {
        let z = parse_rfc3339_ms("2026-11-22T02:00:00Z").unwrap();
        assert_eq!(parse_rfc3339_ms("2026-11-22T03:30:00+01:30"), Some(z));
        assert_eq!(parse_rfc3339_ms("2026-11-22T00:00:00-02:00"), Some(z));
        assert_eq!(parse_rfc3339_ms("2026-11-22T02:00:00.5Z"), Some(z + 500));
        assert_eq!(parse_rfc3339_ms("2026-11-22"), Some(z - 2 * 3_600_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-22T02:00",
            "2026-11-22T02:00:00",
            "2026-11-22T02:00:00.Z",
            "2026-11-22T02:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn env_values_never_reach_the_audit() {
        assert_eq!(
            hide_env_assignments("env -i AWS_SECRET_ACCESS_KEY=abc PATH=/bin sh -c x=1"),
            "env -i AWS_SECRET_ACCESS_KEY=<redacted> PATH=<redacted> sh -c x=1"
        );
        assert_eq!(
            hide_env_assignments("git -c user.name=me commit --author=A=B"),
            "git -c user.name=me commit --author=A=B"
        );
        assert_eq!(hide_env_assignments("make CC="), "make CC=");
    }

    #[test]
    fn wire_event_gets_session_identity_and_null_rule() {
        let ev = wire::Event {
            session: "forged",
            pid: 7,
            ppid: 1,
            exe: "/bin/cat",
            runtime: "native",
            cwd: "/w",
            action: "read",
            target: "/w/a",
            decision: "allow",
            enforce_decision: "deny",
            rule: "",
            reason: "",
            tags: "A, B,,",
            dropped_before: 3,
            approval_id: 0,
            approval_answer: "",
            approval_who: "",
            approval_latency_ms: 0,
        };
        let info = SessionInfo {
            session: "real".into(),
            agent: "a".into(),
            model: "m".into(),
            host: "h".into(),
        };
        let out = AuditEvent::from_wire(&ev, &info, UNIX_EPOCH);
        assert_eq!(out.session, "real");
        assert_eq!(out.rule, None);
        assert_eq!(out.tags, vec!["A", "B"]);
        assert_eq!(out.enforce_decision.as_deref(), Some("deny"));
        let json: serde_json::Value = serde_json::to_value(&out).unwrap();
        assert!(json["rule"].is_null());
        assert_eq!(json["dropped_before"], 3);
        let same = wire::Event {
            enforce_decision: "allow",
            dropped_before: 0,
            ..ev
        };
        let json = serde_json::to_value(AuditEvent::from_wire(&same, &info, UNIX_EPOCH)).unwrap();
        assert!(json.get("enforce_decision").is_none() && json.get("dropped_before").is_none());
        assert!(json.get("approval").is_none());
        let asked = wire::Event {
            approval_id: 12,
            approval_answer: "denied",
            approval_who: "guardctl pid 5",
            approval_latency_ms: 321,
            ..ev
        };
        let json = serde_json::to_value(AuditEvent::from_wire(&asked, &info, UNIX_EPOCH)).unwrap();
        assert_eq!(
            json["approval"],
            serde_json::json!({"id": 12, "answer": "denied", "who": "guardctl pid 5", "latency_ms": 321})
        );
        let human = wire::Event {
            approval_who: "al ice (uid 1000) remembered",
            ..asked
        };
        let json = serde_json::to_value(AuditEvent::from_wire(&human, &info, UNIX_EPOCH)).unwrap();
        assert_eq!(json["approval"]["uid"], 1000);
        assert_eq!(json["approval"]["user"], "al ice");
        assert_eq!(parse_who("timeout"), None);
        assert_eq!(parse_who(" (uid 7)"), None);
        assert_eq!(parse_who("x (uid nope)"), None);
    }
}
