//! Messages between libguard and the broker, and their framing.
//!
//! A frame is `len: u32 LE` (bytes that follow), `version: u8`, then a postcard-encoded
//! [`Message`]. postcard (serde, stable documented wire format since 1.0, maintained) replaces
//! bincode, which is unmaintained since 2025. Encoding writes into a caller's buffer, so libguard
//! can frame an event on the stack without allocating. Decoding never panics on any bytes and
//! refuses frames above [`MAX_FRAME`].

use serde::{Deserialize, Serialize};

/// 2: `Event` gained the `approval_*` fields (appended; a version-1 peer would drop or misread
/// them, so the two refuse each other instead).
pub const WIRE_VERSION: u8 = 2;
/// Largest accepted frame body (version byte + payload).
pub const MAX_FRAME: usize = 64 * 1024;
/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// One audit event as libguard reports it. The broker adds `ts`, `session`, `agent`, `model`
/// and `host` from the session it belongs to when they are empty here.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub session: &'a str,
    pub pid: u32,
    pub ppid: u32,
    pub exe: &'a str,
    pub runtime: &'a str,
    pub cwd: &'a str,
    /// `read`, `write`, `delete`, `exec`, `connect`, `http`, `exec-unguardable`...
    pub action: &'a str,
    pub target: &'a str,
    pub decision: &'a str,
    /// What enforce mode decided when the session runs in monitor mode (else equal to decision).
    pub enforce_decision: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
    pub tags: &'a str,
    /// Events this process could not send before this one (queue full, broker away).
    pub dropped_before: u64,
    /// The id of the ask this event concludes; 0 when no ask was made. The broker's id when
    /// it numbered the ask (also after a timeout), else one libguard minted (bit 52 set).
    pub approval_id: u64,
    /// `approved`, `denied`, `timeout`, `unreachable`; empty when no ask was made.
    pub approval_answer: &'a str,
    /// Who answered, as the broker reported it (`alice (uid 1000)`, ...), or
    /// `timeout` when the client gave up waiting; empty when nobody answered.
    pub approval_who: &'a str,
    /// Milliseconds from sending the request to the reply (or to giving up), measured by the
    /// asking process.
    pub approval_latency_ms: u64,
}

/// What a connection is for, said once at its start. Guarded processes may skip it (a stream
/// that starts with an `Event` or an `AskRequest` is a guarded one).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A process of a guarded session (events, asks).
    Guarded,
    /// `guardctl pending/approve/deny/watch`: the broker checks the peer is outside every
    /// guarded tree before answering anything.
    Control,
}

/// An ask: the hooked call waits for the [`AskReply`] on the same (dedicated) connection.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AskRequest<'a> {
    /// Chosen by the broker (it tells the client in an early `pending` reply); the client
    /// sends 0.
    pub id: u64,
    pub session: &'a str,
    pub agent: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
    pub pid: u32,
    pub ppid: u32,
    pub exe: &'a str,
    pub runtime: &'a str,
    pub cwd: &'a str,
    /// How long the client waits before it denies on its own (the policy's `ask_timeout`).
    pub timeout_ms: u32,
}

/// The answer to an ask. `decision` is `allow` or `deny`. Before the answer, a broker that
/// holds the ask for a human first sends one reply with `decision` = `pending` and the ask's
/// `id`, so that a client that gives up (timeout) still knows the id `guardctl pending` showed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AskReply<'a> {
    pub id: u64,
    pub decision: &'a str,
    /// Who answered: `<user> (uid <uid>)` from the approving client's credentials, with
    /// ` remembered` or ` earlier denial` appended when an earlier answer applied; `broker`
    /// for the broker's own refusals.
    pub who: &'a str,
    /// Milliseconds between the request and the answer.
    pub latency_ms: u64,
}

/// A control command. `op` is `pending`, `approve` or `deny`; `remember` is only meaningful for
/// `approve` (approve later identical asks of the session without asking). For `pending`, a
/// non-zero `id` means "wait up to `id` milliseconds (at most 30 s) for an unanswered ask"
/// (`guardctl pending` and `watch` send 0: answer at once).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest<'a> {
    pub op: &'a str,
    pub id: u64,
    pub remember: bool,
}

/// The answer to a control command: `body` is JSON Lines for `pending`, a message otherwise.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ControlReply<'a> {
    pub ok: bool,
    pub body: &'a str,
}

/// Every message. New variants go at the end only: postcard encodes the variant index, so
/// existing indices must not move within one `WIRE_VERSION`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    #[serde(borrow)]
    Event(Event<'a>),
    Hello(Role),
    #[serde(borrow)]
    AskRequest(AskRequest<'a>),
    #[serde(borrow)]
    AskReply(AskReply<'a>),
    #[serde(borrow)]
    ControlRequest(ControlRequest<'a>),
    #[serde(borrow)]
    ControlReply(ControlReply<'a>),
    /// The kernel layer (see [`Supervise`]); answered with a [`ControlReply`].
    #[serde(borrow)]
    Supervise(Supervise<'a>),
}

/// A guarded process hands the broker a seccomp user-notification listener (the kernel layer,
/// `docs/kernel-layer.md`). Two frames on one dedicated connection, each answered with a
/// [`ControlReply`]: `stage` = `probe` (can this broker supervise? `ok` false: it cannot, and
/// the process keeps the in-process layer only; sent before any filter exists), then `listener`,
/// sent with `sendmsg` and the listener fd as `SCM_RIGHTS` ancillary data on its first byte;
/// `ok` true once the broker services it. Added at the end of [`Message`] within wire version 2:
/// a broker that predates it drops the connection, which the process reads as "cannot".
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Supervise<'a> {
    pub stage: &'a str,
    pub session: &'a str,
    /// The process that installed the filter (its descendants inherit it).
    pub pid: u32,
    pub exe: &'a str,
    pub runtime: &'a str,
    /// Why it was installed: `go-start` or `static-exec`.
    pub why: &'a str,
    /// What runs under it: the static program about to be exec'd, or `exe` itself.
    pub target: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not enough bytes yet; read more.
    Incomplete,
    TooLarge(usize),
    BadVersion(u8),
    Decode,
    BufferTooSmall,
}

/// Encodes `msg` as one frame into `buf`, returning the frame's length.
pub fn encode_frame(msg: &Message<'_>, buf: &mut [u8]) -> Result<usize, FrameError> {
    if buf.len() < HEADER_LEN + 1 {
        return Err(FrameError::BufferTooSmall);
    }
    let limit = buf.len().min(HEADER_LEN + MAX_FRAME);
    let body_len = {
        let (_, rest) = buf[..limit].split_at_mut(HEADER_LEN);
        rest[0] = WIRE_VERSION;
        let used = postcard::to_slice(msg, &mut rest[1..])
            .map_err(|_| FrameError::BufferTooSmall)?
            .len();
        used + 1
    };
    buf[..HEADER_LEN].copy_from_slice(&(body_len as u32).to_le_bytes());
    Ok(HEADER_LEN + body_len)
}

/// Decodes the first frame in `buf`: the message and the bytes it used.
pub fn decode_frame(buf: &[u8]) -> Result<(Message<'_>, usize), FrameError> {
    let Some(len_bytes) = buf.get(..HEADER_LEN) else {
        return Err(FrameError::Incomplete);
    };
    let mut len = [0u8; HEADER_LEN];
    len.copy_from_slice(len_bytes);
    let body_len = u32::from_le_bytes(len) as usize;
    if body_len == 0 || body_len > MAX_FRAME {
        return Err(FrameError::TooLarge(body_len));
    }
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + body_len) else {
        return Err(FrameError::Incomplete);
    };
    if body[0] != WIRE_VERSION {
        return Err(FrameError::BadVersion(body[0]));
    }
    let msg = postcard::from_bytes(&body[1..]).map_err(|_| FrameError::Decode)?;
    Ok((msg, HEADER_LEN + body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event<'static> {
        Event {
            session: "s1",
            pid: 42,
            ppid: 1,
            exe: "/usr/bin/cat",
            runtime: "native",
            cwd: "/tmp",
            action: "read",
            target: "/home/u/.ssh/id_ed25519",
            decision: "deny",
            enforce_decision: "deny",
            rule: "ssh-private-keys",
            reason: "an agent never needs SSH private keys",
            tags: "OWASP-LLM06",
            dropped_before: 0,
            approval_id: 7,
            approval_answer: "approved",
            approval_who: "guardctl pid 9",
            approval_latency_ms: 250,
        }
    }

    #[test]
    fn supervise_round_trips() {
        let m = Message::Supervise(Supervise {
            stage: "listener",
            session: "s1",
            pid: 7,
            exe: "/x/app",
            runtime: "go",
            why: "go-start",
            target: "/x/app",
        });
        let mut buf = [0u8; 256];
        let n = encode_frame(&m, &mut buf).unwrap();
        assert_eq!(decode_frame(&buf[..n]).unwrap(), (m, n));
    }

    #[test]
    fn frame_round_trip() {
        let mut buf = [0u8; 1024];
        let n = encode_frame(&Message::Event(sample()), &mut buf).unwrap();
        let (msg, used) = decode_frame(&buf[..n]).unwrap();
        assert_eq!(used, n);
        assert_eq!(msg, Message::Event(sample()));
        assert_eq!(decode_frame(&buf[..n - 1]), Err(FrameError::Incomplete));
    }

    #[test]
    fn hostile_frames_are_refused() {
        assert_eq!(
            decode_frame(&[0xff, 0xff, 0xff, 0x7f, 1]).unwrap_err(),
            FrameError::TooLarge(0x7fff_ffff)
        );
        assert_eq!(
            decode_frame(&[2, 0, 0, 0, 9, 0]).unwrap_err(),
            FrameError::BadVersion(9)
        );
        assert_eq!(
            decode_frame(&[2, 0, 0, 0, WIRE_VERSION, 200]).unwrap_err(),
            FrameError::Decode
        );
        // A frame from a version-1 peer (Event without the approval fields) is refused as such.
        let mut old = [0u8; 1024];
        let n = encode_frame(&Message::Event(sample()), &mut old).unwrap();
        old[HEADER_LEN] = 1;
        assert_eq!(decode_frame(&old[..n]), Err(FrameError::BadVersion(1)));
        let mut small = [0u8; 8];
        assert_eq!(
            encode_frame(&Message::Event(sample()), &mut small),
            Err(FrameError::BufferTooSmall)
        );
    }

    #[test]
    fn ask_messages_round_trip() {
        let msgs = [
            Message::Hello(Role::Control),
            Message::AskRequest(AskRequest {
                id: 0,
                session: "s",
                agent: "a",
                action: "exec",
                target: "git push -f",
                rule: "git-force-push",
                reason: "r",
                pid: 7,
                ppid: 1,
                exe: "/usr/bin/git",
                runtime: "native",
                cwd: "/w",
                timeout_ms: 1000,
            }),
            Message::AskReply(AskReply {
                id: 9,
                decision: "allow",
                who: "user",
                latency_ms: 3,
            }),
            Message::ControlRequest(ControlRequest {
                op: "approve",
                id: 9,
                remember: true,
            }),
            Message::ControlReply(ControlReply {
                ok: false,
                body: "no",
            }),
        ];
        let mut buf = [0u8; 512];
        for m in msgs {
            let n = encode_frame(&m, &mut buf).unwrap();
            assert_eq!(decode_frame(&buf[..n]).unwrap(), (m, n));
        }
    }

    /// A small deterministic generator (xorshift), so the fuzz loop needs no extra crate and
    /// every failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn decoder_survives_random_truncated_and_mutated_frames() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut good = [0u8; 1024];
        let n = encode_frame(&Message::Event(sample()), &mut good).unwrap();
        let mut decoded_ok = 0;
        for round in 0..200_000u32 {
            let mut buf = [0u8; 600];
            let len = (rng.next() % buf.len() as u64) as usize;
            match round % 4 {
                // Pure noise.
                0 => buf[..len].iter_mut().for_each(|b| *b = rng.next() as u8),
                // A valid frame with a few flipped bytes.
                1 => {
                    buf[..n].copy_from_slice(&good[..n]);
                    for _ in 0..1 + rng.next() % 4 {
                        let i = (rng.next() % n as u64) as usize;
                        buf[i] ^= rng.next() as u8 | 1;
                    }
                }
                // A truncated valid frame.
                2 => buf[..len.min(n)].copy_from_slice(&good[..len.min(n)]),
                // A huge or odd length with a valid-looking body.
                _ => {
                    buf[..n].copy_from_slice(&good[..n]);
                    buf[..4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                }
            }
            let take = if round % 4 == 1 { n } else { len };
            if let Ok((_, used)) = decode_frame(&buf[..take]) {
                assert!(used <= take);
                decoded_ok += 1;
            }
        }
        // Some mutations land in string bytes and still decode: the loop exercised both paths.
        assert!(decoded_ok > 0);
    }
}
