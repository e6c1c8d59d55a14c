//! Three gates and one Redis behind Debian's HAProxy in TCP mode (PROXY v2, health
//! checks on `/.kerbside/health` every 200 ms), as docs/scale-out.md configures them, all
//! as processes on loopback: a token one gate accepted is refused by the others; a
//! session cookie from one gate opens on every gate, and across a key rotation; a gate
//! killed (SIGKILL) under load costs no more errors than the connections it held, and
//! one drained with SIGTERM costs none; with Redis stopped each gate follows its
//! `replay-cache-unavailable` policy and recovers when Redis returns; NTLM and
//! connection-bound Negotiate users logging in at once over many connections each reach
//! the upstream as themselves. Load comes from requests + requests-gssapi /
//! requests-ntlm workers (`tests/peers/load_clients.py`) and curl; every request is
//! recorded with its outcome.
#![allow(clippy::unwrap_used)]

#[path = "scale_out/cluster.rs"]
mod cluster;
mod common;

use std::time::Duration;

use cluster::{
    connections_to, curl_i, echoed, failures, gate, haproxy, negotiate, now, port_of, python_token,
    realm, session_key, signal, status_of, wait_statuses, wait_until, Cluster, Load, Record,
    Worker,
};
use common::{metric, with_password_on_stdin};

const ALICE: &str = "alice@EXAMPLE.TEST";

/// `GET path` through HAProxy with `Authorization: Negotiate <token>`; the status.
fn send_token(cluster: &Cluster, token: &str) -> u16 {
    let out = curl_i()
        .arg("-H")
        .arg(format!("Authorization: Negotiate {token}"))
        .arg(cluster.url("/replayed"))
        .output()
        .unwrap();
    status_of(&out)
}

#[test]
fn a_token_one_gate_accepted_is_refused_through_haproxy_by_the_other_gates() {
    let cluster = Cluster::start(
        Duration::ZERO,
        &[
            &["--auth", "per-request"],
            &["--auth", "per-request"],
            &["--auth", "per-request"],
        ],
    );
    // Round robin: three connections, one to each gate, with the same token.
    let token = python_token();
    let statuses: Vec<u16> = (0..3).map(|_| send_token(&cluster, &token)).collect();
    assert_eq!(statuses, [200, 401, 401], "{}", cluster.logs());
    let accepted: Vec<usize> = (0..3)
        .filter(|&i| {
            metric(
                &cluster.gates[i].metrics(),
                "kerbside_gate_handshakes_total{result=\"ok\"}",
            ) == 1.0
        })
        .collect();
    assert_eq!(accepted.len(), 1, "{}", cluster.logs());
    for (i, gate) in cluster.gates.iter().enumerate() {
        if i != accepted[0] {
            assert!(
                gate.wait_for_log(|l| l.contains("shared replay cache: another gate accepted it")),
                "gate{i} refused the token as one another gate accepted:\n{}",
                cluster.logs()
            );
        }
    }
    // Fresh tokens are no replay on any gate.
    for _ in 0..3 {
        assert_eq!(send_token(&cluster, &python_token()), 200);
    }
}

/// The `kerbside_session` value a login through HAProxy (or straight to a gate with
/// `direct`) set.
fn log_in(url: &str, direct: bool) -> String {
    let mut cmd = curl_i();
    if direct {
        cmd.arg("--haproxy-protocol");
    }
    let out = cmd
        .args(["--negotiate", "-u", ":"])
        .arg(url)
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 200, "{:?}", common::text(&out));
    echoed(&out, "set-cookie")
        .iter()
        .find_map(|c| c.strip_prefix("kerbside_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no session cookie: {:?}", common::text(&out)))
}

/// Presents the cookie, without a ticket, straight to `gate` (curl's own PROXY v1
/// header); the status and the user the upstream saw.
fn with_cookie(gate: &common::GateProcess, value: &str) -> (u16, Vec<String>) {
    let none = format!("FILE:{}/no-ticket", realm().dir().display());
    let out = curl_i()
        .env("KRB5CCNAME", none)
        .args(["--haproxy-protocol", "-H"])
        .arg(format!("Cookie: kerbside_session={value}"))
        .arg(gate.url("/with-cookie"))
        .output()
        .unwrap();
    (status_of(&out), echoed(&out, "x-remote-user"))
}

#[test]
fn a_cookie_from_one_gate_opens_on_every_gate_and_across_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.key");
    let new = dir.path().join("new.key");
    session_key(&old);
    session_key(&new);
    let old_arg = old.to_str().unwrap();
    let cookie_gate: &[&str] = &["--auth", "cookie", "--session-key", old_arg];
    let cluster = Cluster::start(Duration::ZERO, &[cookie_gate, cookie_gate, cookie_gate]);

    let cookie = log_in(&cluster.url("/login"), false);
    for (i, gate) in cluster.gates.iter().enumerate() {
        let (status, users) = with_cookie(gate, &cookie);
        assert_eq!(status, 200, "gate{i}:\n{}", cluster.logs());
        assert_eq!(users, [ALICE]);
    }

    // Rotation, in the order docs/scale-out.md gives. Step 1: a gate that knows the new
    // key as a previous one (still sealing with the old). Step 2: a gate that seals with
    // the new key and keeps the old as previous.
    let config = |name: &str, current: &std::path::Path, previous: &std::path::Path| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "auth = \"cookie\"\nsession-key = {current:?}\nprevious-session-keys = [{previous:?}]\n"
            ),
        )
        .unwrap();
        path
    };
    let step1 = config("step1.toml", &old, &new);
    let step2 = config("step2.toml", &new, &old);
    let upstream = cluster.upstream.url();
    let learning = gate(&upstream, &["--config", step1.to_str().unwrap()]);
    let rotated = gate(&upstream, &["--config", step2.to_str().unwrap()]);
    assert_eq!(
        with_cookie(&rotated, &cookie),
        (200, vec![ALICE.to_owned()]),
        "a cookie sealed with the old key opens on a gate that has the new key first: {}",
        rotated.log()
    );
    let sealed_new = log_in(&rotated.url("/login"), true);
    assert_eq!(
        with_cookie(&learning, &sealed_new),
        (200, vec![ALICE.to_owned()]),
        "{}",
        learning.log()
    );
    // A gate not yet given the new key refuses it: that is why step 1 comes first.
    assert_eq!(with_cookie(&cluster.gates[0], &sealed_new).0, 401);
}

/// Four requests-gssapi workers, each request a fresh connection with a fresh token.
fn negotiate_workers() -> Vec<Worker> {
    (0..4).map(|_| negotiate("negotiate", "alice", 1)).collect()
}

/// A summary of `records` for the test's output and failure messages.
fn summary(records: &[Record]) -> String {
    let failed = failures(records);
    let mut s = format!("{} requests, {} failed", records.len(), failed.len());
    for r in failed.iter().take(10) {
        s.push_str(&format!("\n  {r:?}"));
    }
    s
}

#[test]
fn a_gate_killed_under_load_costs_no_more_errors_than_the_connections_it_held() {
    let _load = cluster::load_lock();
    let per_request: &[&str] = &["--auth", "per-request"];
    // The upstream takes 50 ms, so that requests are in flight on every gate.
    let mut cluster = Cluster::start(
        Duration::from_millis(50),
        &[per_request, per_request, per_request],
    );
    let load = Load::start(&cluster.url("/load"), &negotiate_workers());
    let upstream = &cluster.upstream;
    assert!(wait_until(Duration::from_secs(30), || upstream.received() >= 30));

    // What the killed gate holds at the kill: the connections open on it now, plus
    // those HAProxy opens to it between this count and the moment its checks take it
    // out (its session total), less those HAProxy redispatched to another gate because
    // the dead one refused them.
    let victim = port_of(&cluster.gates[1]);
    let count = |column: &str| -> u64 { cluster.haproxy.stat(column).unwrap()[1].parse().unwrap() };
    let (sessions_before, redispatched_before) = (count("stot"), count("wredis"));
    let held = connections_to(victim) as u64;
    let pid = cluster.gates[1].pid();
    let killed_at = now();
    signal(pid, "-KILL");
    let statuses = wait_statuses(&cluster.haproxy, |s| s[1].starts_with("DOWN"));
    assert!(statuses[1].starts_with("DOWN"), "{statuses:?}");
    let down_at = now();
    let opened = count("stot") - sessions_before;
    let redispatched = count("wredis") - redispatched_before;
    let in_flight = held + opened.saturating_sub(redispatched);

    let served = upstream.received();
    assert!(wait_until(Duration::from_secs(30), || upstream.received()
        >= served + 30));
    let records = load.finish();
    let errors = failures(&records).len() as u64;
    eprintln!(
        "killed gate held {held} connections, +{opened} opened to it before it was out, \
         {redispatched} of them redispatched: {in_flight} in flight; {}",
        summary(&records)
    );
    assert!(
        errors <= in_flight,
        "{errors} errors, {in_flight} requests in flight on the killed gate: {}\n{}",
        summary(&records),
        cluster.logs()
    );
    let before: Vec<&Record> = records.iter().filter(|r| r.end < killed_at).collect();
    assert!(
        before.len() >= 20 && before.iter().all(|r| r.ok()),
        "every request before the kill succeeds: {}\n{}",
        summary(&records),
        cluster.logs()
    );
    let after: Vec<&Record> = records.iter().filter(|r| r.start > down_at).collect();
    assert!(
        after.len() >= 20 && after.iter().all(|r| r.ok()),
        "every request after HAProxy took the gate out succeeds: {}",
        summary(&records)
    );
    assert!(cluster.gates[1].wait_exit(Duration::from_secs(5)).is_some());
}

#[test]
fn a_gate_drained_with_sigterm_under_load_costs_no_error() {
    let _load = cluster::load_lock();
    let per_request: &[&str] = &["--auth", "per-request"];
    let mut cluster = Cluster::start(
        Duration::from_millis(50),
        &[
            per_request,
            &["--auth", "per-request", "--shutdown-delay", "2"],
            per_request,
        ],
    );
    let load = Load::start(&cluster.url("/load"), &negotiate_workers());
    let upstream = &cluster.upstream;
    assert!(wait_until(Duration::from_secs(30), || upstream.received() >= 30));
    let handshakes_before = metric(
        &cluster.gates[1].metrics(),
        "kerbside_gate_handshakes_total{result=\"ok\"}",
    );
    assert!(handshakes_before >= 1.0, "the gate served some of the load");
    signal(cluster.gates[1].pid(), "-TERM");
    let statuses = wait_statuses(&cluster.haproxy, |s| s[1].starts_with("DOWN"));
    assert!(statuses[1].starts_with("DOWN"), "{statuses:?}");
    let exit = cluster.gates[1].wait_exit(Duration::from_secs(20));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    let served = upstream.received();
    assert!(wait_until(Duration::from_secs(30), || upstream.received()
        >= served + 30));
    let records = load.finish();
    eprintln!("drained under load: {}", summary(&records));
    assert!(
        failures(&records).is_empty(),
        "{}\n{}",
        summary(&records),
        cluster.logs()
    );
}

#[test]
fn with_redis_stopped_each_gate_follows_its_policy_and_recovers_when_redis_returns() {
    let per_request: &[&str] = &["--auth", "per-request"];
    let mut cluster = Cluster::start(Duration::ZERO, &[per_request, per_request, per_request]);
    // Two more gates on the same Redis that let their memory cache decide in an outage,
    // behind a second HAProxy.
    let local_args = [
        "--auth",
        "per-request",
        "--replay-cache",
        &cluster.redis.url(),
        "--replay-cache-unavailable",
        "local",
    ];
    let upstream = cluster.upstream.url();
    let local = [gate(&upstream, &local_args), gate(&upstream, &local_args)];
    let local_haproxy = haproxy(&[&local[0], &local[1]]);
    let through = |port: u16| {
        let out = curl_i()
            .args(["--negotiate", "-u", ":"])
            .arg(format!("https://localhost:{port}/during"))
            .output()
            .unwrap();
        status_of(&out)
    };
    let refuse_port = cluster.haproxy.port();
    assert_eq!(through(refuse_port), 200, "{}", cluster.logs());

    cluster.redis.stop();
    // Round robin: each of the three "refuse" gates once, each of the "local" ones once.
    let refused: Vec<u16> = (0..3).map(|_| through(refuse_port)).collect();
    assert_eq!(refused, [401, 401, 401], "{}", cluster.logs());
    for (i, gate) in cluster.gates.iter().enumerate() {
        assert!(
            gate.wait_for_log(|l| l.contains("the shared replay cache does not answer")),
            "gate{i}: {}",
            gate.log()
        );
        assert!(
            metric(
                &gate.metrics(),
                "kerbside_gate_replay_cache_unavailable_total"
            ) >= 1.0
        );
    }
    let served: Vec<u16> = (0..2).map(|_| through(local_haproxy.port())).collect();
    assert_eq!(served, [200, 200], "{}", local_haproxy.log());

    cluster.redis.restart().unwrap();
    let recovered: Vec<u16> = (0..3).map(|_| through(refuse_port)).collect();
    assert_eq!(recovered, [200, 200, 200], "{}", cluster.logs());
    for gate in &cluster.gates {
        assert!(gate.wait_for_log(|l| l.contains("the shared replay cache answers again")));
    }
}

/// The NTLM users of the gates: `EXAMPLE\NAME` with password `NAME-password`.
const NTLM_USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

#[test]
fn ntlm_and_negotiate_users_logging_in_at_once_through_haproxy_each_reach_the_upstream_as_themselves(
) {
    let _load = cluster::load_lock();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("ntlm-users");
    for name in NTLM_USERS {
        with_password_on_stdin(
            realm(),
            &[
                "ntlm-passwd".as_ref(),
                users.as_os_str(),
                format!("EXAMPLE\\{name}").as_ref(),
            ],
            &format!("{name}-password"),
        );
    }
    let args: &[&str] = &[
        "--auth",
        "connection",
        "--ntlm-users",
        users.to_str().unwrap(),
    ];
    let cluster = Cluster::start(Duration::from_millis(5), &[args, args, args]);
    let url = cluster.url("/who");
    // requests-ntlm, one worker per NTLM user, three requests per connection; and
    // requests-gssapi with alice's and bob's tickets, four requests per connection, the
    // later ones without a token (the gate knows the connection).
    let mut workers: Vec<Worker> = NTLM_USERS
        .iter()
        .map(|name| Worker {
            scheme: "ntlm",
            user: format!("EXAMPLE\\{name}"),
            secret: format!("{name}-password"),
            per_connection: 3,
        })
        .collect();
    workers.push(negotiate("negotiate-connection", "alice", 4));
    workers.push(negotiate("negotiate-connection", "bob", 4));
    let load = Load::start(&url, &workers);
    // Meanwhile curl --ntlm for alice and bob, four requests on one connection each,
    // several times.
    let curls: Vec<(String, std::process::Child)> = (0..6)
        .map(|i| {
            let name = NTLM_USERS[i % 2];
            let child = curl_i()
                .arg("--ntlm")
                .arg("-u")
                .arg(format!("EXAMPLE\\{name}:{name}-password"))
                .args([&url, &url, &url, &url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (format!("EXAMPLE\\{name}"), child)
        })
        .collect();
    for (user, child) in curls {
        let out = child.wait_with_output().unwrap();
        let seen = echoed(&out, "x-remote-user");
        assert_eq!(
            seen,
            vec![user.clone(); 4],
            "curl --ntlm as {user}: {:?}",
            common::text(&out)
        );
    }
    let upstream = &cluster.upstream;
    assert!(wait_until(Duration::from_secs(30), || upstream.received() >= 150));
    let records = load.finish();
    eprintln!("NTLM and Negotiate through HAProxy: {}", summary(&records));
    assert!(
        failures(&records).is_empty(),
        "{}\n{}",
        summary(&records),
        cluster.logs()
    );
    for w in &workers {
        let connections = records
            .iter()
            .filter(|r| r.user == w.user)
            .map(|r| (r.worker, r.connection))
            .collect::<std::collections::BTreeSet<_>>();
        assert!(
            connections.len() >= 2,
            "{} over several connections",
            w.user
        );
    }
    // Every gate took part, and logged each connection in once: the later requests on
    // a connection were served as its user without a new handshake.
    let handshakes: Vec<f64> = cluster
        .gates
        .iter()
        .map(|g| {
            metric(
                &g.metrics(),
                "kerbside_gate_handshakes_total{result=\"ok\"}",
            )
        })
        .collect();
    let connections = records
        .iter()
        .map(|r| (r.worker, r.connection))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    eprintln!("handshakes per gate {handshakes:?} for {connections} connections + 6 of curl");
    assert!(
        handshakes.iter().all(|&h| h >= 1.0)
            && handshakes.iter().sum::<f64>() <= (connections + 6) as f64,
        "handshakes {handshakes:?}, {connections} connections of the workers and 6 of curl"
    );
}
