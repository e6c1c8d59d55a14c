//! The Debian package (`scripts/package.sh`, cargo-deb) as a user gets it: lintian finds no
//! error in it, and in a fresh Debian 12 root (`debootstrap --variant=minbase`, cached
//! between runs) it installs with `dpkg -i`, `kerbside --version` runs, `man
//! kerbside-gate` opens, the gate's user and private configuration directory exist, and
//! `systemd-analyze verify` accepts every unit.
//!
//! The package holds the debug binary the tests were built with (`KERBSIDE_PACKAGE_PROFILE=dev`):
//! a release build would cost CI minutes and prove nothing more about the packaging.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kerbside_testkit::require_tool;

/// Where the minimal Debian 12 root is kept between runs, as a tarball.
const ROOT_CACHE: &str = "/var/cache/kerbside-tests/debian12-minbase-v1.tar";

/// What the cached root holds besides minbase: the package's dependencies, `man` and
/// `systemd-analyze`.
const ROOT_PACKAGES: &str = "libgssapi-krb5-2,adduser,man-db,systemd";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the .deb into `dir` and returns its path.
fn build_package(dir: &Path) -> PathBuf {
    require_tool(
        "cargo-deb",
        "cargo-deb (cargo install cargo-deb; scripts/install-deps.sh)",
    );
    let out = run(
        "scripts/package.sh",
        Command::new(workspace().join("scripts/package.sh"))
            .env("KERBSIDE_PACKAGE_PROFILE", "dev")
            .env("KERBSIDE_PACKAGE_OUT", dir),
    );
    let deb = fs::read_dir(dir)
        .expect("read the output directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("package.sh made no .deb: {}", text(&out)));
    assert!(
        deb.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("kerbside_0.1.0-1_amd64")),
        "unexpected package name {}",
        deb.display()
    );
    deb
}

/// A fresh Debian 12 root in `dir`: unpacked from the cache, made by debootstrap once.
fn debian_root(dir: &Path) -> PathBuf {
    require_tool("debootstrap", "debootstrap");
    let cache = Path::new(ROOT_CACHE);
    if !cache.exists() {
        let parent = cache.parent().expect("the cache has a directory");
        fs::create_dir_all(parent).expect("make the cache directory");
        let build = tempfile::tempdir_in(parent).expect("a directory for debootstrap");
        let root = build.path().join("root");
        run(
            "debootstrap (a minimal Debian 12, about 2 minutes on first use)",
            Command::new("debootstrap")
                .arg("--variant=minbase")
                .arg(format!("--include={ROOT_PACKAGES}"))
                .args(["bookworm"])
                .arg(&root)
                .arg("http://deb.debian.org/debian"),
        );
        let partial = cache.with_extension("tar.partial");
        run(
            "tar (caching the root)",
            Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&partial)
                .arg("."),
        );
        fs::rename(&partial, cache).expect("publish the cached root");
    }
    let root = dir.join("root");
    fs::create_dir_all(&root).expect("make the root");
    run(
        "tar (unpacking the cached root)",
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-xf")
            .arg(cache),
    );
    root
}

fn in_root(root: &Path, what: &str, script: &str) -> Output {
    run(
        what,
        Command::new("chroot")
            .arg(root)
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8"),
    )
}

#[test]
fn the_debian_package_passes_lintian_and_installs_into_a_fresh_debian_12() {
    require_tool("lintian", "lintian");
    require_tool("chroot", "coreutils");
    let work = tempfile::tempdir().expect("a temp dir");
    let deb = build_package(&work.path().join("out"));

    // lintian: no errors (warnings such as "initial upload closes no bugs" are fine).
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error"])
        .arg(&deb)
        .output()
        .expect("run lintian");
    let report = String::from_utf8_lossy(&lintian.stdout);
    assert!(
        lintian.status.success() && !report.lines().any(|l| l.starts_with("E:")),
        "lintian found errors:\n{report}"
    );

    let contents = text(&run(
        "dpkg-deb -c",
        Command::new("dpkg-deb").arg("-c").arg(&deb),
    ));
    for path in [
        "./usr/bin/kerbside",
        "./usr/share/man/man1/kerbside-gate.1.gz",
        "./usr/share/man/man1/kerbside-fetch.1.gz",
        "./usr/share/bash-completion/completions/kerbside",
        "./usr/share/zsh/vendor-completions/_kerbside",
        "./usr/share/fish/vendor_completions.d/kerbside.fish",
        "./etc/kerbside/gate.toml",
        "./usr/lib/systemd/system/kerbside-gate.service",
        "./usr/lib/systemd/user/kerbside-tunnel@.service",
        "./usr/lib/systemd/user/kerbside-proxy.service",
        "./usr/share/doc/kerbside/configuration.md",
    ] {
        assert!(
            contents.contains(path),
            "the package lacks {path}:\n{contents}"
        );
    }

    let root = debian_root(work.path());
    fs::copy(&deb, root.join("tmp/kerbside.deb")).expect("copy the package into the root");
    in_root(&root, "dpkg -i", "dpkg -i /tmp/kerbside.deb");

    let version = text(&in_root(&root, "kerbside --version", "kerbside --version"));
    assert_eq!(version.trim(), "kerbside 0.1.0");

    let page = text(&in_root(
        &root,
        "man kerbside-gate",
        "MANWIDTH=100 man -P cat kerbside-gate",
    ));
    assert!(
        page.contains("kerbside-gate") && page.contains("--keytab"),
        "man kerbside-gate:\n{page}"
    );

    // The gate's own user, and a configuration directory only it (and root) can read.
    let user = text(&in_root(&root, "getent", "getent passwd kerbside"));
    assert!(user.contains("/usr/sbin/nologin"), "{user}");
    let mode = text(&in_root(&root, "stat", "stat -c '%a %U %G' /etc/kerbside"));
    assert_eq!(mode.trim(), "750 root kerbside");

    // systemd accepts the units (the binary, the user, the man pages they name exist).
    in_root(
        &root,
        "systemd-analyze verify (system)",
        "systemd-analyze verify /usr/lib/systemd/system/kerbside-gate.service",
    );
    in_root(
        &root,
        "systemd-analyze verify (user)",
        "mkdir -m 700 -p /tmp/xdg && XDG_RUNTIME_DIR=/tmp/xdg \
         systemd-analyze --user verify kerbside-tunnel@hg.service \
         /usr/lib/systemd/user/kerbside-proxy.service",
    );
    let security = text(&in_root(
        &root,
        "systemd-analyze security",
        "systemd-analyze security --offline=true --threshold=50 \
         /usr/lib/systemd/system/kerbside-gate.service",
    ));
    assert!(
        security.contains("Overall exposure level"),
        "systemd-analyze security:\n{security}"
    );

    // Purging takes the user and the state away.
    in_root(&root, "dpkg --purge", "dpkg --purge kerbside");
    let gone = Command::new("chroot")
        .arg(&root)
        .args(["getent", "passwd", "kerbside"])
        .output()
        .expect("run getent");
    assert!(!gone.status.success(), "the kerbside user outlived a purge");
}
