//! The PAC functions, the limits and the errors, through the engine.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Evaluates `expression` (inside FindProxyForURL) and returns it as a string.
fn eval_with(engine: &PacEngine, expression: &str) -> Result<String, PacError> {
    block(async {
        engine
            .load(format!(
                "function FindProxyForURL(url, host) {{ return String({expression}); }}"
            ))
            .await?;
        engine.find_proxy("http://h.example/p", "h.example").await
    })
}

fn eval(expression: &str) -> String {
    let engine = PacEngine::start(PacLimits::default()).unwrap();
    eval_with(&engine, expression).unwrap()
}

#[test]
fn the_standard_functions() {
    let engine = PacEngine::start(PacLimits::default()).unwrap();
    let cases = [
        ("isPlainHostName('www')", "true"),
        ("isPlainHostName('www.corp.example')", "false"),
        ("dnsDomainIs('www.corp.example', '.corp.example')", "true"),
        ("dnsDomainIs('www', '.corp.example')", "false"),
        ("localHostOrDomainIs('www', 'www.corp.example')", "true"),
        (
            "localHostOrDomainIs('www.corp.example', 'www.corp.example')",
            "true",
        ),
        (
            "localHostOrDomainIs('www.other.example', 'www.corp.example')",
            "false",
        ),
        ("dnsDomainLevels('www')", "0"),
        ("dnsDomainLevels('www.corp.example')", "2"),
        (
            "shExpMatch('http://home.corp.example/x/y', '*/x/*')",
            "true",
        ),
        ("shExpMatch('www.corp.example', '*.corp.example')", "true"),
        (
            "shExpMatch('wwwXcorp.example', 'www.corp.example')",
            "false",
        ),
        ("shExpMatch('ab', 'a?')", "true"),
        ("shExpMatch('a(b', 'a(*')", "true"),
        ("convert_addr('104.16.41.2')", "1745889538"),
        ("isInNet('10.1.2.3', '10.0.0.0', '255.0.0.0')", "true"),
        ("isInNet('11.1.2.3', '10.0.0.0', '255.0.0.0')", "false"),
        ("isInNet('localhost', '127.0.0.0', '255.0.0.0')", "true"),
        (
            "isInNet('no-such-host.invalid', '0.0.0.0', '0.0.0.0')",
            "false",
        ),
        ("isInNet('10.1.2.3', 'nonsense', '255.0.0.0')", "false"),
        ("dnsResolve('localhost')", "127.0.0.1"),
        ("dnsResolve('no-such-host.invalid')", "null"),
        ("dnsResolve('a b')", "null"),
        ("isResolvable('localhost')", "true"),
        ("isResolvable('no-such-host.invalid')", "false"),
        ("dnsResolveEx('no-such-host.invalid')", ""),
        ("isResolvableEx('no-such-host.invalid')", "false"),
        ("weekdayRange('SUN', 'SAT')", "true"),
        ("weekdayRange('SUN', 'SAT', 'GMT')", "true"),
        ("weekdayRange('XYZ')", "false"),
        ("timeRange(0, 24)", "true"),
        ("timeRange(0, 0, 23, 59, 'GMT')", "true"),
        ("timeRange('nonsense')", "false"),
        ("dateRange(1, 31)", "true"),
        ("dateRange('JAN', 'DEC')", "true"),
        ("dateRange(1995, 1996)", "false"),
        ("dateRange()", "false"),
        ("typeof alert('hello')", "undefined"),
    ];
    for (expression, want) in cases {
        assert_eq!(
            eval_with(&engine, expression).unwrap(),
            want,
            "{expression}"
        );
    }
    assert_eq!(eval("myIpAddress()"), native::my_ip_address().to_string());
}

#[test]
fn the_time_functions_read_the_clock_they_are_given() {
    // Wednesday 2026-12-09 13:30:00 UTC.
    let engine = PacEngine::start(PacLimits::default()).unwrap();
    let script = |expression: &str| {
        format!(
            "function __kerbside_now() {{ return new Date(Date.UTC(2026, 11, 9, 13, 30, 0)); }}
             function FindProxyForURL(url, host) {{ return String({expression}); }}"
        )
    };
    let cases = [
        ("weekdayRange('MON', 'FRI', 'GMT')", "true"),
        ("weekdayRange('WED', 'GMT')", "true"),
        ("weekdayRange('SAT', 'TUE', 'GMT')", "false"),
        ("weekdayRange('FRI', 'WED', 'GMT')", "true"),
        ("timeRange(13, 'GMT')", "true"),
        ("timeRange(9, 13, 'GMT')", "false"),
        ("timeRange(9, 14, 'GMT')", "true"),
        ("timeRange(13, 0, 13, 29, 'GMT')", "false"),
        ("timeRange(13, 30, 0, 13, 30, 0, 'GMT')", "true"),
        ("timeRange(22, 2, 'GMT')", "false"),
        ("dateRange(9, 'GMT')", "true"),
        ("dateRange('DEC', 'GMT')", "true"),
        ("dateRange(2026, 'GMT')", "true"),
        ("dateRange('NOV', 'JAN', 'GMT')", "true"),
        ("dateRange(1, 'DEC', 2026, 8, 'DEC', 2026, 'GMT')", "false"),
        ("dateRange(1, 'DEC', 2026, 9, 'DEC', 2026, 'GMT')", "true"),
        ("dateRange(1, 'DEC', 2026, 'GMT')", "false"),
    ];
    for (expression, want) in cases {
        let got = block(async {
            engine.load(script(expression)).await.unwrap();
            engine.find_proxy("http://h/", "h").await.unwrap()
        });
        assert_eq!(got, want, "{expression}");
    }
}

#[test]
fn a_script_that_loops_forever_meets_the_time_limit_and_the_engine_recovers() {
    let limits = PacLimits {
        time: Duration::from_millis(200),
        ..PacLimits::default()
    };
    let engine = PacEngine::start(limits).unwrap();
    block(async {
        engine
            .load(
                "function FindProxyForURL(url, host) {
                     if (host === 'loop') { for (;;) { try { } catch (e) { } } }
                     return 'DIRECT';
                 }"
                .into(),
            )
            .await
            .unwrap();
        let started = Instant::now();
        let e = engine.find_proxy("http://loop/", "loop").await.unwrap_err();
        assert_eq!(e, PacError::TimeLimit(limits.time));
        assert!(
            e.to_string().contains("longer than the limit of 200 ms"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // The next call runs in a fresh runtime.
        assert_eq!(engine.find_proxy("http://a/", "a").await.unwrap(), "DIRECT");
        // A top level that never ends is refused at load.
        let e = engine.load("for (;;) {}".into()).await.unwrap_err();
        assert_eq!(e, PacError::TimeLimit(limits.time));
        assert_eq!(
            engine.find_proxy("http://a/", "a").await.unwrap_err(),
            PacError::NotLoaded
        );
    });
}

#[test]
fn a_script_that_eats_memory_meets_the_memory_limit() {
    let limits = PacLimits {
        memory: 8 << 20,
        ..PacLimits::default()
    };
    let engine = PacEngine::start(limits).unwrap();
    block(async {
        engine
            .load(
                "function FindProxyForURL(url, host) {
                     if (host === 'big') { var a = []; for (;;) { a.push('x'.repeat(1000) + a.length); } }
                     if (host === 'deep') { return (function f(n) { return f(n + 1) + 1; })(0); }
                     return 'DIRECT';
                 }"
                .into(),
            )
            .await
            .unwrap();
        let e = engine.find_proxy("http://big/", "big").await.unwrap_err();
        assert_eq!(e, PacError::MemoryLimit(limits.memory), "{e}");
        let e = engine.find_proxy("http://deep/", "deep").await.unwrap_err();
        assert_eq!(e, PacError::MemoryLimit(limits.memory), "{e}");
        assert_eq!(engine.find_proxy("http://a/", "a").await.unwrap(), "DIRECT");
    });
}

#[test]
fn broken_scripts_say_what_is_wrong() {
    let engine = PacEngine::start(PacLimits::default()).unwrap();
    block(async {
        let e = engine
            .load("function FindProxyForURL(url, host) {".into())
            .await;
        assert!(matches!(e, Err(PacError::Script(_))), "{e:?}");
        let e = engine.load("var x = 1;".into()).await;
        assert_eq!(e, Err(PacError::NoFunction));
        let e = engine.load("throw new Error('boom');".into()).await;
        assert!(
            matches!(&e, Err(PacError::Script(m)) if m.contains("boom")),
            "{e:?}"
        );
        engine
            .load(
                "function FindProxyForURL(url, host) {
                     if (host === 'n') return 42;
                     if (host === 't') throw new TypeError('bad host');
                     if (host === 'nl') throw new Error('line one\\nFAKE LOG LINE');
                     return undefinedFunction();
                 }"
                .into(),
            )
            .await
            .unwrap();
        let e = engine.find_proxy("http://n/", "n").await.unwrap_err();
        assert_eq!(e, PacError::NotAString("int".into()));
        let e = engine.find_proxy("http://t/", "t").await.unwrap_err();
        assert!(
            matches!(&e, PacError::Exception(m) if m.contains("bad host")),
            "{e:?}"
        );
        let e = engine.find_proxy("http://nl/", "nl").await.unwrap_err();
        assert!(!e.to_string().contains('\n'), "one line in the log: {e:?}");
        let e = engine.find_proxy("http://u/", "u").await.unwrap_err();
        assert!(
            matches!(&e, PacError::Exception(m) if m.contains("undefinedFunction")),
            "{e:?}"
        );
        engine.unload();
        assert_eq!(
            engine.find_proxy("http://a/", "a").await.unwrap_err(),
            PacError::NotLoaded
        );
    });
}

/// Seeds of `fuzz/corpus/pac_script`, replayed through the fuzz target's check.
#[test]
fn seed_corpus_passes_the_fuzz_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pac_script");
    let mut seen = 0;
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            fuzz_check(&std::fs::read(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 4, "the seed corpus went missing ({seen} files)");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the url, host and pattern, the functions answer: no exception,
    /// no hang, no crash.
    #[test]
    fn any_input_gets_an_answer(url in ".{0,80}", host in ".{0,40}", pattern in ".{0,20}") {
        let engine = PacEngine::start(PacLimits::default()).unwrap();
        let got = block(async {
            // The pattern as UTF-16 code units: no escaping to get wrong.
            let codes: Vec<String> = pattern.encode_utf16().map(|c| c.to_string()).collect();
            engine.load(format!(
                "function FindProxyForURL(url, host) {{
                     var p = String.fromCharCode({codes});
                     return [shExpMatch(url, p), dnsDomainIs(host, p),
                             localHostOrDomainIs(host, p), isPlainHostName(host),
                             dnsDomainLevels(host), isInNet(host, '10.0.0.0', '255.0.0.0'),
                             convert_addr(host)].join(',');
                 }}",
                codes = codes.join(","),
            )).await.unwrap();
            engine.find_proxy(&url, &host).await
        });
        prop_assert!(got.is_ok(), "{got:?}");
    }
}
