//! `crates/kerbside-server/examples/axum.rs`, built with cargo and run as a process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use kerbside_testkit::{TestCert, TestRealm};

use super::{clean_env, text, GateProcess};

/// Builds `examples/axum.rs` once per test binary and returns its path.
pub fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--locked",
                    "-p",
                    "kerbside-server",
                    "--example",
                    "axum",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "cargo build --example axum: {:?}",
                text(&out)
            );
            // This test is target/<profile>/deps/axum_example-<hash>; the example is
            // target/<profile>/examples/axum.
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let path = profile_dir.join("examples").join("axum");
            assert!(path.exists(), "{} was not built", path.display());
            path
        })
        .clone()
}

/// Runs the example with the realm's keytab, over TLS with `cert` when given.
pub fn start(realm: &TestRealm, cert: Option<&TestCert>) -> GateProcess {
    let mut cmd = Command::new(example());
    clean_env(&mut cmd);
    cmd.envs(realm.env())
        .args(["--listen", "127.0.0.1:0", "--keytab"])
        .arg(realm.keytab());
    if let Some(cert) = cert {
        cmd.arg("--tls-cert")
            .arg(cert.cert_pem_path())
            .arg("--tls-key")
            .arg(cert.key_pem_path());
    }
    GateProcess::from_command(cmd)
}
