//! Headless Firefox for the browser tests: a fresh profile that trusts the test CA
//! and, when asked, does Negotiate with `localhost` without a prompt.

use std::path::Path;
use std::process::Command;

use kerbside_testkit::TestCa;

use super::text;

/// A Firefox profile that trusts the test CA and, when `negotiate` is set, does
/// Negotiate with `localhost` without asking.
pub fn make_profile(dir: &Path, ca: &TestCa, negotiate: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut prefs = vec![
        ("network.proxy.type", "0"),
        // Keep a headless run to the one page: no first-run pages, no background calls.
        ("browser.shell.checkDefaultBrowser", "false"),
        ("browser.startup.homepage_override.mstone", "\"ignore\""),
        ("browser.aboutwelcome.enabled", "false"),
        ("datareporting.policy.dataSubmissionEnabled", "false"),
        ("datareporting.healthreport.uploadEnabled", "false"),
        ("toolkit.telemetry.enabled", "false"),
        ("app.update.enabled", "false"),
        ("app.normandy.enabled", "false"),
        ("browser.safebrowsing.malware.enabled", "false"),
        ("browser.safebrowsing.phishing.enabled", "false"),
        ("browser.safebrowsing.downloads.enabled", "false"),
        ("network.captive-portal-service.enabled", "false"),
        ("network.connectivity-service.enabled", "false"),
        ("extensions.update.enabled", "false"),
        ("services.settings.server", "\"http://127.0.0.1:9/\""),
        ("network.dns.disablePrefetch", "true"),
        ("network.prefetch-next", "false"),
    ];
    if negotiate {
        // Which sites may ask for a ticket; a bare host name is fine.
        prefs.push(("network.negotiate-auth.trusted-uris", "\"localhost\""));
        prefs.push(("network.negotiate-auth.allow-non-fqdn", "true"));
        prefs.push(("network.negotiate-auth.delegation-uris", "\"\""));
    }
    let user_js: String = prefs
        .iter()
        .map(|(name, value)| format!("user_pref(\"{name}\", {value});\n"))
        .collect();
    std::fs::write(dir.join("user.js"), user_js).unwrap();

    let db = format!("sql:{}", dir.display());
    let certutil = |args: &[&str]| {
        let out = Command::new("certutil").args(args).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "certutil {args:?}: {stdout}{stderr}");
    };
    certutil(&["-N", "-d", &db, "--empty-password"]);
    let ca_pem = ca.ca_pem_path().to_str().unwrap();
    certutil(&[
        "-A",
        "-d",
        &db,
        "-n",
        "kerbside-test-ca",
        "-t",
        "C,,",
        "-i",
        ca_pem,
    ]);
}

/// How long Firefox may take to start, load the page and write the screenshot.
pub const FIREFOX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// What one headless run of Firefox did.
pub struct Run {
    /// Its exit status; `None` when it did not finish within [`FIREFOX_TIMEOUT`].
    pub status: Option<std::process::ExitStatus>,
    /// Its standard output and error, as text.
    pub stdout: String,
    /// Its standard error, as text.
    pub stderr: String,
    /// How long it ran.
    pub took: std::time::Duration,
}

/// A page for headless Firefox to take a screenshot of.
pub struct Shot<'a> {
    /// Where its home and fresh profile go (see [`make_profile`]).
    pub dir: &'a Path,
    /// The CA the profile trusts.
    pub ca: &'a TestCa,
    /// Whether the profile does Negotiate with `localhost`.
    pub negotiate: bool,
    /// Arguments before `--screenshot` (e.g. `--window-size`).
    pub extra: &'a [&'a str],
    /// Where the screenshot goes.
    pub png: &'a Path,
    /// The page.
    pub url: &'a str,
}

/// Runs headless Firefox with the environment `env` for `shot`. `give_up()` is asked
/// every 100 ms; when it says so, or after [`FIREFOX_TIMEOUT`] (then `status` is
/// `None`), Firefox is killed.
pub fn screenshot<K, V>(
    shot: &Shot<'_>,
    env: impl IntoIterator<Item = (K, V)>,
    mut give_up: impl FnMut() -> bool,
) -> Run
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let home = shot.dir.join("firefox-home");
    let profile = shot.dir.join("firefox-profile");
    std::fs::create_dir_all(&home).unwrap();
    make_profile(&profile, shot.ca, shot.negotiate);
    let mut cmd = Command::new("firefox-esr");
    super::clean_env(&mut cmd);
    cmd.envs(env)
        .env("HOME", &home)
        .env("MOZ_HEADLESS", "1")
        .env("MOZ_CRASHREPORTER_DISABLE", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .args(["--headless", "--no-remote", "--profile"])
        .arg(&profile)
        .args(shot.extra)
        .arg("--screenshot")
        .arg(shot.png)
        .arg(shot.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("firefox-esr: {e}: run scripts/install-deps.sh"));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > FIREFOX_TIMEOUT {
            let _ = child.kill();
            break None;
        }
        if give_up() {
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    Run {
        status,
        stdout,
        stderr,
        took: started.elapsed(),
    }
}
