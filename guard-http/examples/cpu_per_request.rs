//! CPU time (not wall-clock) per request, for machines where other work competes for the
//! cores and wall-clock benchmarks overstate the cost. Reads the thread's CPU clock.
//!
//! Run: `cargo run -p guard-http --profile bench --example cpu_per_request`

use std::hint::black_box;

use guard_http::{Config, Connection, Event, FeedResult, H2_PREFACE};

fn thread_cpu_ns() -> u128 {
    // /proc/thread-self/schedstat: first field is time spent on the CPU, in ns.
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn measure(name: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let t0 = thread_cpu_ns();
    let w0 = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    let cpu = (thread_cpu_ns() - t0) as f64 / f64::from(n);
    let wall = w0.elapsed().as_nanos() as f64 / f64::from(n);
    println!("{name:40} {:8.0} ns CPU/request   ({wall:.0} ns wall)", cpu);
}

fn main() {
    let json = br#"{"query":"mutation { volumeDelete(volumeId: \"vol-1\") }","variables":{}}"#;
    let mut req = format!(
        "POST /graphql HTTP/1.1\r\nHost: backboard.railway.app\r\nUser-Agent: node-fetch/1.0\r\n\
         Accept: application/json\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef\r\n\
         Content-Type: application/json\r\nAccept-Encoding: gzip, deflate, br\r\n\
         Connection: keep-alive\r\nContent-Length: {}\r\n\r\n",
        json.len()
    )
    .into_bytes();
    req.extend_from_slice(json);

    measure("h1 JSON POST, new connection", 200_000, || {
        let mut c = Connection::new();
        black_box(c.feed(black_box(&req)));
    });
    let mut c = Connection::http1(Config::default());
    let mut out = FeedResult::default();
    measure("h1 JSON POST, keep-alive", 200_000, || {
        out.events.clear();
        c.feed_into(black_box(&req), &mut out);
        assert!(matches!(out.events[..], [Event::Complete(_)]));
    });

    // curl's h2c POST from the fixtures: HEADERS (Huffman, literals) + DATA.
    let hex: String = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/curl_h2_graphql.hex"
    ))
    .unwrap_or_default()
    .split_whitespace()
    .collect();
    let s: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let mut frames = Vec::new();
    let mut setup = Vec::new();
    let mut i = H2_PREFACE.len();
    setup.extend_from_slice(&s[..i]);
    while i + 9 <= s.len() {
        let len = (usize::from(s[i]) << 16) | (usize::from(s[i + 1]) << 8) | usize::from(s[i + 2]);
        let f = &s[i..i + 9 + len];
        if s[i + 5..i + 9] == [0, 0, 0, 1] {
            frames.push(f.to_vec());
        } else if frames.is_empty() {
            setup.extend_from_slice(f);
        }
        i += 9 + len;
    }
    let mut frames: Vec<u8> = frames.concat();
    let mut c = Connection::http2(Config::default());
    c.feed(&setup);
    let mut sid = 1u32;
    measure("h2 JSON POST (curl HPACK), one connection", 200_000, || {
        let mut j = 0;
        while j + 9 <= frames.len() {
            let len = (usize::from(frames[j]) << 16)
                | (usize::from(frames[j + 1]) << 8)
                | usize::from(frames[j + 2]);
            frames[j + 5..j + 9].copy_from_slice(&sid.to_be_bytes());
            j += 9 + len;
        }
        sid += 2;
        out.events.clear();
        c.feed_into(black_box(&frames), &mut out);
        assert!(
            matches!(out.events[..], [Event::Complete(_)]),
            "{:?}",
            out.events
        );
    });
}
