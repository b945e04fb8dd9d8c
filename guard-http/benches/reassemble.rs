//! Per-request cost of a small JSON POST over HTTP/1.1 and HTTP/2 (budget: a few µs of the
//! 50 µs end-to-end), and throughput of a 100 MB body streamed in 16 KiB writes.
//!
//! Run: `cargo bench -p guard-http --bench reassemble`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use guard_http::{BodyMode, Config, Connection, Event, FeedResult, H2_PREFACE};

const JSON: &[u8] = br#"{"query":"mutation { volumeDelete(volumeId: \"vol-1\") }","variables":{}}"#;

fn h1_request() -> Vec<u8> {
    let mut r = format!(
        "POST /graphql HTTP/1.1\r\nHost: backboard.railway.app\r\nUser-Agent: node-fetch/1.0\r\n\
         Accept: application/json\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef\r\n\
         Content-Type: application/json\r\nAccept-Encoding: gzip, deflate, br\r\n\
         Connection: keep-alive\r\nContent-Length: {}\r\n\r\n",
        JSON.len()
    )
    .into_bytes();
    r.extend_from_slice(JSON);
    r
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Reads a committed fixture (curl's own HPACK output: Huffman strings, static table).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let hex: String = std::fs::read_to_string(path)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

/// Splits curl's h2c GraphQL POST into the connection setup and the request's frames.
fn h2_curl_request() -> (Vec<u8>, Vec<u8>) {
    let s = fixture("curl_h2_graphql");
    let mut i = H2_PREFACE.len();
    let mut setup_end = i;
    while i + 9 <= s.len() {
        let len = (usize::from(s[i]) << 16) | (usize::from(s[i + 1]) << 8) | usize::from(s[i + 2]);
        if s[i + 3] == 0x1 && setup_end == H2_PREFACE.len() {
            setup_end = i;
        }
        i += 9 + len;
    }
    (s[..setup_end].to_vec(), s[setup_end..].to_vec())
}

fn set_stream_ids(frames: &mut [u8], sid: u32) {
    let mut i = 0;
    while i + 9 <= frames.len() {
        let len = (usize::from(frames[i]) << 16)
            | (usize::from(frames[i + 1]) << 8)
            | usize::from(frames[i + 2]);
        // Connection-level frames (SETTINGS ACK, WINDOW_UPDATE on 0) stay on stream 0.
        if frames[i + 5..i + 9] != [0, 0, 0, 0] {
            frames[i + 5..i + 9].copy_from_slice(&sid.to_be_bytes());
        }
        i += 9 + len;
    }
}

fn per_request(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_request");
    let req = h1_request();
    g.throughput(Throughput::Elements(1));
    g.bench_function("h1_json_post_new_connection", |b| {
        b.iter(|| {
            let mut conn = Connection::new();
            black_box(conn.feed(black_box(&req)))
        })
    });
    g.bench_function("h1_json_post_keepalive", |b| {
        let mut conn = Connection::http1(Config::default());
        let mut out = FeedResult::default();
        b.iter(|| {
            out.events.clear();
            conn.feed_into(black_box(&req), &mut out);
            assert!(matches!(out.events[..], [Event::Complete(_)]));
        })
    });
    let (setup, frames) = h2_curl_request();
    g.bench_function("h2_json_post_curl_hpack", |b| {
        let mut conn = Connection::http2(Config::default());
        conn.feed(&setup);
        let mut frames = frames.clone();
        let mut sid = 1u32;
        let mut out = FeedResult::default();
        b.iter(|| {
            if sid > 0x3fff_ffff {
                conn = Connection::http2(Config::default());
                conn.feed(&setup);
                sid = 1;
            }
            set_stream_ids(&mut frames, sid);
            sid += 2;
            out.events.clear();
            conn.feed_into(black_box(&frames), &mut out);
            assert!(
                matches!(out.events[..], [Event::Complete(_)]),
                "{:?}",
                out.events
            );
        })
    });
    g.finish();
}

const TOTAL: usize = 100 * 1000 * 1000;
const WRITE: usize = 16 * 1024;

fn stream_h1(config: Config, chunked: bool) {
    let mut conn = Connection::http1(config);
    let body = vec![b'x'; WRITE];
    if chunked {
        conn.feed(b"PUT /big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        // One chunk per write, its size line and CRLF in the same write, as curl does.
        let mut w = format!("{:x}\r\n", WRITE - 16).into_bytes();
        w.extend_from_slice(&body[..WRITE - 16]);
        w.extend_from_slice(b"\r\n");
        let mut sent = 0;
        while sent < TOTAL {
            black_box(conn.feed(&w));
            sent += w.len();
        }
        black_box(conn.feed(b"0\r\n\r\n"));
    } else {
        let head = format!("PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: {TOTAL}\r\n\r\n");
        conn.feed(head.as_bytes());
        let mut left = TOTAL;
        while left > 0 {
            let n = left.min(WRITE);
            black_box(conn.feed(&body[..n]));
            left -= n;
        }
    }
    assert!(conn.failed().is_none());
}

/// DATA frames of 16 KiB payload, so frame boundaries fall anywhere inside the 16 KiB writes.
fn stream_h2(config: Config, frames: &[u8], head: &[u8]) {
    let mut conn = Connection::http2(config);
    conn.feed(head);
    let mut sent = 0;
    while sent < TOTAL {
        for w in frames.chunks(WRITE) {
            black_box(conn.feed(w));
        }
        sent += frames.len();
    }
    assert!(conn.failed().is_none());
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("body_100MB_16KiB_writes");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    let capture = Config::default();
    let head_only = Config {
        body: BodyMode::HeadOnly,
        ..Config::default()
    };
    g.bench_function("h1_content_length_capture_1MiB_cap", |b| {
        b.iter(|| stream_h1(capture, false))
    });
    g.bench_function("h1_content_length_head_only", |b| {
        b.iter(|| stream_h1(head_only, false))
    });
    g.bench_function("h1_chunked_capture_1MiB_cap", |b| {
        b.iter(|| stream_h1(capture, true))
    });

    let mut head = H2_PREFACE.to_vec();
    head.extend(frame(0x4, 0, 0, &[]));
    // :method PUT (literal, indexed name 2), :scheme https, :path /, :authority h.
    head.extend(frame(
        0x1,
        0x4,
        1,
        &[0x02, 3, b'P', b'U', b'T', 0x87, 0x84, 0x01, 1, b'h'],
    ));
    let payload = vec![b'y'; 16384];
    let mut frames = Vec::new();
    for _ in 0..64 {
        frames.extend(frame(0x0, 0, 1, &payload));
    }
    g.bench_function("h2_data_capture_1MiB_cap", |b| {
        b.iter(|| stream_h2(capture, &frames, &head))
    });
    g.bench_function("h2_data_head_only", |b| {
        b.iter(|| stream_h2(head_only, &frames, &head))
    });
    g.finish();

    // A body within the cap is captured whole: this is the copy the caller pays for.
    let mut g = c.benchmark_group("body_1MiB_captured_16KiB_writes");
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("h1_content_length", |b| {
        let head = format!(
            "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
            1 << 20
        );
        let body = vec![b'x'; WRITE];
        b.iter(|| {
            let mut conn = Connection::http1(capture);
            conn.feed(head.as_bytes());
            let mut events = 0;
            for _ in 0..(1 << 20) / WRITE {
                events += conn.feed(&body).events.len();
            }
            assert_eq!(events, 1);
        })
    });
    g.finish();

    // For scale: the same bytes copied once with memcpy.
    let mut g = c.benchmark_group("reference");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function("memcpy_100MB_16KiB", |b| {
        let src = vec![1u8; WRITE];
        let mut dst = vec![0u8; WRITE];
        b.iter(|| {
            let mut left = TOTAL;
            while left > 0 {
                let n = left.min(WRITE);
                dst[..n].copy_from_slice(black_box(&src[..n]));
                black_box(&dst);
                left -= n;
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = per_request, throughput
}
criterion_main!(benches);
