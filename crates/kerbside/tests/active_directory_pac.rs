//! The gate reads the PAC of an Active Directory ticket: names and groups as AD means them.
//!
//! A Samba AD domain controller ([`TestDomain`]) issues the tickets; GSSAPI checks the PAC's
//! signatures and the gate takes from it
//! - the account's own name: `kinit BOB`, `kinit bob` and `kinit -E bob@ad.example.test`
//!   all reach the upstream as `bob@AD.EXAMPLE.TEST` (curl, `kerbside fetch`, Firefox);
//! - the down-level name and the UPN for `user-map` (`ADEXAMPLE\bob`, `bob@ad.example.test`);
//! - the groups, nested membership included, named through the domain's winbindd
//!   (`wbinfo`), for `[[access]] groups = ["ADEXAMPLE\\developers"]` (or a SID), the
//!   groups header of proxy mounts and `REMOTE_USER_GROUPS` for CGI.
//!
//! One domain for the whole binary ([`TestDomain::shared`]).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::firefox::{self, Run, Shot};
use common::{clean_env, text, GateProcess, RecordingUpstream};
use kerbside_testkit::{require_tool, ServiceKeys, TestCa, TestCert, TestDomain};

/// How many groups the user `many` is in.
const MANY_GROUPS: usize = 1200;

/// The domain, with the accounts, groups and keytab every test here uses.
///
/// `carol` is in `frontend`, which is in `developers` (so carol is in `developers` only
/// through nesting), and in the domain-local group `dl-readers`; `alice` is in none.
struct Ad {
    domain: &'static TestDomain,
    /// `HTTP/localhost`, an AES-only service account.
    keytab: PathBuf,
    /// The SID of `developers`.
    developers_sid: String,
}

fn ad() -> &'static Ad {
    static AD: OnceLock<Ad> = OnceLock::new();
    AD.get_or_init(|| {
        require_tool("wbinfo", "winbind");
        let started = Instant::now();
        let domain = TestDomain::shared().unwrap();
        eprintln!("test domain ready in {:?}", started.elapsed());
        domain
            .add_service_account("svc-gate-pac", &["HTTP/localhost"], ServiceKeys::AesOnly)
            .unwrap();
        let keytab = domain.dir().join("gate-pac.keytab");
        domain.export_keytab("HTTP/localhost", &keytab).unwrap();
        domain.add_user("carol", "carol-password").unwrap();
        domain.add_group("developers").unwrap();
        domain.add_group("frontend").unwrap();
        domain.add_group_member("developers", "frontend").unwrap();
        domain.add_group_member("frontend", "carol").unwrap();
        domain
            .samba_tool(&["group", "add", "dl-readers", "--group-scope=Domain"])
            .unwrap();
        domain.add_group_member("dl-readers", "carol").unwrap();
        domain.add_user("many", "many-password").unwrap();
        domain
            .add_user_to_new_groups("many", "many", MANY_GROUPS)
            .unwrap();
        let shown = domain
            .samba_tool(&["group", "show", "developers", "--attributes=objectSid"])
            .unwrap();
        let developers_sid = shown
            .lines()
            .find_map(|l| l.strip_prefix("objectSid: "))
            .unwrap_or_else(|| panic!("no objectSid in {shown}"))
            .trim()
            .to_owned();
        for (user, password) in [
            ("alice", "alice-password"),
            ("carol", "carol-password"),
            ("many", "many-password"),
        ] {
            domain
                .kinit(user, password, &domain.user_ccache(user))
                .unwrap();
        }
        // Bob, typed three ways.
        domain
            .kinit("BOB", "bob-password", &domain.user_ccache("BOB"))
            .unwrap();
        domain
            .kinit("bob", "bob-password", &domain.user_ccache("bob"))
            .unwrap();
        domain
            .kinit_with(
                &["-E"],
                "bob@ad.example.test",
                "bob-password",
                &domain.user_ccache("bob-enterprise"),
            )
            .unwrap();
        Ad {
            domain,
            keytab,
            developers_sid,
        }
    })
}

fn tls() -> (TestCa, TestCert) {
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    (ca, cert)
}

/// `kerbside gate --config CONFIG` with the domain's keytab and krb5.conf.
fn gate_with_config(ad: &Ad, config: &str) -> GateProcess {
    let dir = tempfile::Builder::new()
        .prefix("gate-")
        .tempdir_in(ad.domain.dir())
        .unwrap()
        .keep();
    let file = dir.join("gate.toml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut cmd);
    cmd.envs(ad.domain.env())
        .env_remove("KRB5CCNAME")
        .env("KRB5RCACHEDIR", &dir)
        .args(["gate", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--keytab")
        .arg(&ad.keytab);
    GateProcess::from_command(cmd)
}

/// The TLS lines of a gate's configuration.
fn tls_config(cert: &TestCert) -> String {
    format!(
        "tls-cert = {:?}\ntls-key = {:?}\n",
        cert.cert_pem_path(),
        cert.key_pem_path()
    )
}

/// curl with the ticket cache `ccache` (a name given to [`TestDomain::user_ccache`]).
fn curl_as(ad: &Ad, ccache: &str, ca: &TestCa) -> Command {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    let mut name = std::ffi::OsString::from("FILE:");
    name.push(ad.domain.user_ccache(ccache));
    cmd.envs(ad.domain.env())
        .env("KRB5CCNAME", name)
        .args(["--silent", "--show-error", "--noproxy", "*", "--cacert"])
        .arg(ca.ca_pem_path())
        .args(["--negotiate", "-u", ":"]);
    cmd
}

/// Runs curl and returns the body, failing with the gate's log.
fn body_of(cmd: &mut Command, gate: &GateProcess) -> String {
    let out = cmd.output().unwrap();
    let (body, err) = text(&out);
    assert!(out.status.success(), "curl: {err}\n{}", gate.log());
    body
}

/// An upstream that answers each request with its request line and headers.
struct HeadersUpstream {
    port: u16,
}

impl HeadersUpstream {
    fn start() -> Self {
        let port = common::serve_each_connection(|stream| {
            let _ = echo_head(stream);
        });
        Self { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn echo_head(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim_end().is_empty() {
                break;
            }
            head.push_str(line.trim_end());
            head.push('\n');
        }
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{head}",
            head.len()
        )?;
        writer.flush()?;
    }
}

/// The value of header `name` in an echoed head (the first, case-insensitively).
fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// A CGI program that prints its identity variables.
fn cgi_program(dir: &Path) -> PathBuf {
    let program = dir.join("whoami.cgi");
    std::fs::write(
        &program,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
         printf 'REMOTE_USER=%s\\nREMOTE_USER_GROUPS=%s\\n' \"$REMOTE_USER\" \"$REMOTE_USER_GROUPS\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    program
}

#[test]
fn the_account_s_own_name_reaches_the_upstream_whatever_was_typed() {
    let ad = ad();
    let (ca, cert) = tls();
    let upstream = HeadersUpstream::start();
    let gate = gate_with_config(
        ad,
        &format!("{}upstream = \"{}\"\n", tls_config(&cert), upstream.url()),
    );
    let url = gate.url("/whoami");
    for ccache in ["BOB", "bob", "bob-enterprise"] {
        let head = body_of(curl_as(ad, ccache, &ca).arg(&url), &gate);
        assert_eq!(
            header(&head, "x-remote-user"),
            ["bob@AD.EXAMPLE.TEST"],
            "kinit {ccache}: {head}\n{}",
            gate.log()
        );
    }
    // kerbside fetch, with the ticket of `kinit BOB`.
    let mut fetch = Command::new(env!("CARGO_BIN_EXE_kerbside"));
    clean_env(&mut fetch);
    let mut name = std::ffi::OsString::from("FILE:");
    name.push(ad.domain.user_ccache("BOB"));
    let out = fetch
        .envs(ad.domain.env())
        .env("KRB5CCNAME", name)
        .arg("fetch")
        .arg("--cacert")
        .arg(ca.ca_pem_path())
        .arg("--negotiate")
        .arg(&url)
        .output()
        .unwrap();
    let (head, err) = text(&out);
    assert!(out.status.success(), "fetch: {err}\n{}", gate.log());
    assert_eq!(
        header(&head, "x-remote-user"),
        ["bob@AD.EXAMPLE.TEST"],
        "{head}"
    );
}

#[test]
fn user_map_gives_cgi_the_short_name_the_down_level_name_or_the_upn() {
    let ad = ad();
    let (ca, cert) = tls();
    let program = cgi_program(ad.domain.dir());
    for (map, expected) in [
        ("strip-realm", "bob"),
        ("down-level", "ADEXAMPLE\\bob"),
        ("upn", "bob@ad.example.test"),
    ] {
        let gate = gate_with_config(
            ad,
            &format!(
                "{}user-map = \"{map}\"\ncgi = {program:?}\n",
                tls_config(&cert)
            ),
        );
        let body = body_of(curl_as(ad, "BOB", &ca).arg(gate.url("/")), &gate);
        assert!(
            body.contains(&format!("REMOTE_USER={expected}\n")),
            "user-map {map}: {body}\n{}",
            gate.log()
        );
    }
}

#[test]
fn a_rule_for_an_ad_group_lets_a_nested_member_in_and_refuses_others() {
    let ad = ad();
    let (ca, cert) = tls();
    let upstream = HeadersUpstream::start();
    let program = cgi_program(ad.domain.dir());
    let key = ad.domain.dir().join("pac-session.key");
    let gate = gate_with_config(
        ad,
        &format!(
            r#"{tls}groups-header = "X-Remote-Groups"
auth = "cookie"
session-key = {key:?}

[[mount]]
path = "/"
upstream = "{upstream}"

[[mount]]
path = "/cgi"
cgi = {program:?}

[[mount]]
path = "/kerbside-auth"
forward-auth = true

[[access]]
path = "/"
authenticated = true

[[access]]
path = "/dev"
groups = ["ADEXAMPLE\\developers"]

[[access]]
path = "/by-sid"
groups = ["{sid}"]

[[access]]
path = "/cgi"
groups = ["adexample\\DEVELOPERS"]
"#,
            tls = tls_config(&cert),
            upstream = upstream.url(),
            sid = ad.developers_sid,
        ),
    );
    let status = |ccache: &str, path: &str| -> String {
        let out = curl_as(ad, ccache, &ca)
            .args(["-o", "/dev/null", "-w", "%{http_code}"])
            .arg(gate.url(path))
            .output()
            .unwrap();
        text(&out).0
    };

    // carol is in developers through frontend: let in, by name and by SID.
    let jar = ad.domain.dir().join("carol.cookies");
    let first = body_of(
        curl_as(ad, "carol", &ca)
            .arg("-c")
            .arg(&jar)
            .arg(gate.url("/dev/first")),
        &gate,
    );
    // The second request comes with the session cookie only (no Kerberos at all): the
    // gate kept carol's account and groups with her login.
    let mut cookie_only = Command::new("curl");
    clean_env(&mut cookie_only);
    cookie_only
        .args(["--silent", "--show-error", "--noproxy", "*", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg("-b")
        .arg(&jar)
        .arg(gate.url("/dev/second"));
    let second = body_of(&mut cookie_only, &gate);
    for head in [&first, &second] {
        let groups = header(head, "x-remote-groups");
        assert_eq!(groups.len(), 1, "{head}\n{}", gate.log());
        let list: Vec<&str> = groups[0].split(',').collect();
        for expected in [
            "ADEXAMPLE\\developers",
            "ADEXAMPLE\\frontend",
            "ADEXAMPLE\\dl-readers",
            "ADEXAMPLE\\Domain Users",
        ] {
            assert!(list.contains(&expected), "{expected} missing from {list:?}");
        }
        assert_eq!(
            header(head, "x-remote-user"),
            ["carol@AD.EXAMPLE.TEST"],
            "{head}"
        );
        eprintln!("carol's groups: {list:?}");
    }
    assert_eq!(status("carol", "/by-sid/x"), "200", "{}", gate.log());

    // alice is in none of them.
    assert_eq!(status("alice", "/dev/x"), "403", "{}", gate.log());
    assert_eq!(status("alice", "/by-sid/x"), "403", "{}", gate.log());
    assert!(gate.log().contains("access denied"), "{}", gate.log());

    // A client's own groups header, in any spelling, never reaches the upstream.
    let head = body_of(
        curl_as(ad, "alice", &ca)
            .args(["-H", "X-Remote-Groups: ADEXAMPLE\\Domain Admins"])
            .args(["-H", "X_Remote_Groups: ADEXAMPLE\\Domain Admins"])
            .arg(gate.url("/open")),
        &gate,
    );
    let alice_groups = header(&head, "x-remote-groups");
    assert_eq!(alice_groups.len(), 1, "{head}");
    assert!(!alice_groups[0].contains("Domain Admins"), "{head}");
    assert!(
        alice_groups[0].contains("ADEXAMPLE\\Domain Users"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("x_remote_groups"),
        "{head}"
    );

    // CGI gets the groups in REMOTE_USER_GROUPS (the rule's name in another case matches).
    let body = body_of(curl_as(ad, "carol", &ca).arg(gate.url("/cgi/x")), &gate);
    let line = body
        .lines()
        .find_map(|l| l.strip_prefix("REMOTE_USER_GROUPS="))
        .unwrap_or_else(|| panic!("{body}"));
    assert!(
        line.split(',').any(|g| g == "ADEXAMPLE\\developers"),
        "{body}\n{}",
        gate.log()
    );
    assert_eq!(status("alice", "/cgi/x"), "403", "{}", gate.log());

    // A front proxy asking forward-auth about /dev gets carol's groups in its answer.
    let out = curl_as(ad, "carol", &ca)
        .args(["-D", "-", "-o", "/dev/null"])
        .args([
            "-H",
            "X-Original-URI: /dev/x",
            "-H",
            "X-Original-Method: GET",
        ])
        .arg(gate.url("/kerbside-auth"))
        .output()
        .unwrap();
    let (answer, err) = text(&out);
    assert!(out.status.success(), "curl: {err}");
    assert!(answer.contains(" 200"), "{answer}\n{}", gate.log());
    let groups = header(answer.trim_end_matches('\r'), "x-kerbside-groups");
    assert!(
        groups.iter().any(|g| g
            .trim_end()
            .split(',')
            .any(|g| g == "ADEXAMPLE\\developers")),
        "{answer}"
    );
}

#[test]
fn a_user_in_1200_groups_gets_them_named_once() {
    let ad = ad();
    let (ca, cert) = tls();
    let upstream = HeadersUpstream::start();
    let gate = gate_with_config(
        ad,
        &format!(
            "{}groups-header = \"X-Remote-Groups\"\nupstream = \"{}\"\n",
            tls_config(&cert),
            upstream.url()
        ),
    );
    let mut named_after = Vec::new();
    for round in ["first", "second"] {
        let started = Instant::now();
        let head = body_of(curl_as(ad, "many", &ca).arg(gate.url("/many")), &gate);
        let took = started.elapsed();
        let groups = header(&head, "x-remote-groups");
        assert_eq!(groups.len(), 1, "{}", gate.log());
        let list: Vec<&str> = groups[0].split(',').collect();
        assert!(list.len() > MANY_GROUPS, "{} groups", list.len());
        let named = list
            .iter()
            .filter(|g| g.starts_with("ADEXAMPLE\\many-"))
            .count();
        eprintln!(
            "{round} request of a user in {MANY_GROUPS} groups: {took:?}, {named} of them \
             named, groups header of {} bytes",
            groups[0].len()
        );
        named_after.push(named);
    }
    // What the first login named is kept: the second asks winbind nothing new.
    assert!(named_after[1] >= named_after[0], "{named_after:?}");
    assert!(named_after[1] > 0, "no group was named: {}", gate.log());
}

#[test]
fn firefox_logs_in_to_the_gate_with_an_ad_ticket() {
    require_tool("firefox-esr", "firefox-esr");
    require_tool("certutil", "libnss3-tools");
    let ad = ad();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let upstream = RecordingUpstream::start();
    let gate = gate_with_config(
        ad,
        &format!("{}upstream = \"{}\"\n", tls_config(&cert), upstream.url()),
    );
    let dir = tempfile::Builder::new()
        .prefix("firefox-")
        .tempdir_in(ad.domain.dir())
        .unwrap();
    let screenshot = dir.path().join("page.png");
    let mut ccache = std::ffi::OsString::from("FILE:");
    ccache.push(ad.domain.user_ccache("BOB"));
    let mut env = ad.domain.env();
    env.push(("KRB5CCNAME".into(), ccache));
    let url = gate.url("/intranet/page.html");
    let shot = Shot {
        dir: dir.path(),
        ca: &ca,
        negotiate: true,
        extra: &[],
        png: &screenshot,
        url: &url,
    };
    let Run {
        status,
        stdout,
        stderr,
        took,
    } = firefox::screenshot(&shot, env, || false);
    let seen = upstream.requests();
    let report = format!(
        "firefox {status:?} after {took:?}\nstdout: {stdout}\nstderr: {stderr}\nupstream saw: \
         {seen:#?}\ngate log:\n{}",
        gate.log()
    );
    assert!(status.is_some(), "firefox timed out: {report}");
    let page = seen
        .iter()
        .find(|r| r.path == "/intranet/page.html")
        .unwrap_or_else(|| panic!("the page never reached the upstream: {report}"));
    assert!(page.user_agent.contains("Firefox/"), "{report}");
    // The ticket was got with `kinit BOB`; the gate names the account as AD does.
    assert!(
        seen.iter().all(|r| r.users == ["bob@AD.EXAMPLE.TEST"]),
        "{report}"
    );
    let png = std::fs::read(&screenshot).unwrap_or_else(|e| panic!("no screenshot: {e}: {report}"));
    assert!(png.starts_with(b"\x89PNG"), "{report}");
}
