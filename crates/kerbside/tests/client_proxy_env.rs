//! Issue 10, point 12: the proxy variables are read as curl reads them. Upper-case
//! `HTTP_PROXY` is never read (under CGI it is the client's `Proxy:` header);
//! `http_proxy`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY` and
//! `no_proxy`/`NO_PROXY` are. Every environment is given to curl (the reference)
//! and to `kerbside fetch`, and both must take the same road: straight to the
//! origin, or through the proxy.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{clean_env, text};

/// A plain-HTTP server that answers every request with `name` (the origin, or a
/// forward proxy that answers for every URL it is asked for).
fn answering(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(&stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.trim_end().is_empty() {
                        break;
                    }
                }
                let _ = write!(
                    &stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
            });
        }
    });
    port
}

const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Which server answered `url` for `program` run with exactly `env` as its proxy
/// variables.
fn road(mut cmd: Command, env: &[(&str, String)], url: &str) -> String {
    clean_env(&mut cmd);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(n, v)| (n, v))).arg(url);
    let out = cmd.output().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "{cmd:?}: {err}");
    body
}

fn curl() -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "20"]);
    cmd
}

fn fetch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    cmd.arg("fetch");
    cmd
}

/// Proxy variables and their values.
type Env<'a> = Vec<(&'a str, String)>;

#[test]
fn proxy_variables_are_read_as_curl_reads_them() {
    let origin = answering("origin");
    let proxy = format!("http://127.0.0.1:{}", answering("proxy"));
    let by_name = format!("http://localhost:{origin}/");
    let by_address = format!("http://127.0.0.1:{origin}/");
    let p = || proxy.clone();
    // (environment, URL, which server must answer)
    let cases: Vec<(Env, &str, &str)> = vec![
        // httpoxy: upper-case HTTP_PROXY alone is ignored.
        (vec![("HTTP_PROXY", p())], by_name.as_str(), "origin"),
        (vec![("http_proxy", p())], &by_name, "proxy"),
        // all_proxy, either case, for http:// too.
        (vec![("ALL_PROXY", p())], &by_name, "proxy"),
        (vec![("all_proxy", p())], &by_name, "proxy"),
        // NO_PROXY: the host, a domain with a leading dot, `*`, an address, CIDR.
        (
            vec![("http_proxy", p()), ("NO_PROXY", "localhost".into())],
            &by_name,
            "origin",
        ),
        (
            vec![("http_proxy", p()), ("no_proxy", ".localhost".into())],
            &by_name,
            "origin",
        ),
        (
            vec![("http_proxy", p()), ("no_proxy", "*".into())],
            &by_name,
            "origin",
        ),
        (
            vec![("http_proxy", p()), ("no_proxy", "127.0.0.1".into())],
            &by_address,
            "origin",
        ),
        (
            vec![("http_proxy", p()), ("no_proxy", "127.0.0.0/8".into())],
            &by_address,
            "origin",
        ),
        (
            vec![("http_proxy", p()), ("no_proxy", "other.example".into())],
            &by_name,
            "proxy",
        ),
        // Lower case wins: no_proxy names another host, NO_PROXY this one.
        (
            vec![
                ("http_proxy", p()),
                ("no_proxy", "other.example".into()),
                ("NO_PROXY", "localhost".into()),
            ],
            &by_name,
            "proxy",
        ),
    ];
    for (env, url, expected) in &cases {
        let by_curl = road(curl(), env, url);
        let by_kerbside = road(fetch(), env, url);
        assert_eq!(
            (by_curl.as_str(), by_kerbside.as_str()),
            (*expected, *expected),
            "{env:?} {url}"
        );
    }
}
