//! The ceiling for any Negotiate server: a bare `gss_accept_sec_context` loop, no HTTP.
//!
//! Makes N SPNEGO tokens first (an initiator per token, tickets from a client keytab
//! in a memory cache), then times only the accepts, on one thread, with the thread's
//! CPU time from `getrusage(RUSAGE_THREAD)` (microseconds). Run with the realm's
//! environment (`KRB5_CONFIG`):
//!
//! ```text
//! cargo run --release -p kerbside-gssapi --example accept_loop -- \
//!     --keytab http.keytab --client-keytab alice.keytab --principal alice@EXAMPLE.TEST \
//!     --service HTTP@localhost -n 5000 --replay-cache mit   # or: off, memory, file
//! ```
//!
//! `--replay-cache mit` is MIT's file cache (under `KRB5RCACHEDIR`), `off` is none
//! (credential store `rcache` = `none:`), `memory` is the gate's in-memory cache, `file`
//! the same kept in the gate's replay cache file (default place, under `KRB5RCACHEDIR`,
//! one append per accept), as the gate runs it. Prints
//! one JSON line: `{"replay_cache":"mit","accepts":5000,"cpu_us_per_accept":..,..}`.
//! `--print-token` prints one token in base64 and exits (for test data).
#![allow(unsafe_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kerbside_gssapi::{
    AcceptStep, AcceptorConfig, ClientCredentials, Delegation, InitiatorConfig, NegotiateAcceptor,
    NegotiateInitiator, ReplayCheck,
};
use kerbside_proto::{Mechanism, MutualAuth, Step};

struct Args {
    keytab: PathBuf,
    client_keytab: PathBuf,
    principal: Option<String>,
    service: String,
    count: usize,
    replay_cache: String,
    print_token: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        keytab: PathBuf::new(),
        client_keytab: PathBuf::new(),
        principal: None,
        service: "HTTP@localhost".to_owned(),
        count: 2000,
        replay_cache: "mit".to_owned(),
        print_token: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--keytab" => args.keytab = value()?.into(),
            "--client-keytab" => args.client_keytab = value()?.into(),
            "--principal" => args.principal = Some(value()?),
            "--service" => args.service = value()?,
            "-n" => args.count = value()?.parse().map_err(|e| format!("-n: {e}"))?,
            "--replay-cache" => args.replay_cache = value()?,
            "--print-token" => args.print_token = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.client_keytab.as_os_str().is_empty() {
        return Err("--client-keytab is required".to_owned());
    }
    Ok(args)
}

fn token(config: &InitiatorConfig) -> Vec<u8> {
    let mut init = NegotiateInitiator::new(config).unwrap();
    match init.step(None).unwrap() {
        Step::Continue(t) | Step::Done(Some(t)) => t,
        Step::Done(None) => panic!("no token"),
    }
}

/// This thread's CPU time (user + system).
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("accept_loop: {e}");
        std::process::exit(1);
    });
    let config = InitiatorConfig {
        target: args.service.clone(),
        mutual: MutualAuth::Off,
        delegation: Delegation::None,
        credentials: ClientCredentials::Keytab {
            path: args.client_keytab.clone(),
            principal: args.principal.clone(),
        },
        channel_bindings: None,
    };
    if args.print_token {
        use std::io::Write as _;
        let t = token(&config);
        let _ = writeln!(std::io::stdout(), "{}", b64(&t));
        return;
    }
    let acceptor_config = AcceptorConfig {
        keytab: (!args.keytab.as_os_str().is_empty()).then(|| args.keytab.clone()),
        acceptor_name: None,
    };
    let acceptor = match args.replay_cache.as_str() {
        "mit" => NegotiateAcceptor::new(&acceptor_config),
        "off" => NegotiateAcceptor::with_replay_check(&acceptor_config, ReplayCheck::Off),
        "memory" => NegotiateAcceptor::new(&acceptor_config)
            .and_then(|a| a.with_memory_replay_cache(Duration::from_secs(300))),
        "file" => NegotiateAcceptor::new(&acceptor_config).and_then(|a| {
            a.with_replay_file(Duration::from_secs(300), None)
                .map_err(|e| panic!("the replay cache file: {e}"))
        }),
        other => {
            eprintln!("accept_loop: --replay-cache {other}: use mit, off, memory or file");
            std::process::exit(1);
        }
    }
    .unwrap();
    let made = Instant::now();
    // The first token fetches the service ticket; one accept warms the keytab.
    let _ = acceptor.accept(&token(&config)).unwrap();
    let tokens: Vec<Vec<u8>> = (0..args.count).map(|_| token(&config)).collect();
    let making = made.elapsed();

    let cpu0 = thread_cpu();
    let wall0 = Instant::now();
    let mut failed = 0;
    for t in &tokens {
        match acceptor.accept(t) {
            Ok(AcceptStep::Done { .. }) => {}
            _ => failed += 1,
        }
    }
    let wall = wall0.elapsed();
    let cpu = thread_cpu() - cpu0;
    let n = tokens.len().max(1) as f64;
    println!(
        "{{\"replay_cache\":\"{}\",\"accepts\":{},\"failed\":{failed},\"cpu_us_per_accept\":{:.1},\"wall_us_per_accept\":{:.1},\"token_bytes\":{},\"making_tokens_s\":{:.2},\"accepted_directly\":{}}}",
        args.replay_cache,
        tokens.len(),
        cpu.as_secs_f64() * 1e6 / n,
        wall.as_secs_f64() * 1e6 / n,
        tokens.first().map_or(0, Vec::len),
        making.as_secs_f64(),
        kerbside_gssapi::accepted_directly(),
    );
    if failed > 0 {
        std::process::exit(2);
    }
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
