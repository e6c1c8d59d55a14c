//! The gate refuses replayed Negotiate tokens with its in-memory replay cache (MIT's
//! file cache is off for its acceptor): the same token twice, the same AP-REQ as a
//! bare krb5 token, and re-wrapped in SPNEGO with another mechanism listed; each with
//! a log line that says why. A fresh token from the same ticket gets in. The cache
//! lives in a file too: a token made by python-gssapi (a third-party initiator) and
//! sent by curl stays refused after the gate is stopped (SIGTERM) or killed (SIGKILL)
//! and started again; a replay cache file the gate cannot trust makes it fall back to
//! MIT's replay cache, which refuses replays as well. Shared in Redis, the cache
//! holds across gates: one server, a Sentinel failover, a Cluster.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{clean_env, text, EchoUpstream, GateProcess};
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::krb5;
use kerbside_proto::scheme::negotiate::server::challenge;
use kerbside_proto::spnego::{NegTokenInit, Oid};
use kerbside_proto::{Mechanism, Step};
use kerbside_testkit::TestRealm;

fn token(realm: &TestRealm) -> Vec<u8> {
    let _env = realm.enter();
    let mut init = NegotiateInitiator::new(&InitiatorConfig::for_host("localhost")).unwrap();
    match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no token"),
    }
}

/// The status of `GET /` with `Authorization: Negotiate <token>`.
fn status(gate: &GateProcess, token: &[u8]) -> u16 {
    let url = gate.url("");
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    // `Negotiate <base64>`, the same form as the challenge with a token.
    let header = challenge(Some(token));
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: {header}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// SPNEGO listing the Microsoft krb5 OID before the real one, around `mech_token`
/// (encoded by proto's `NegTokenInit`).
fn rewrap(mech_token: &[u8]) -> Vec<u8> {
    NegTokenInit {
        mech_types: vec![Oid::known(Oid::MS_KRB5), Oid::known(Oid::KRB5)],
        req_flags: None,
        mech_token: Some(mech_token.to_vec()),
        mech_list_mic: None,
    }
    .encode()
}

#[test]
fn the_gate_refuses_replays_however_they_are_wrapped() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        None,
        &format!("http://127.0.0.1:{}", upstream.port),
        &["--auth", "per-request"],
    );
    let first = token(&realm);
    assert_eq!(status(&gate, &first), 200, "{}", gate.log());
    assert_eq!(status(&gate, &first), 401, "the same token again");
    let bare = krb5::spnego_mech_token(&first).unwrap().to_vec();
    assert_eq!(status(&gate, &bare), 401, "the AP-REQ as a bare krb5 token");
    assert_eq!(status(&gate, &rewrap(&bare)), 401, "re-wrapped in SPNEGO");
    assert!(
        gate.wait_for_log(|log| log.matches("seen before (memory replay cache)").count() >= 3),
        "each replay is logged as such: {}",
        gate.log()
    );
    assert_eq!(
        status(&gate, &token(&realm)),
        200,
        "a fresh token from the same ticket"
    );
}

/// A fresh SPNEGO token for `HTTP@localhost` from python-gssapi (MIT's initiator
/// driven by a third party), base64, with alice's ticket from the realm.
fn python_token(realm: &TestRealm) -> String {
    let python = kerbside_testkit::require_peers_python();
    let out = Command::new(python)
        .envs(realm.env())
        .args([
            "-c",
            "import base64, gssapi\n\
             name = gssapi.Name('HTTP@localhost', gssapi.NameType.hostbased_service)\n\
             spnego = gssapi.OID.from_int_seq('1.3.6.1.5.5.2')\n\
             ctx = gssapi.SecurityContext(name=name, usage='initiate', mech=spnego)\n\
             print(base64.b64encode(ctx.step()).decode())",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "python-gssapi: {:?}", text(&out));
    text(&out).0.trim().to_owned()
}

/// The status curl gets for `GET /` with `Authorization: Negotiate <token>`.
fn curl_status(gate: &GateProcess, token: &str) -> String {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    let out = cmd
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--noproxy",
            "*",
        ])
        .args(["--max-time", "20", "-H"])
        .arg(format!("Authorization: Negotiate {token}"))
        .arg(gate.url("/"))
        .output()
        .unwrap();
    text(&out).0
}

fn start_gate(realm: &TestRealm, upstream: &EchoUpstream, extra: &[&str]) -> GateProcess {
    let mut args = vec!["--auth", "per-request"];
    args.extend_from_slice(extra);
    GateProcess::start(
        realm,
        None,
        &format!("http://127.0.0.1:{}", upstream.port),
        &args,
    )
}

fn stop(mut gate: GateProcess, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &gate.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        gate.wait_exit(Duration::from_secs(20)).is_some(),
        "the gate did not stop on {signal}: {}",
        gate.log()
    );
}

#[test]
fn a_replayed_token_stays_refused_across_a_restart_and_a_crash() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let first = python_token(&realm);

    let gate = start_gate(&realm, &upstream, &[]);
    assert!(
        gate.wait_for_log(|l| l.contains("replay cache file in use")),
        "{}",
        gate.log()
    );
    assert_eq!(curl_status(&gate, &first), "200", "{}", gate.log());
    stop(gate, "-TERM");

    let gate = start_gate(&realm, &upstream, &[]);
    assert!(
        gate.wait_for_log(|l| l.contains("reloaded=1")),
        "the entry was reloaded: {}",
        gate.log()
    );
    assert_eq!(
        curl_status(&gate, &first),
        "401",
        "replayed after a restart"
    );
    assert!(
        gate.wait_for_log(|l| l.contains("seen before (memory replay cache)")),
        "the refusal says it is a replay: {}",
        gate.log()
    );
    let second = python_token(&realm);
    assert_eq!(
        curl_status(&gate, &second),
        "200",
        "a fresh token from the same ticket: {}",
        gate.log()
    );
    // A crash: no chance to flush or compact anything.
    stop(gate, "-KILL");

    let gate = start_gate(&realm, &upstream, &[]);
    assert!(
        gate.wait_for_log(|l| l.contains("reloaded=2")),
        "both entries reloaded after the crash: {}",
        gate.log()
    );
    assert_eq!(curl_status(&gate, &second), "401", "replayed after a crash");
    assert_eq!(curl_status(&gate, &first), "401", "still refused");
    assert_eq!(curl_status(&gate, &python_token(&realm)), "200");
}

#[test]
fn an_untrusted_replay_cache_file_falls_back_to_mits_cache() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let file = realm.dir().join("open-replay-cache");
    std::fs::write(&file, b"").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let gate = start_gate(
        &realm,
        &upstream,
        &["--replay-cache", file.to_str().unwrap()],
    );
    assert!(
        gate.wait_for_log(
            |l| l.contains("replays are checked by MIT's (slower) file cache")
                && l.contains("chmod 600")
        ),
        "the log says why and what to do: {}",
        gate.log()
    );
    let token = python_token(&realm);
    assert_eq!(curl_status(&gate, &token), "200", "{}", gate.log());
    assert_eq!(curl_status(&gate, &token), "401", "MIT's cache refuses it");
}

/// Two gates behind one name share their replay cache in Redis: a token python-gssapi
/// made and curl sent to one gate is refused by the other. While Redis is away, a gate
/// with the default policy refuses Kerberos logins (counted, logged once) and one with
/// `replay-cache-unavailable = "local"` lets its memory cache decide; when Redis is back,
/// logins work again.
#[test]
fn gates_sharing_a_redis_replay_cache_refuse_a_token_another_gate_accepted() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let mut redis = kerbside_testkit::Redis::start().unwrap();
    let shared = ["--replay-cache", &redis.url(), "--metrics", "127.0.0.1:0"];
    let first = start_gate(&realm, &upstream, &shared);
    let second = start_gate(&realm, &upstream, &shared);
    let local = start_gate(
        &realm,
        &upstream,
        &[
            "--replay-cache",
            &redis.url(),
            "--replay-cache-unavailable",
            "local",
        ],
    );

    let token = python_token(&realm);
    assert_eq!(curl_status(&first, &token), "200", "{}", first.log());
    assert_eq!(curl_status(&second, &token), "401", "{}", second.log());
    assert!(
        second.wait_for_log(|l| l.contains("shared replay cache: another gate accepted it")),
        "{}",
        second.log()
    );
    // A fresh token is no replay anywhere.
    assert_eq!(curl_status(&second, &python_token(&realm)), "200");

    // Redis away: the default refuses, and says so once; "local" lets a fresh token in.
    redis.stop();
    assert_eq!(curl_status(&first, &python_token(&realm)), "401");
    assert_eq!(curl_status(&first, &python_token(&realm)), "401");
    assert_eq!(
        curl_status(&local, &python_token(&realm)),
        "200",
        "{}",
        local.log()
    );
    let log = first.log();
    assert_eq!(
        log.matches("the shared replay cache does not answer")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        common::metric(
            &first.metrics(),
            "kerbside_gate_replay_cache_unavailable_total"
        ),
        2.0
    );

    redis.restart().unwrap();
    assert_eq!(
        curl_status(&first, &python_token(&realm)),
        "200",
        "{}",
        first.log()
    );
    assert!(first.wait_for_log(|l| l.contains("the shared replay cache answers again")));
}

/// Redis run for availability: two gates share a replay cache through a Sentinel
/// (`redis+sentinel://`). A token one accepted is refused by the other; the primary is
/// killed and the Sentinel promotes the replica: the claim made before survives (the
/// token stays refused), and logins work again at once through the new primary, found by
/// asking the Sentinel again. With the Sentinel itself gone, the gates keep the primary
/// they know.
#[test]
fn gates_follow_a_sentinel_failover_of_their_shared_replay_cache() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let mut redis = kerbside_testkit::RedisSentinelSet::start().unwrap();
    let shared = ["--replay-cache", &redis.url(), "--metrics", "127.0.0.1:0"];
    let first = start_gate(&realm, &upstream, &shared);
    let second = start_gate(&realm, &upstream, &shared);

    let before = python_token(&realm);
    assert_eq!(curl_status(&first, &before), "200", "{}", first.log());
    assert_eq!(curl_status(&second, &before), "401", "{}", second.log());
    assert_eq!(curl_status(&second, &python_token(&realm)), "200");

    redis.wait_replicated().unwrap();
    let (old_primary, replica) = redis.ports();
    let took = redis.fail_over().unwrap();
    assert_eq!(redis.primary_port().unwrap(), replica);
    eprintln!("the Sentinel promoted the replica in {took:?} (primary was :{old_primary})");

    // The pooled connections to the dead primary fail; each gate asks the Sentinel again
    // within the same login, so no login is refused once the failover is done.
    for gate in [&first, &second] {
        assert_eq!(
            curl_status(gate, &python_token(&realm)),
            "200",
            "{}\n{}",
            gate.log(),
            redis.logs()
        );
    }
    assert_eq!(curl_status(&first, &before), "401", "{}", first.log());
    let after = python_token(&realm);
    assert_eq!(curl_status(&second, &after), "200", "{}", second.log());
    assert_eq!(curl_status(&first, &after), "401", "{}", first.log());
    for gate in [&first, &second] {
        assert_eq!(
            common::metric(
                &gate.metrics(),
                "kerbside_gate_replay_cache_unavailable_total"
            ),
            0.0,
            "{}",
            gate.log()
        );
    }

    // Without the Sentinel, the primary the gates found is still used.
    redis.stop_sentinel();
    assert_eq!(
        curl_status(&first, &python_token(&realm)),
        "200",
        "{}",
        first.log()
    );
}

/// A Redis Cluster of three primaries (`redis+cluster://` naming one node): each of a
/// dozen tokens is accepted by one gate and refused by the other, and the claims are
/// spread over the nodes by their keys' slots (so the gates follow the cluster's
/// redirections, not one node).
#[test]
fn gates_share_a_replay_cache_in_a_redis_cluster() {
    let realm = TestRealm::start().unwrap();
    let upstream = EchoUpstream::start();
    let cluster = kerbside_testkit::RedisCluster::start().unwrap();
    let shared = ["--replay-cache", &cluster.url()];
    let first = start_gate(&realm, &upstream, &shared);
    let second = start_gate(&realm, &upstream, &shared);
    for i in 0..12 {
        let token = python_token(&realm);
        let (accepts, refuses) = if i % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        assert_eq!(
            curl_status(accepts, &token),
            "200",
            "{}\n{}",
            accepts.log(),
            cluster.logs()
        );
        assert_eq!(curl_status(refuses, &token), "401", "{}", refuses.log());
    }
    let counts = cluster.key_counts().unwrap();
    assert_eq!(counts.iter().sum::<u64>(), 12, "{counts:?}");
    assert!(
        counts.iter().filter(|&&n| n > 0).count() >= 2,
        "all claims on one node: {counts:?}"
    );
}
