//! Initiator credentials kept across exchanges, against a real MIT KDC
//! (kerbside-testkit) and MIT's own `kinit`: 200 exchanges share one credential
//! and do not open the ticket cache file (counted with inotify); a touched cache,
//! another principal's ticket, `kdestroy` and a new `kinit` are each noticed at the
//! next exchange; a burst of first tokens after `kinit` sends one TGS request; a
//! `DIR:` collection follows `kinit` of another principal and `kswitch`; a client
//! keytab's credential is kept until the keytab changes.
// inotify (through libc) counts the opens of the ticket cache file.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use kerbside_gssapi::{
    AcceptStep, AcceptorConfig, ClientCredentials, GssError, InitiatorConfig, NegotiateAcceptor,
    NegotiateInitiator, Problem,
};
use kerbside_proto::{Mechanism, Step};
use kerbside_testkit::TestRealm;

fn first_token(config: &InitiatorConfig) -> Result<(NegotiateInitiator, Vec<u8>), GssError> {
    // Every test here is about the kept copies (process-wide; this binary only).
    kerbside_gssapi::keep_ticket_cache_copies();
    let mut init = NegotiateInitiator::new(config)?;
    let token = match init.step(None)? {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no first token"),
    };
    Ok((init, token))
}

/// The client principal the acceptor sees in `token`.
fn client_of(acceptor: &NegotiateAcceptor, token: &[u8]) -> String {
    let AcceptStep::Done { principal, .. } = acceptor.accept(token).unwrap() else {
        panic!("Kerberos completes in one leg");
    };
    principal
}

/// Counts the opens of one file with inotify (open and close events alternate, so
/// the kernel does not merge repeated opens into one event).
struct OpenCounter(i32);

impl OpenCounter {
    fn watch(file: &Path) -> Self {
        let path = CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: plain syscalls on a descriptor this test owns; `path` is alive.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0, "inotify_init1");
            let mask = libc::IN_OPEN | libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE;
            assert!(libc::inotify_add_watch(fd, path.as_ptr(), mask) >= 0);
            Self(fd)
        }
    }

    /// The opens since the last call.
    fn opens(&self) -> usize {
        let mut opens = 0;
        let mut buf = [0u8; 64 * 1024];
        loop {
            // SAFETY: reads into a buffer this function owns.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return opens;
            }
            let mut at = 0;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n as usize {
                // SAFETY: the kernel wrote whole events; read_unaligned copies one header.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
                if event.mask & libc::IN_OPEN != 0 {
                    opens += 1;
                }
                at += header + event.len as usize;
            }
        }
    }
}

impl Drop for OpenCounter {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns, once.
        unsafe { libc::close(self.0) };
    }
}

/// Sets a file's modification time to now + `seconds`.
fn set_modified(file: &Path, seconds: i64) {
    let now = std::time::SystemTime::now();
    let delta = std::time::Duration::from_secs(seconds.unsigned_abs());
    let when = if seconds < 0 {
        now - delta
    } else {
        now + delta
    };
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn kdc_tgs_requests(realm: &TestRealm) -> usize {
    realm.kdc_log().matches("TGS_REQ").count()
}

#[test]
fn one_credential_serves_every_exchange_until_the_ticket_cache_changes() {
    let realm = TestRealm::start().unwrap();
    let cache = realm.dir().join("kept.ccache");
    realm.kinit("alice", "alice-password", &cache).unwrap();
    // A cache written a while ago: its identity alone is trusted (a file changed
    // within the last seconds is also compared byte for byte at each exchange).
    set_modified(&cache, -10);
    let _env = realm.enter();
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .unwrap();
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials = ClientCredentials::Ccache(format!("FILE:{}", cache.display()));

    // The first exchange copies the cache (and gets the service ticket into the copy).
    let (init, token) = first_token(&config).unwrap();
    assert_eq!(client_of(&acceptor, &token), "alice@EXAMPLE.TEST");
    let first = init.credential_generation().expect("a FILE: cache is kept");

    let opens = OpenCounter::watch(&cache);
    let mut generations = HashSet::new();
    for i in 0..200 {
        let (init, token) = first_token(&config).unwrap();
        generations.insert(init.credential_generation());
        if i % 50 == 0 {
            assert_eq!(client_of(&acceptor, &token), "alice@EXAMPLE.TEST");
        }
    }
    assert_eq!(generations, HashSet::from([Some(first)]));
    assert_eq!(opens.opens(), 0, "the cache file was opened");

    // Touching the file makes a new credential, kept from then on.
    set_modified(&cache, -5);
    let (init, token) = first_token(&config).unwrap();
    let touched = init.credential_generation().unwrap();
    assert_ne!(touched, first);
    assert_eq!(client_of(&acceptor, &token), "alice@EXAMPLE.TEST");
    let (init, _) = first_token(&config).unwrap();
    assert_eq!(init.credential_generation(), Some(touched));

    // Another principal's ticket in the same file is used at the next exchange,
    // and a burst of first tokens right after asks the KDC for one service ticket
    // (the first token of a new generation is made alone, first_token.rs; MIT also
    // locks a shared credential while it gets a service ticket).
    realm.kinit("bob", "bob-password", &cache).unwrap();
    let before = kdc_tgs_requests(&realm);
    let all_made = std::sync::Barrier::new(16);
    let tokens: Vec<Vec<u8>> = std::thread::scope(|s| {
        let burst: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let mut init = NegotiateInitiator::new(&config)?;
                    all_made.wait();
                    match init.step(None)? {
                        Step::Continue(t) | Step::Done(Some(t)) => Ok::<_, GssError>(t),
                        Step::Done(None) => panic!("no first token"),
                    }
                })
            })
            .collect();
        burst
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect()
    });
    for token in &tokens {
        assert_eq!(client_of(&acceptor, token), "bob@EXAMPLE.TEST");
    }
    assert_eq!(kdc_tgs_requests(&realm) - before, 1, "{}", realm.kdc_log());

    // kdestroy: the next exchange says what to do; kinit again: it works again.
    std::fs::remove_file(&cache).unwrap();
    let err = first_token(&config).unwrap_err();
    assert_eq!(err.problem(), Problem::NoCredentials, "{err}");
    assert!(err.to_string().contains("run kinit"), "{err}");
    realm.kinit("alice", "alice-password", &cache).unwrap();
    let (init, token) = first_token(&config).unwrap();
    assert_eq!(client_of(&acceptor, &token), "alice@EXAMPLE.TEST");
    assert!(init.credential_generation().unwrap() > touched);
}

#[test]
fn a_client_keytab_credential_is_kept_until_the_keytab_changes() {
    let realm = TestRealm::start().unwrap();
    let keytab = realm.dir().join("bob.keytab");
    realm.export_keytab(&["bob"], &keytab).unwrap();
    let _env = realm.enter();
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .unwrap();
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials = ClientCredentials::Keytab {
        path: keytab.clone(),
        principal: Some("bob@EXAMPLE.TEST".into()),
    };
    let (init, token) = first_token(&config).unwrap();
    assert_eq!(client_of(&acceptor, &token), "bob@EXAMPLE.TEST");
    let kept = init
        .credential_generation()
        .expect("a keytab credential is kept");
    for _ in 0..20 {
        let (init, _) = first_token(&config).unwrap();
        assert_eq!(init.credential_generation(), Some(kept));
    }
    realm.export_keytab(&["alice"], &keytab).unwrap();
    let (init, token) = first_token(&config).unwrap();
    assert_ne!(init.credential_generation(), Some(kept));
    assert_eq!(client_of(&acceptor, &token), "bob@EXAMPLE.TEST");
}

/// MIT's `kinit user` (or another tool) with `KRB5CCNAME=ccache`, the password on stdin.
fn run_with_cache(realm: &TestRealm, ccache: &str, args: &[&str], stdin: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("setsid")
        .arg("-w")
        .args(args)
        .envs(realm.env())
        .env("KRB5CCNAME", ccache)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn a_dir_collection_follows_kinit_of_another_principal_and_kswitch() {
    let realm = TestRealm::start().unwrap();
    let dir = realm.dir().join("collection");
    std::fs::create_dir(&dir).unwrap();
    let collection = format!("DIR:{}", dir.display());
    run_with_cache(&realm, &collection, &["kinit", "alice"], "alice-password\n");
    let _env = realm.enter();
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .unwrap();
    let mut config = InitiatorConfig::for_host("localhost");
    config.credentials = ClientCredentials::Ccache(collection.clone());
    let (init, token) = first_token(&config).unwrap();
    assert_eq!(client_of(&acceptor, &token), "alice@EXAMPLE.TEST");
    let alice = init.credential_generation().expect("a DIR: cache is kept");
    let (init, _) = first_token(&config).unwrap();
    assert_eq!(init.credential_generation(), Some(alice));

    // kinit bob makes a new cache in the collection and makes it the primary one.
    run_with_cache(&realm, &collection, &["kinit", "bob"], "bob-password\n");
    let (init, token) = first_token(&config).unwrap();
    assert_eq!(client_of(&acceptor, &token), "bob@EXAMPLE.TEST");
    assert_ne!(init.credential_generation(), Some(alice));
    // kswitch back to alice: her cache is primary again.
    run_with_cache(&realm, &collection, &["kswitch", "-p", "alice"], "");
    let (_, token) = first_token(&config).unwrap();
    assert_eq!(client_of(&acceptor, &token), "alice@EXAMPLE.TEST");
}
