//! Issue 10, point 11: a self-signed certificate given with `--cacert` is trusted as
//! itself, as curl does, and a certificate that does not verify is refused in words
//! that say why. The certificates are made by `openssl req -x509` (which marks them
//! `CA:TRUE`), the server is `openssl s_server`, and curl, given the same files,
//! is the reference.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{clean_env, text};

/// A certificate and its key, made by `openssl req -x509` for `names`
/// (`DNS:localhost,IP:127.0.0.1`), under `faketime` when `when` is given.
struct Cert {
    cert: PathBuf,
    key: PathBuf,
}

fn openssl_cert(dir: &Path, file: &str, cn: &str, san: &str, when: Option<&str>) -> Cert {
    let cert = dir.join(format!("{file}.pem"));
    let key = dir.join(format!("{file}.key"));
    let mut cmd = match when {
        Some(offset) => {
            let mut c = Command::new("faketime");
            c.arg("-f").arg(offset).arg("openssl");
            c
        }
        None => Command::new("openssl"),
    };
    let out = cmd
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={cn}"), "-addext"])
        .arg(format!("subjectAltName={san}"))
        .output()
        .expect("openssl (and faketime) must be installed");
    assert!(out.status.success(), "openssl req: {:?}", text(&out));
    Cert { cert, key }
}

/// `openssl s_server -www` on a free loopback port, stopped on drop.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(cert: &Cert) -> Self {
        let mut child = Command::new("openssl")
            .args(["s_server", "-www", "-accept", "127.0.0.1:0", "-cert"])
            .arg(&cert.cert)
            .arg("-key")
            .arg(&cert.key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl must be installed");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("ACCEPT ") {
                    let _ = tx.send(addr.rsplit(':').next().unwrap_or("").to_owned());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("openssl s_server did not start")
            .parse()
            .unwrap();
        Self { child, port }
    }

    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/", self.port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fetch(cacert: Option<&Path>, url: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.arg("fetch");
    if let Some(ca) = cacert {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.arg(url).output().unwrap()
}

fn curl(cacert: Option<&Path>, url: &str) -> Output {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    cmd.args(["--silent", "--show-error", "--max-time", "20"]);
    if let Some(ca) = cacert {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.arg(url).output().unwrap()
}

/// Both clients refused the certificate; kerbside's words.
fn both_refuse(cacert: Option<&Path>, url: &str) -> String {
    let by_curl = curl(cacert, url);
    assert_eq!(
        by_curl.status.code(),
        Some(60),
        "curl: {:?}",
        text(&by_curl)
    );
    let out = fetch(cacert, url);
    let (body, err) = text(&out);
    assert_eq!(out.status.code(), Some(35), "{body}\n{err}");
    assert!(err.contains("TLS handshake with"), "{err}");
    err
}

#[test]
fn a_self_signed_certificate_given_with_cacert_is_trusted_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let cert = openssl_cert(
        dir.path(),
        "self",
        "localhost",
        "DNS:localhost,IP:127.0.0.1",
        None,
    );
    let server = SServer::start(&cert);
    for host in ["localhost", "127.0.0.1"] {
        let url = server.url(host);
        let by_curl = curl(Some(&cert.cert), &url);
        assert!(by_curl.status.success(), "curl: {:?}", text(&by_curl));
        let out = fetch(Some(&cert.cert), &url);
        let (body, err) = text(&out);
        assert!(out.status.success(), "{url}: {err}");
        assert!(body.contains("s_server"), "{body}");
    }
    // Without it, the certificate is refused, and the words say how to trust it.
    let err = both_refuse(None, &server.url("localhost"));
    assert!(
        err.contains("CA certificate as its own") && err.contains("--cacert"),
        "{err}"
    );
}

#[test]
fn a_certificate_for_another_name_is_refused_naming_both_names() {
    let dir = tempfile::tempdir().unwrap();
    let cert = openssl_cert(
        dir.path(),
        "other",
        "other.example",
        "DNS:other.example",
        None,
    );
    let server = SServer::start(&cert);
    let err = both_refuse(Some(&cert.cert), &server.url("localhost"));
    assert!(
        err.contains("not for localhost") && err.contains("other.example"),
        "{err}"
    );
    assert!(!err.contains("pass"), "no advice to pass --cacert: {err}");
}

#[test]
fn an_expired_self_signed_certificate_is_refused_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    // Made three days ago, valid for one.
    let cert = openssl_cert(dir.path(), "old", "localhost", "DNS:localhost", Some("-3d"));
    let server = SServer::start(&cert);
    let err = both_refuse(Some(&cert.cert), &server.url("localhost"));
    assert!(err.contains("certificate expired 2 days ago"), "{err}");
}

#[test]
fn a_cacert_file_that_holds_another_certificate_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let served = openssl_cert(dir.path(), "served", "localhost", "DNS:localhost", None);
    let other = openssl_cert(dir.path(), "given", "localhost", "DNS:localhost", None);
    let server = SServer::start(&served);
    let err = both_refuse(Some(&other.cert), &server.url("localhost"));
    assert!(err.contains(&other.cert.display().to_string()), "{err}");
    assert!(!err.contains("pass"), "no advice to pass --cacert: {err}");
}
