//! The ACTION syntax of `guardctl policy explain` and of policy tests, and the owned actions it
//! produces: `read PATH`, `write PATH`, `delete PATH`, `exec -- ARGV...`, `connect HOST:PORT`,
//! `http METHOD URL [--body-file F | --body TEXT]`. Also the POSIX-like word splitting of
//! exec examples.

use std::net::IpAddr;

use guard_proto::{Action, FileAccess};

/// An action that owns its data; [`OwnedAction::as_action`] borrows it for evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedAction {
    File {
        path: String,
        access: FileAccess,
    },
    Exec {
        argv: Vec<String>,
        program: Option<String>,
    },
    Connect {
        host: Option<String>,
        ip: Option<IpAddr>,
        port: u16,
    },
    Http {
        method: String,
        host: String,
        path: String,
        body: Vec<u8>,
    },
}

impl OwnedAction {
    pub fn as_action(&self) -> Action<'_> {
        match self {
            OwnedAction::File { path, access } => Action::File {
                path: path.as_bytes(),
                access: *access,
            },
            OwnedAction::Exec { argv, program } => Action::Exec {
                argv,
                program: program.as_deref().map(str::as_bytes),
            },
            OwnedAction::Connect { host, ip, port } => Action::Connect {
                host: host.as_deref().map(str::as_bytes),
                ip: *ip,
                port: *port,
            },
            OwnedAction::Http {
                method,
                host,
                path,
                body,
            } => Action::Http {
                method: method.as_bytes(),
                host: host.as_bytes(),
                path: path.as_bytes(),
                body,
            },
        }
    }

    /// The target as audit events and `explain` print it.
    pub fn target(&self) -> String {
        match self {
            OwnedAction::File { path, .. } => path.clone(),
            OwnedAction::Exec { argv, .. } => argv.join(" "),
            OwnedAction::Connect { host, ip, port } => match (host, ip) {
                (Some(h), _) => format!("{h}:{port}"),
                (None, Some(IpAddr::V6(v6))) => format!("[{v6}]:{port}"),
                (None, Some(ip)) => format!("{ip}:{port}"),
                (None, None) => format!("?:{port}"),
            },
            OwnedAction::Http {
                method, host, path, ..
            } => format!("{method} https://{host}{path}"),
        }
    }
}

/// [`parse_action_in`] with `HOME` and the current directory of this process.
pub fn parse_action(words: &[String]) -> Result<OwnedAction, String> {
    let home = std::env::var("HOME").unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "/".into());
    parse_action_in(words, &home, &cwd)
}

/// Parses an ACTION. `~` expands to `home`; relative paths become absolute against `cwd`;
/// paths are normalised lexically (no `.`, `..` or `//`).
pub fn parse_action_in(words: &[String], home: &str, cwd: &str) -> Result<OwnedAction, String> {
    let usage = "expected an ACTION: read PATH | write PATH | delete PATH | exec -- ARGV... | connect HOST:PORT | http METHOD URL [--body-file F | --body TEXT]";
    let Some((verb, rest)) = words.split_first() else {
        return Err(usage.into());
    };
    match verb.as_str() {
        "read" | "write" | "delete" => {
            let [path] = rest else {
                return Err(format!("`{verb}` takes exactly one PATH"));
            };
            let access = FileAccess::parse(verb).ok_or(usage)?;
            Ok(OwnedAction::File {
                path: absolute_path(&expand_home(path, home), cwd),
                access,
            })
        }
        "exec" => {
            let argv: Vec<String> = match rest.split_first() {
                Some((dd, a)) if dd == "--" => a.to_vec(),
                _ => rest.to_vec(),
            };
            if argv.is_empty() {
                return Err("`exec` needs a command: exec -- PROGRAM ARGS...".into());
            }
            // An explicit path resolves against cwd, as exec would; a bare name is left to the
            // basename rules (no PATH search here).
            let program = argv[0]
                .contains('/')
                .then(|| absolute_path(&expand_home(&argv[0], home), cwd));
            Ok(OwnedAction::Exec { argv, program })
        }
        "connect" => {
            let [target] = rest else {
                return Err("`connect` takes exactly one HOST:PORT".into());
            };
            parse_connect_target(target)
        }
        "http" => {
            let (method, url, more) = match rest {
                [m, u, more @ ..] => (m, u, more),
                _ => return Err("`http` needs METHOD URL".into()),
            };
            let body = match more {
                [] => Vec::new(),
                [flag, f] if flag == "--body-file" => {
                    std::fs::read(absolute_path(&expand_home(f, home), cwd))
                        .map_err(|e| format!("--body-file {f}: {e}"))?
                }
                [flag, t] if flag == "--body" => t.as_bytes().to_vec(),
                _ => return Err("after METHOD URL: --body-file F or --body TEXT".into()),
            };
            http_action(method, url, body)
        }
        other => Err(format!("unknown action `{other}`; {usage}")),
    }
}

fn expand_home(p: &str, home: &str) -> String {
    if p == "~" {
        home.to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else {
        p.to_string()
    }
}

/// Makes `p` absolute against `cwd` and normalises it lexically.
pub fn absolute_path(p: &str, cwd: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{cwd}/{p}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `host:port`, `1.2.3.4:80`, `[fd00::1]:443`.
pub(crate) fn parse_connect_target(t: &str) -> Result<OwnedAction, String> {
    let bad = || format!("`{t}` is not HOST:PORT (IPv6 as [ADDR]:PORT)");
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        t.rsplit_once(':').ok_or_else(bad)?
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => OwnedAction::Connect {
            host: None,
            ip: Some(ip),
            port,
        },
        Err(_) => OwnedAction::Connect {
            host: Some(host.trim_end_matches('.').to_ascii_lowercase()),
            ip: None,
            port,
        },
    })
}

fn http_action(method: &str, url: &str, body: Vec<u8>) -> Result<OwnedAction, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map(|(h, _)| h.trim_start_matches('['))
            .unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok(OwnedAction::Http {
        method: method.to_ascii_uppercase(),
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        path,
        body,
    })
}

/// An http example: `METHOD URL` then, after one space, the body.
pub(crate) fn parse_http_example(text: &str) -> Result<OwnedAction, String> {
    let text = text.trim_start();
    let (method, rest) = text
        .split_once(' ')
        .ok_or("an http example is `METHOD URL [BODY]`")?;
    let rest = rest.trim_start();
    let (url, body) = match rest.split_once(' ') {
        Some((u, b)) => (u, b),
        None => (rest, ""),
    };
    http_action(method, url, body.as_bytes().to_vec())
}

/// Splits a command line like a POSIX shell: quotes and backslashes, no expansion.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed ' in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unclosed \" in `{s}`")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed \" in `{s}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(x) => cur.push(x),
                    None => cur.push('\\'),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splitting() {
        assert_eq!(
            shell_split(r#"git commit -m 'push --force' "a \"b\"" c\ d"#),
            Ok(w(&[
                "git",
                "commit",
                "-m",
                "push --force",
                "a \"b\"",
                "c d"
            ]))
        );
        assert_eq!(shell_split("''"), Ok(w(&[""])));
        assert!(shell_split("'open").is_err());
    }

    #[test]
    fn actions() {
        assert_eq!(
            parse_action_in(&w(&["read", "~/.ssh/id_rsa"]), "/home/a", "/w"),
            Ok(OwnedAction::File {
                path: "/home/a/.ssh/id_rsa".into(),
                access: FileAccess::Read
            })
        );
        assert_eq!(
            parse_action_in(&w(&["delete", "x/../y/./z"]), "/home/a", "/w"),
            Ok(OwnedAction::File {
                path: "/w/y/z".into(),
                access: FileAccess::Delete
            })
        );
        assert_eq!(
            parse_action_in(&w(&["exec", "--", "git", "push"]), "/h", "/w"),
            Ok(OwnedAction::Exec {
                argv: w(&["git", "push"]),
                program: None
            })
        );
        assert_eq!(
            parse_action_in(&w(&["connect", "[fd00::1]:443"]), "/h", "/w"),
            Ok(OwnedAction::Connect {
                host: None,
                ip: "fd00::1".parse().ok(),
                port: 443
            })
        );
        assert_eq!(
            parse_action_in(&w(&["connect", "Metadata.Google.Internal:80"]), "/h", "/w"),
            Ok(OwnedAction::Connect {
                host: Some("metadata.google.internal".into()),
                ip: None,
                port: 80
            })
        );
        assert_eq!(
            parse_action_in(
                &w(&[
                    "http",
                    "post",
                    "https://API.x.com:8443/graphql?a=1",
                    "--body",
                    "{}"
                ]),
                "/h",
                "/w"
            ),
            Ok(OwnedAction::Http {
                method: "POST".into(),
                host: "api.x.com".into(),
                path: "/graphql?a=1".into(),
                body: b"{}".to_vec()
            })
        );
        assert!(parse_action_in(&w(&["read"]), "/h", "/w").is_err());
        assert!(parse_action_in(&w(&["fly", "x"]), "/h", "/w").is_err());
        assert!(parse_action_in(&w(&["connect", "nohost"]), "/h", "/w").is_err());
        assert!(parse_action_in(&w(&["http", "GET", "ftp://x"]), "/h", "/w").is_err());
    }
}
