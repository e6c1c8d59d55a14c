//! Package managers through `kerbside proxy`, configured the way their users do,
//! against local registries served over HTTPS (Python's `http.server` with a
//! private CA's certificate) behind Squid requiring Negotiate: `cargo fetch` of a
//! project depending on a crate of a sparse registry (`CARGO_HTTP_PROXY`,
//! `CARGO_HTTP_CAINFO`, a temporary `CARGO_HOME`), and `npm install` of a package
//! of a static npm registry (`--https-proxy`, `--cafile`). Squid's log names alice
//! for their tunnels; the registry's log shows the downloads.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use common::{clean_env, kerbside, text, GateProcess};
use kerbside_testkit::{Squid, SquidOptions, TestCa, TestRealm};

fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// A static HTTPS server of a directory: Debian's Python `http.server` wrapped in
/// TLS with a certificate of the private CA. Its request log is kept.
struct StaticHttps {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

const SERVER: &str = r#"
import functools, http.server, ssl, sys
root, cert, key = sys.argv[1:4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl StaticHttps {
    fn start(root: &Path, ca: &TestCa) -> Self {
        let cert = ca.issue(&[]);
        // The certificate lives as long as the server: keep its directory.
        let cert_dir = root.join("..").join("tls");
        std::fs::create_dir_all(&cert_dir).unwrap();
        let (c, k) = (cert_dir.join("cert.pem"), cert_dir.join("key.pem"));
        std::fs::write(&c, cert.cert_pem()).unwrap();
        std::fs::write(&k, cert.key_pem()).unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .args(["-u", "-c", SERVER])
            .arg(root)
            .args([&c, &k])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Debian's python3 is needed");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port from the server: {first:?}"));
        StaticHttps { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for StaticHttps {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kerbside proxy` in front of `squid`, on a free loopback port.
fn proxy(squid: &Squid) -> (GateProcess, u16) {
    let mut cmd = kerbside(realm());
    cmd.args(["proxy", "--listen", "127.0.0.1:0", "-v", "--proxy"])
        .arg(squid.url());
    let p = GateProcess::from_command(cmd);
    let port = p.url.rsplit(':').next().unwrap().parse().unwrap();
    (p, port)
}

/// `sha256 hex`, `sha1 hex`, `sha512 base64` of a file (Python's hashlib).
fn hashes(path: &Path) -> (String, String, String) {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import base64, hashlib, sys\n\
             d = open(sys.argv[1], 'rb').read()\n\
             print(hashlib.sha256(d).hexdigest(), hashlib.sha1(d).hexdigest(), \
             base64.b64encode(hashlib.sha512(d).digest()).decode())",
        ])
        .arg(path)
        .output()
        .unwrap();
    let (stdout, err) = text(&out);
    let mut parts = stdout.split_whitespace().map(str::to_owned);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => panic!("no hashes: {err}"),
    }
}

fn run(cmd: &mut Command, what: &str, extra: impl Fn() -> String) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let (stdout, err) = text(&out);
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}{err}\n{}",
        extra()
    );
    format!("{stdout}{err}")
}

/// Squid's line for a `CONNECT localhost:port` that it served.
fn assert_alice_tunnel(squid: &Squid, port: u16) {
    let target = format!("CONNECT localhost:{port}");
    let log = squid.wait_access_log(|l| {
        l.lines()
            .any(|l| l.contains(&target) && l.contains(" 200 "))
    });
    let served: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&target) && l.contains(" 200 "))
        .collect();
    assert!(!served.is_empty(), "{log}");
    for line in served {
        assert!(line.contains("user=alice@EXAMPLE.TEST"), "{log}");
    }
}

#[test]
fn cargo_fetch_from_a_sparse_registry_through_the_proxy_and_squid() {
    let realm = realm();
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let (p, port) = proxy(&squid);
    let ca = TestCa::new();
    let work = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_home = work.path().join("cargo-home");
    let cargo_env = |cmd: &mut Command| {
        clean_env(cmd);
        cmd.env("CARGO_HOME", &cargo_home)
            .env("CARGO_TARGET_DIR", work.path().join("target"))
            .env_remove("CARGO_REGISTRIES_CRATES_IO_PROTOCOL")
            .env_remove("RUSTC_WRAPPER");
    };

    // A tiny crate, packaged with `cargo package`.
    let krate = work.path().join("kbtiny");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"kbtiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         description = \"a test crate\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/lib.rs"), "pub fn one() -> u8 { 1 }\n").unwrap();
    let mut package = Command::new(&cargo);
    cargo_env(&mut package);
    package
        .current_dir(&krate)
        .args(["package", "--no-verify", "--allow-dirty", "--offline"]);
    run(&mut package, "cargo package", String::new);
    let crate_file = work.path().join("target/package/kbtiny-0.1.0.crate");

    // The sparse registry: config.json, the index file, the .crate at the dl URL.
    let root = work.path().join("registry");
    std::fs::create_dir_all(root.join("index/kb/ti")).unwrap();
    std::fs::create_dir_all(root.join("crates/kbtiny/0.1.0")).unwrap();
    std::fs::copy(&crate_file, root.join("crates/kbtiny/0.1.0/download")).unwrap();
    let (sha256, _, _) = hashes(&crate_file);
    std::fs::write(
        root.join("index/kb/ti/kbtiny"),
        format!(
            "{{\"name\":\"kbtiny\",\"vers\":\"0.1.0\",\"deps\":[],\"cksum\":\"{sha256}\",\
             \"features\":{{}},\"yanked\":false}}\n"
        ),
    )
    .unwrap();
    let server = StaticHttps::start(&root, &ca);
    std::fs::write(
        root.join("index/config.json"),
        format!(
            "{{\"dl\":\"{}\"}}\n",
            server.url("/crates/{crate}/{version}/download")
        ),
    )
    .unwrap();

    // A project that depends on it, fetched with only the proxy configured.
    let project = work.path().join("app");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nkbtiny = { version = \"0.1\", registry = \"local\" }\n",
    )
    .unwrap();
    std::fs::write(project.join("src/main.rs"), "fn main() {}\n").unwrap();
    let mut fetch = Command::new(&cargo);
    cargo_env(&mut fetch);
    fetch
        .current_dir(&project)
        .env(
            "CARGO_REGISTRIES_LOCAL_INDEX",
            format!("sparse+{}", server.url("/index/")),
        )
        .env("CARGO_HTTP_PROXY", format!("http://127.0.0.1:{port}"))
        .env("CARGO_HTTP_CAINFO", ca.ca_pem_path())
        .env("CARGO_NET_RETRY", "0")
        .args(["fetch"]);
    run(&mut fetch, "cargo fetch", || {
        format!("--- proxy:\n{}\n--- registry:\n{}", p.log(), server.log())
    });
    assert!(
        project.join("Cargo.lock").exists(),
        "no Cargo.lock: {}",
        p.log()
    );
    let lock = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"kbtiny\""), "{lock}");
    let log = server.log();
    assert!(log.contains("GET /index/kb/ti/kbtiny"), "{log}");
    assert!(log.contains("GET /crates/kbtiny/0.1.0/download"), "{log}");
    assert_alice_tunnel(&squid, server.port);
    assert!(!p.log().contains("YII"), "tokens redacted: {}", p.log());
}

#[test]
fn npm_install_from_a_static_registry_through_the_proxy_and_squid() {
    let realm = realm();
    let npm = Command::new("npm").arg("--version").output();
    assert!(
        npm.as_ref().is_ok_and(|o| o.status.success()),
        "npm is needed for this test (apt install npm): {npm:?}"
    );
    let squid = Squid::start(realm, SquidOptions::default()).unwrap();
    let (p, port) = proxy(&squid);
    let ca = TestCa::new();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let npm_env = |cmd: &mut Command| {
        clean_env(cmd);
        cmd.env("HOME", &home)
            .env("npm_config_userconfig", home.join("npmrc"))
            .env("npm_config_cache", work.path().join("npm-cache"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false");
    };

    // A tiny package, packed with `npm pack`.
    let package = work.path().join("kbtiny");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(
        package.join("package.json"),
        "{\"name\":\"kbtiny\",\"version\":\"1.0.0\",\"main\":\"index.js\",\"license\":\"MIT\"}\n",
    )
    .unwrap();
    std::fs::write(package.join("index.js"), "module.exports = 1;\n").unwrap();
    let mut pack = Command::new("npm");
    npm_env(&mut pack);
    pack.current_dir(&package)
        .args(["pack", "--pack-destination"])
        .arg(work.path());
    run(&mut pack, "npm pack", String::new);
    let tarball = work.path().join("kbtiny-1.0.0.tgz");

    // The registry: the packument at /kbtiny, the tarball under /tarballs/.
    let root = work.path().join("registry");
    std::fs::create_dir_all(root.join("tarballs")).unwrap();
    std::fs::copy(&tarball, root.join("tarballs/kbtiny-1.0.0.tgz")).unwrap();
    let (_, sha1, sha512) = hashes(&tarball);
    let server = StaticHttps::start(&root, &ca);
    std::fs::write(
        root.join("kbtiny"),
        format!(
            "{{\"name\":\"kbtiny\",\"dist-tags\":{{\"latest\":\"1.0.0\"}},\"versions\":{{\
             \"1.0.0\":{{\"name\":\"kbtiny\",\"version\":\"1.0.0\",\"main\":\"index.js\",\
             \"dist\":{{\"tarball\":\"{}\",\"shasum\":\"{sha1}\",\
             \"integrity\":\"sha512-{sha512}\"}}}}}}}}\n",
            server.url("/tarballs/kbtiny-1.0.0.tgz")
        ),
    )
    .unwrap();

    let project = work.path().join("app");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        "{\"name\":\"app\",\"version\":\"1.0.0\",\"private\":true}\n",
    )
    .unwrap();
    let proxy_url = format!("http://127.0.0.1:{port}");
    let mut install = Command::new("npm");
    npm_env(&mut install);
    install
        .current_dir(&project)
        // Not the cache `npm pack` filled: the tarball must come from the registry.
        .env("npm_config_cache", work.path().join("install-cache"))
        .args(["install", "kbtiny", "--registry"])
        .arg(server.url("/"))
        .args([
            "--proxy",
            &proxy_url,
            "--https-proxy",
            &proxy_url,
            "--cafile",
        ])
        .arg(ca.ca_pem_path())
        .args(["--fetch-retries", "0", "--fetch-timeout", "20000"]);
    run(&mut install, "npm install", || {
        format!("--- proxy:\n{}\n--- registry:\n{}", p.log(), server.log())
    });
    assert!(
        project.join("node_modules/kbtiny/index.js").exists(),
        "not installed"
    );
    let log = server.log();
    assert!(log.contains("GET /kbtiny"), "{log}");
    assert!(log.contains("GET /tarballs/kbtiny-1.0.0.tgz"), "{log}");
    assert_alice_tunnel(&squid, server.port);
}
