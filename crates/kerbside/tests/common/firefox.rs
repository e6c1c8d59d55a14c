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
