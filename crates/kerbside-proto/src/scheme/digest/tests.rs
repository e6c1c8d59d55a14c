//! Digest: the RFC test vectors, client↔server round trips, stale nonces, replays,
//! `rspauth`, and the `htdigest` file.
//!
//! Expected values not printed in an RFC were computed independently with Python's
//! `hashlib` from the RFC 7616 §3.4 formulas.

use super::client::{
    choose, DigestChallenge, DigestError, DigestPolicy, DigestSession, Rechallenge,
};
use super::htdigest::{format_line, Htdigest, HtdigestErrorKind};
use super::server::{DigestRefusal, DigestServer, NonceCountRefusal, NonceCounts};
use super::*;
use crate::header::{parse_challenges, AuthenticationInfo, Challenge, Credentials};

const NOW: u64 = 1_700_000_000;
const ALLOW_MD5: DigestPolicy = DigestPolicy { allow_md5: true };

fn challenges(text: &str) -> Vec<Challenge> {
    parse_challenges([text.as_bytes()]).unwrap()
}

fn param<'a>(credentials: &'a Credentials, name: &str) -> &'a str {
    credentials
        .param(name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// RFC 7616 §3.9.1's challenge with the algorithm given.
fn rfc7616_challenge(algorithm: &str) -> Vec<Challenge> {
    challenges(&format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
         algorithm={algorithm}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    ))
}

const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc7616_session(algorithm: &str) -> DigestSession {
    let chosen = choose(&rfc7616_challenge(algorithm), &ALLOW_MD5).unwrap();
    DigestSession::new(chosen, "Mufasa", "Circle of Life")
}

#[test]
fn rfc7616_sha256_example() {
    let mut session = rfc7616_session("SHA-256");
    let credentials = session
        .authorization("GET", "/dir/index.html", None, RFC7616_CNONCE)
        .unwrap();
    assert_eq!(
        param(&credentials, "response"),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    // The header as RFC 7616 §3.9.1 prints it (on one line).
    assert_eq!(
        to_header_value(&credentials),
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
         uri=\"/dir/index.html\", algorithm=SHA-256, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
         cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
         response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    );
    // What we write parses back to the same credentials.
    let reparsed = Credentials::parse(to_header_value(&credentials).as_bytes()).unwrap();
    assert_eq!(reparsed, credentials);
}

#[test]
fn rfc7616_md5_example() {
    let mut session = rfc7616_session("MD5");
    let credentials = session
        .authorization("GET", "/dir/index.html", None, RFC7616_CNONCE)
        .unwrap();
    assert_eq!(
        param(&credentials, "response"),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    assert_eq!(param(&credentials, "algorithm"), "MD5");
}

#[test]
fn rfc7616_rspauth_verifies_and_tampered_one_does_not() {
    for (algorithm, rspauth) in [
        ("MD5", "9b712497bc9f91499fbcca1dfc5f09a5"),
        (
            "SHA-256",
            "86d3b25618d41854ca5039a5d7e53ff6355d5134a9b1fb088a78ac3c462195a0",
        ),
    ] {
        let mut session = rfc7616_session(algorithm);
        session
            .authorization("GET", "/dir/index.html", None, RFC7616_CNONCE)
            .unwrap();
        let good =
            format!("rspauth=\"{rspauth}\", qop=auth, nc=00000001, cnonce=\"{RFC7616_CNONCE}\"");
        let info = AuthenticationInfo::parse(good.as_bytes()).unwrap();
        assert_eq!(
            session.clone().verify_authentication_info(&info, None),
            Ok(true)
        );

        let mut tampered = rspauth.to_owned();
        tampered.replace_range(0..1, if rspauth.starts_with('9') { "8" } else { "9" });
        let bad = format!("rspauth=\"{tampered}\", qop=auth, nc=00000001");
        let info = AuthenticationInfo::parse(bad.as_bytes()).unwrap();
        let err = session.verify_authentication_info(&info, None).unwrap_err();
        assert_eq!(err, DigestError::RspauthMismatch);
        assert!(err.to_string().contains("it may not know your password"));
    }
}

#[test]
fn rfc2617_md5_example() {
    let offered = challenges(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    );
    let chosen = choose(&offered, &ALLOW_MD5).unwrap();
    assert!(!chosen.algorithm_given);
    let mut session = DigestSession::new(chosen, "Mufasa", "Circle Of Life");
    let credentials = session
        .authorization("GET", "/dir/index.html", None, "0a4f113b")
        .unwrap();
    assert_eq!(
        param(&credentials, "response"),
        "6629fae49393a05397450978507c4ef1"
    );
    // The challenge named no algorithm, so neither does the answer.
    assert_eq!(credentials.param("algorithm"), None);
}

/// RFC 7616 §3.9.2. The userhash and response printed in the RFC are wrong (erratum 4897,
/// reported): they match no reading of the formulas. These values follow §3.4.4 (HA1 over
/// the plain username, the hash only in the `username` parameter), as curl does, and were
/// computed with Python's hashlib.
#[test]
fn rfc7616_userhash_example_sha512_256() {
    let offered = challenges(
        "Digest realm=\"api@example.org\", qop=\"auth\", algorithm=SHA-512-256, \
         nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", \
         opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\", charset=UTF-8, userhash=true",
    );
    let chosen = choose(&offered, &DigestPolicy::default()).unwrap();
    assert!(chosen.userhash && chosen.charset_utf8);
    assert_eq!(chosen.algorithm, Algorithm::Sha512_256);
    let user = "J\u{e4}s\u{f8}n Doe";
    let mut session = DigestSession::new(chosen.clone(), user, "Secret, or not?");
    let credentials = session
        .authorization(
            "GET",
            "/doe.json",
            None,
            "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
        )
        .unwrap();
    assert_eq!(
        param(&credentials, "username"),
        "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    );
    assert_eq!(param(&credentials, "userhash"), "true");
    assert_eq!(
        param(&credentials, "response"),
        "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
    );

    // Without userhash the name goes as `username*` (RFC 8187), as §3.9.2 suggests.
    let plain = DigestChallenge {
        userhash: false,
        ..chosen
    };
    let mut session = DigestSession::new(plain, user, "Secret, or not?");
    let credentials = session
        .authorization("GET", "/doe.json", None, "x")
        .unwrap();
    assert_eq!(credentials.param("username"), None);
    assert_eq!(
        param(&credentials, "username*"),
        "UTF-8''J%C3%A4s%C3%B8n%20Doe"
    );
    assert_eq!(
        client::decode_ext_value("utf-8'en'J%c3%a4s%C3%B8n%20Doe").as_deref(),
        Some(user)
    );
}

#[test]
fn rfc2069_compatibility_only_without_qop() {
    let offered = challenges(
        "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
    );
    let chosen = choose(&offered, &ALLOW_MD5).unwrap();
    assert!(chosen.qop.is_empty());
    let mut session = DigestSession::new(chosen, "Mufasa", "Circle Of Life");
    let credentials = session
        .authorization("GET", "/dir/index.html", None, "ignored")
        .unwrap();
    assert_eq!(credentials.param("nc"), None);
    assert_eq!(credentials.param("cnonce"), None);
    assert_eq!(credentials.param("qop"), None);
    assert_eq!(
        param(&credentials, "response"),
        "670fd8c2df070c60b045671b8b24ff02"
    );
    // -sess without qop cannot work.
    let offered = challenges("Digest realm=r, nonce=n, algorithm=MD5-sess");
    assert_eq!(
        choose(&offered, &ALLOW_MD5),
        Err(DigestError::SessionWithoutQop(Algorithm::Md5Sess))
    );
}

#[test]
fn auth_int_and_sess_arithmetic() {
    // auth-int over the body "hello", and SHA-256-sess, against hashlib.
    let mut session = rfc7616_session("SHA-256");
    let body = BodyHash::of(HashFunction::Sha256, b"hello");
    let mut streamed = BodyHasher::new(HashFunction::Sha256);
    streamed.update(b"hel");
    streamed.update(b"lo");
    assert_eq!(streamed.finish(), body);
    let credentials = session
        .authorization("POST", "/dir/index.html", Some(&body), RFC7616_CNONCE)
        .unwrap();
    assert_eq!(param(&credentials, "qop"), "auth-int");
    assert_eq!(
        param(&credentials, "response"),
        "c98b95dbdb463c4483e324bced57d591946a6f84098142757b1333c52c47d62e"
    );
    let md5_body = BodyHash::of(HashFunction::Md5, b"hello");
    assert!(matches!(
        session.authorization("POST", "/", Some(&md5_body), "c"),
        Err(DigestError::BodyHashMismatch { .. })
    ));

    let mut session = rfc7616_session("SHA-256-sess");
    let first = session
        .authorization("GET", "/dir/index.html", None, RFC7616_CNONCE)
        .unwrap();
    assert_eq!(
        param(&first, "response"),
        "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
    );
    // The -sess cnonce stays with the nonce: A1 depends on it.
    let second = session
        .authorization("GET", "/dir/index.html", None, "another")
        .unwrap();
    assert_eq!(param(&second, "cnonce"), RFC7616_CNONCE);
    assert_eq!(param(&second, "nc"), "00000002");
}

#[test]
fn choose_prefers_the_strongest_algorithm_and_qop() {
    let offered = challenges(
        "Basic realm=x, Digest realm=r, nonce=a, algorithm=MD5, qop=auth, \
         Digest realm=r, nonce=b, algorithm=SHA-256-sess, qop=auth, \
         Digest realm=r, nonce=c, algorithm=sha-256, \
         Digest realm=r, nonce=d, algorithm=SHA-256, qop=auth, \
         Digest realm=r, nonce=e, algorithm=SHA-256, qop=auth",
    );
    let chosen = choose(&offered, &ALLOW_MD5).unwrap();
    assert_eq!(
        (chosen.algorithm, chosen.nonce.as_str()),
        (Algorithm::Sha256, "d")
    );

    let mut with_512 = offered.clone();
    with_512.extend(challenges(
        "Digest realm=r, nonce=f, algorithm=SHA-512-256, qop=\"auth-int\"",
    ));
    assert_eq!(choose(&with_512, &ALLOW_MD5).unwrap().nonce, "f");

    let md5_only = challenges("Digest realm=r, nonce=a, qop=auth");
    let err = choose(&md5_only, &DigestPolicy::default()).unwrap_err();
    assert_eq!(err, DigestError::Md5NotAllowed);
    assert!(err.to_string().contains("--allow-digest-md5"));
    assert!(choose(&md5_only, &ALLOW_MD5).is_ok());

    let unknown = challenges("Digest realm=r, nonce=a, algorithm=SHA3-256");
    assert_eq!(
        choose(&unknown, &ALLOW_MD5),
        Err(DigestError::UnsupportedAlgorithm("SHA3-256".into()))
    );
    assert!(matches!(
        choose(&challenges("Negotiate, Basic realm=x"), &ALLOW_MD5),
        Err(DigestError::NotOffered { offered }) if offered == "Negotiate, Basic"
    ));
    assert_eq!(
        choose(&challenges("Digest realm=r"), &ALLOW_MD5),
        Err(DigestError::MissingParam("nonce"))
    );
    assert_eq!(
        choose(
            &challenges("Digest realm=r, nonce=n, qop=\"auth-conf\""),
            &ALLOW_MD5
        ),
        Err(DigestError::UnsupportedQop("auth-conf".into()))
    );
}

fn users() -> Htdigest {
    let mut text = String::from("# test users\n\n");
    for hash in [HashFunction::Md5, HashFunction::Sha256] {
        for (user, password) in [
            ("alice", "wonderland"),
            ("J\u{e4}s\u{f8}n Doe", "Secret, or not?"),
        ] {
            text.push_str(&format_line(user, "intranet", password, hash).unwrap());
            text.push('\n');
        }
    }
    Htdigest::parse(text.as_bytes()).unwrap()
}

/// A store that also answers SHA-512-256 (which an htdigest file cannot hold).
fn lookup(user: &str, realm: &str, hash: HashFunction) -> Option<Ha1> {
    (user == "alice").then(|| Ha1::compute(hash, user, realm, "wonderland"))
}

fn server(algorithms: &[Algorithm]) -> DigestServer {
    DigestServer::new("intranet", [42; 32])
        .unwrap()
        .with_algorithms(algorithms)
        .unwrap()
}

#[test]
fn round_trip_every_algorithm() {
    for algorithm in Algorithm::ALL {
        let server = server(&[algorithm]);
        let offered = server.challenges(NOW, false);
        assert_eq!(offered.len(), 1);
        let chosen = choose(&offered, &ALLOW_MD5).unwrap();
        assert_eq!(chosen.algorithm, algorithm);
        let mut session = DigestSession::new(chosen, "alice", "wonderland");
        for (i, target) in ["/a", "/b?x=1", "/a"].into_iter().enumerate() {
            let credentials = session
                .authorization("GET", target, None, &format!("cnonce{i}"))
                .unwrap();
            let verified = if algorithm.hash() == HashFunction::Sha512_256 {
                server.verify(&credentials, "GET", target, &lookup, NOW + 1)
            } else {
                server.verify(&credentials, "GET", target, &users(), NOW + 1)
            }
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
            assert_eq!(verified.user, "alice");
            assert_eq!(verified.nc, u32::try_from(i).unwrap() + 1);
            assert_eq!(verified.algorithm, algorithm);
            let info = AuthenticationInfo::parse(verified.authentication_info.as_bytes()).unwrap();
            assert_eq!(session.verify_authentication_info(&info, None), Ok(true));
        }
    }
}

#[test]
fn server_offers_strongest_first_on_separate_challenges() {
    let server = server(&[Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256]);
    let offered = server.challenges(NOW, true);
    let algorithms: Vec<_> = offered
        .iter()
        .map(|c| c.param("algorithm").unwrap())
        .collect();
    assert_eq!(algorithms, ["SHA-512-256", "SHA-256", "MD5"]);
    for c in &offered {
        assert_eq!(c.param("stale"), Some("true"));
        assert_eq!(c.param("qop"), Some("auth"));
        assert!(challenge_header_value(c).starts_with("Digest realm=\"intranet\", qop=\"auth\""));
    }
    // A user with only an MD5 entry is found when the client picks MD5, not otherwise.
    let md5_only = Htdigest::parse(
        format_line("bob", "intranet", "pw", HashFunction::Md5)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let sha = DigestChallenge::parse(&offered[1]).unwrap();
    let mut session = DigestSession::new(sha, "bob", "pw");
    let credentials = session.authorization("GET", "/", None, "c").unwrap();
    assert_eq!(
        server.verify(&credentials, "GET", "/", &md5_only, NOW),
        Err(DigestRefusal::UnknownUser {
            user: "bob".into(),
            hash: HashFunction::Sha256
        })
    );
    let md5 = DigestChallenge::parse(&offered[2]).unwrap();
    let mut session = DigestSession::new(md5, "bob", "pw");
    let credentials = session.authorization("GET", "/", None, "c").unwrap();
    assert!(server
        .verify(&credentials, "GET", "/", &md5_only, NOW)
        .is_ok());
}

#[test]
fn userhash_and_username_star_round_trip() {
    let server = server(&[Algorithm::Sha256]).with_userhash(true);
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    assert!(chosen.userhash);
    let user = "J\u{e4}s\u{f8}n Doe";
    let mut session = DigestSession::new(chosen.clone(), user, "Secret, or not?");
    let credentials = session
        .authorization("GET", "/doe.json", None, "c")
        .unwrap();
    assert_ne!(param(&credentials, "username"), user);
    let verified = server
        .verify(&credentials, "GET", "/doe.json", &users(), NOW)
        .unwrap();
    assert_eq!(verified.user, user);
    // A closure store cannot resolve hashed names.
    assert!(matches!(
        server.verify(&credentials, "GET", "/doe.json", &lookup, NOW),
        Err(DigestRefusal::UnknownUser { .. })
    ));

    // A nonce is one client's: take a fresh one for the next.
    let fresh = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    assert_ne!(fresh.nonce, chosen.nonce);
    let plain = DigestChallenge {
        userhash: false,
        ..fresh
    };
    let mut session = DigestSession::new(plain, user, "Secret, or not?");
    let credentials = session
        .authorization("GET", "/doe.json", None, "c")
        .unwrap();
    assert!(credentials.param("username*").is_some());
    let verified = server
        .verify(&credentials, "GET", "/doe.json", &users(), NOW)
        .unwrap();
    assert_eq!(verified.user, user);
}

#[test]
fn stale_nonce_is_renewed_without_the_password() {
    let server = server(&[Algorithm::Sha256])
        .with_nonce_lifetime(60)
        .unwrap();
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    let mut session = DigestSession::new(chosen, "alice", "wonderland");
    let credentials = session.authorization("GET", "/", None, "c1").unwrap();
    let later = NOW + 61;
    let refusal = server
        .verify(&credentials, "GET", "/", &users(), later)
        .unwrap_err();
    assert_eq!(refusal, DigestRefusal::StaleNonce);
    assert!(refusal.is_stale());
    assert_eq!(refusal.status(), 401);

    let renewed = server.challenges(later, refusal.is_stale());
    assert!(DigestChallenge::parse(&renewed[0]).unwrap().is_stale());
    assert_eq!(
        session.handle_rechallenge(&renewed),
        Rechallenge::RetryWithNewNonce
    );
    assert_eq!(session.nonce_count(), 0);
    let credentials = session.authorization("GET", "/", None, "c2").unwrap();
    assert_eq!(param(&credentials, "nc"), "00000001");
    assert!(server
        .verify(&credentials, "GET", "/", &users(), later)
        .is_ok());

    // A wrong password on an expired nonce is a wrong password, not a stale nonce.
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    let mut wrong = DigestSession::new(chosen, "alice", "guess");
    let credentials = wrong.authorization("GET", "/", None, "c").unwrap();
    let refusal = server
        .verify(&credentials, "GET", "/", &users(), later)
        .unwrap_err();
    assert!(matches!(refusal, DigestRefusal::WrongResponse { .. }));
    assert!(!refusal.is_stale());
    // ... and a 401 without stale=true means the credentials were refused.
    assert_eq!(
        wrong.handle_rechallenge(&server.challenges(later, false)),
        Rechallenge::CredentialsRejected
    );
}

#[test]
fn replayed_nonce_count_is_refused() {
    let server = server(&[Algorithm::Sha256]);
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    let mut session = DigestSession::new(chosen, "alice", "wonderland");
    let first = session.authorization("GET", "/", None, "c1").unwrap();
    let second = session.authorization("GET", "/", None, "c2").unwrap();
    let third = session.authorization("GET", "/", None, "c3").unwrap();
    let verify = |c| server.verify(c, "GET", "/", &users(), NOW);
    assert!(verify(&first).is_ok());
    let replay = verify(&first).unwrap_err();
    assert_eq!(replay, DigestRefusal::Replayed { nc: 1 });
    assert!(replay.is_stale());
    // Out of order within the window is fine, once.
    assert!(verify(&third).is_ok());
    assert!(verify(&second).is_ok());
    assert!(verify(&second).is_err());
}

#[test]
fn nonce_counts_window_and_capacity() {
    let mut counts = NonceCounts::new(2);
    assert_eq!(
        counts.record("a", 1, 0, NOW + 9, NOW),
        Err(NonceCountRefusal::Replayed)
    );
    assert!(counts.record("a", 1, 1, NOW + 9, NOW).is_ok());
    assert!(counts.record("a", 1, 100, NOW + 9, NOW).is_ok());
    assert!(counts.record("a", 1, 37, NOW + 9, NOW).is_ok());
    assert_eq!(
        counts.record("a", 1, 37, NOW + 9, NOW),
        Err(NonceCountRefusal::Replayed)
    );
    assert_eq!(
        counts.record("a", 1, 36, NOW + 9, NOW),
        Err(NonceCountRefusal::Replayed)
    );
    assert!(counts.record("b", 2, 1, NOW + 9, NOW).is_ok());
    // Full: "a" (the oldest) is dropped for "c", and is refused from then on.
    assert!(counts.record("c", 3, 1, NOW + 9, NOW).is_ok());
    assert_eq!(counts.len(), 2);
    assert_eq!(
        counts.record("a", 1, 200, NOW + 9, NOW),
        Err(NonceCountRefusal::Forgotten)
    );
    assert!(counts.record("b", 2, 2, NOW + 9, NOW).is_ok());
    // Expired entries go first: "b" and "c" expired, so "d" takes their place.
    assert!(counts.record("d", 4, 1, NOW + 99, NOW + 10).is_ok());
    assert!(counts.record("e", 5, 1, NOW + 99, NOW + 10).is_ok());
    assert_eq!(counts.len(), 2);
}

#[test]
fn server_refusals() {
    let server = server(&[Algorithm::Sha256]);
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    let mut session = DigestSession::new(chosen.clone(), "alice", "wonderland");
    let good = session.authorization("GET", "/wiki/", None, "c").unwrap();
    let verify = |c: &Credentials, target| server.verify(c, "GET", target, &users(), NOW);

    let refusal = verify(&good, "/other").unwrap_err();
    assert!(matches!(refusal, DigestRefusal::UriMismatch { .. }));
    assert_eq!(refusal.status(), 400);

    let edit = |name: &str, value: Option<&str>| {
        let mut params: Vec<AuthParam> = good.data.params().to_vec();
        params.retain(|p| !p.name.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            params.push(AuthParam::new(name, value).unwrap());
        }
        Credentials::new(
            crate::header::Scheme::DIGEST,
            crate::header::AuthData::Params(params),
        )
    };
    for name in [
        "username", "realm", "nonce", "uri", "response", "nc", "cnonce",
    ] {
        let refusal = verify(&edit(name, None), "/wiki/").unwrap_err();
        assert!(
            matches!(refusal, DigestRefusal::Malformed(_)),
            "{name}: {refusal:?}"
        );
        assert_eq!(refusal.status(), 400);
    }
    assert!(matches!(
        verify(&edit("nc", Some("1")), "/wiki/"),
        Err(DigestRefusal::Malformed(_))
    ));
    assert!(matches!(
        verify(&edit("realm", Some("elsewhere")), "/wiki/"),
        Err(DigestRefusal::WrongRealm { .. })
    ));
    assert_eq!(
        verify(&edit("algorithm", Some("MD5")), "/wiki/"),
        Err(DigestRefusal::AlgorithmNotOffered("MD5".into()))
    );
    assert_eq!(
        verify(&edit("qop", None), "/wiki/"),
        Err(DigestRefusal::QopNotOffered("none".into()))
    );
    assert_eq!(
        verify(&edit("qop", Some("auth-int")), "/wiki/"),
        Err(DigestRefusal::QopNotOffered("auth-int".into()))
    );
    let forged = format!("{}A", &chosen.nonce[..chosen.nonce.len() - 1]);
    assert_eq!(
        verify(&edit("nonce", Some(&forged)), "/wiki/"),
        Err(DigestRefusal::InvalidNonce)
    );
    assert_eq!(
        verify(&edit("nonce", Some("short")), "/wiki/"),
        Err(DigestRefusal::InvalidNonce)
    );
    assert!(matches!(
        verify(&edit("username", Some("mallory")), "/wiki/"),
        Err(DigestRefusal::UnknownUser { .. })
    ));
    assert!(matches!(
        verify(&edit("response", Some(&"0".repeat(64))), "/wiki/"),
        Err(DigestRefusal::WrongResponse { .. })
    ));
    assert!(matches!(
        verify(&edit("username*", Some("UTF-8''alice")), "/wiki/"),
        Err(DigestRefusal::Malformed(_))
    ));
    assert!(matches!(
        verify(&Credentials::negotiate(Some(b"x")), "/wiki/"),
        Err(DigestRefusal::NotDigest(_))
    ));
    // The good one still verifies (none of the above used up its nc).
    assert!(verify(&good, "/wiki/").is_ok());
}

#[test]
fn authentication_info_checks_and_nextnonce() {
    let server = server(&[Algorithm::Sha256])
        .with_nonce_lifetime(100)
        .unwrap();
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    let first_nonce = chosen.nonce.clone();
    let mut session = DigestSession::new(chosen, "alice", "wonderland");
    assert_eq!(
        session.verify_authentication_info(&AuthenticationInfo::default(), None),
        Err(DigestError::NoRequestSent)
    );
    let credentials = session.authorization("GET", "/", None, "c1").unwrap();
    // Past half the lifetime, the server sends a nextnonce, which the client adopts.
    let verified = server
        .verify(&credentials, "GET", "/", &users(), NOW + 60)
        .unwrap();
    let info = AuthenticationInfo::parse(verified.authentication_info.as_bytes()).unwrap();
    let next = info.param("nextnonce").unwrap().to_owned();
    assert!(verified.authentication_info.starts_with("rspauth=\""));

    // Mismatched nc or cnonce is refused, and the nextnonce is not adopted.
    let mut wrong_nc = info.clone();
    for p in &mut wrong_nc.params {
        if p.name == "nc" {
            p.value = "00000002".into();
        }
    }
    assert!(matches!(
        session.verify_authentication_info(&wrong_nc, None),
        Err(DigestError::InfoMismatch { param: "nc", .. })
    ));
    assert_eq!(session.challenge().nonce, first_nonce);

    assert_eq!(session.verify_authentication_info(&info, None), Ok(true));
    assert_eq!(session.challenge().nonce, next);
    let credentials = session.authorization("GET", "/", None, "c2").unwrap();
    assert_eq!(param(&credentials, "nc"), "00000001");
    assert!(server
        .verify(&credentials, "GET", "/", &users(), NOW + 61)
        .is_ok());

    // Authentication-Info without rspauth is accepted, and says so.
    let bare = AuthenticationInfo::parse(b"qop=auth").unwrap();
    assert_eq!(session.verify_authentication_info(&bare, None), Ok(false));
}

#[test]
fn secrets_are_redacted_in_debug() {
    let ha1 = Ha1::compute(HashFunction::Sha256, "alice", "intranet", "wonderland");
    let server = server(&[Algorithm::Sha256]);
    let chosen = choose(&server.challenges(NOW, false), &DigestPolicy::default()).unwrap();
    let session = DigestSession::new(chosen, "alice", "wonderland");
    let file = users();
    for shown in [
        format!("{ha1:?}"),
        format!("{session:?}"),
        format!("{server:?}"),
        format!("{file:?}"),
    ] {
        assert!(!shown.contains(ha1.to_hex()), "{shown}");
        assert!(!shown.contains("wonderland"), "{shown}");
        assert!(!shown.contains("42, 42"), "{shown}");
    }
    assert!(format!("{ha1:?}").contains("<redacted>"));
}

#[test]
fn htdigest_parse_lookup_and_errors() {
    let md5 = format_line(
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        HashFunction::Md5,
    )
    .unwrap();
    assert_eq!(
        md5,
        "Mufasa:testrealm@host.com:939e7578ed9e3c518a452acee763bce9"
    );
    let sha = format_line(
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        HashFunction::Sha256,
    )
    .unwrap();
    let (prefix, hex) = sha.rsplit_once(':').unwrap();
    let text = format!(
        "  # comment\r\n\n{md5}\r\n{prefix}:{}\n",
        hex.to_uppercase()
    );
    let file = Htdigest::parse(text.as_bytes()).unwrap();
    assert_eq!(file.entries().len(), 2);
    let found = file
        .lookup("Mufasa", "testrealm@host.com", HashFunction::Sha256)
        .unwrap();
    assert_eq!(
        found.ha1,
        Ha1::compute(
            HashFunction::Sha256,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life"
        )
    );
    assert_eq!(Htdigest::parse(file.to_text().as_bytes()).unwrap(), file);

    let error = |text: &str| Htdigest::parse(text.as_bytes()).unwrap_err();
    let e = error("# ok\nalice:realm\n");
    assert_eq!((e.line, e.kind), (2, HtdigestErrorKind::FieldCount(2)));
    assert_eq!(error("a:b:c:d").kind, HtdigestErrorKind::FieldCount(4));
    assert_eq!(
        error(":r:939e7578ed9e3c518a452acee763bce9").kind,
        HtdigestErrorKind::EmptyUser
    );
    assert_eq!(error("a:r:939e").kind, HtdigestErrorKind::HashLength(4));
    assert_eq!(
        error("a:r:939e7578ed9e3c518a452acee763bcez").kind,
        HtdigestErrorKind::NotHex
    );
    let e = error(&format!("{md5}\n\n{md5}\n"));
    assert_eq!(e.line, 3);
    assert!(
        e.to_string().contains("line 3") && e.to_string().contains("line 1"),
        "{e}"
    );
    assert_eq!(
        Htdigest::parse(b"a:r:\xff").unwrap_err().kind,
        HtdigestErrorKind::NotUtf8
    );

    assert!(format_line("a:b", "r", "p", HashFunction::Md5).is_err());
    assert!(format_line("a", "r\n", "p", HashFunction::Md5).is_err());
    assert!(format_line("", "r", "p", HashFunction::Md5).is_err());
    assert!(format_line("a", "r", "p", HashFunction::Sha512_256).is_err());
}

#[test]
fn algorithm_names_and_ranks() {
    for a in Algorithm::ALL {
        assert_eq!(Algorithm::parse(&a.as_str().to_lowercase()), Some(a));
        assert_eq!(Algorithm::new(a.hash(), a.is_session()), a);
    }
    let mut sorted = Algorithm::ALL;
    sorted.sort_by_key(|a| std::cmp::Reverse(a.strength()));
    assert_eq!(sorted, Algorithm::ALL);
    assert_eq!(Algorithm::parse("SHA-1"), None);
}
