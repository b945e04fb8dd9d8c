//! The loopback TLS GraphQL servers of the `tls_*` end-to-end tests: `tls/server.py` (HTTP/1.1)
//! and `tls/h2_server.mjs` (HTTP/2), each with a self-signed certificate made at start. A server
//! writes its port to `dir/port`, its store and the operations it received to
//! `dir/state.json`, and is killed when the `Server` is dropped.
#![allow(dead_code)]

use crate::hooks_support::{program_src, python, which};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `c` (a server that writes its port to `dir/port`) and waits for the port.
    pub fn spawn(mut c: Command, dir: &Path) -> Server {
        let child = c.stdin(Stdio::null()).spawn().expect("start server");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(dir.join("port"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Server {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// The Python HTTP/1.1 GraphQL server (`server.py`).
    pub fn h1(dir: &Path) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let mut c = Command::new(python().expect("python3 is required"));
        c.arg(program_src("tls/server.py")).arg(dir);
        Server::spawn(c, dir)
    }

    /// The node HTTP/2 GraphQL server (`h2_server.mjs`).
    pub fn h2(dir: &Path) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let node = which("node").expect("node is required");
        let mut c = Command::new(node);
        c.arg(program_src("tls/h2_server.mjs")).arg(dir);
        Server::spawn(c, dir)
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/graphql", self.port)
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// (volume ids, operations received)
    pub fn state(&self) -> (Vec<String>, Vec<String>) {
        let s = std::fs::read_to_string(self.dir.join("state.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let list = |k: &str, f: &dyn Fn(&serde_json::Value) -> String| {
            v[k].as_array().unwrap().iter().map(f).collect::<Vec<_>>()
        };
        (
            list("volumes", &|x| x["id"].as_str().unwrap().to_string()),
            list("ops", &|x| x.as_str().unwrap().to_string()),
        )
    }

    /// Lines of the HTTP/2 server's request log.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}
