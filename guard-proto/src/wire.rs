//! Messages between libguard and the broker, and their framing.
//!
//! A frame is `len: u32 LE` (bytes that follow), `version: u8`, then a postcard-encoded
//! [`Message`]. postcard (serde, stable documented wire format since 1.0, maintained) replaces
//! bincode, which is unmaintained since 2025. Encoding writes into a caller's buffer, so libguard
//! can frame an event on the stack without allocating. Decoding never panics on any bytes and
//! refuses frames above [`MAX_FRAME`].

use serde::{Deserialize, Serialize};

pub const WIRE_VERSION: u8 = 1;
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
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    #[serde(borrow)]
    Event(Event<'a>),
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
        }
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
            decode_frame(&[2, 0, 0, 0, 1, 200]).unwrap_err(),
            FrameError::Decode
        );
        let mut small = [0u8; 8];
        assert_eq!(
            encode_frame(&Message::Event(sample()), &mut small),
            Err(FrameError::BufferTooSmall)
        );
    }
}
