//! Interop with Apache's own tools (apache2-utils): the `htpasswd` lines they write must
//! verify, and the `htdigest` lines we write must be the ones `htdigest` writes.
//!
//! The tools are installed in development and in CI (`scripts/install-deps.sh`); a test whose
//! tool is missing fails, naming the package.

use std::process::{Command, Stdio};

use kerbside_proto::scheme::basic::htpasswd::{Htpasswd, Verdict};
use kerbside_proto::scheme::digest::htdigest::{format_line, Htdigest};
use kerbside_proto::scheme::digest::HashFunction;
use kerbside_testkit::require_tool;

const LOGINS: [(&str, &str); 4] = [
    ("alice", "correct horse battery staple"),
    ("bob", "p\u{e4}ssw\u{f6}rd \u{20ac}"),
    ("carol", "with:colon and \"quotes\""),
    ("dave", ""),
];

fn htpasswd(args: &[&str]) -> Vec<u8> {
    let out = Command::new("htpasswd")
        .args(args)
        .output()
        .expect("run htpasswd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn htpasswd_bcrypt_lines_verify() {
    require_tool("htpasswd", "apache2-utils");
    let mut file = Vec::new();
    for (user, password) in LOGINS {
        file.extend(htpasswd(&["-bnB", "-C", "4", user, password]));
    }
    file.extend(htpasswd(&["-bns", "erin", "sha one"]));
    let parsed = Htpasswd::parse(&file)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&file)));
    for (user, password) in LOGINS {
        assert_eq!(parsed.verify(user, password), Verdict::Verified, "{user}");
        assert_eq!(
            parsed.verify(user, "wrong"),
            Verdict::WrongPassword,
            "{user}"
        );
    }
    assert_eq!(parsed.verify("erin", "sha one"), Verdict::Verified);
    assert_eq!(parsed.verify("nobody", "x"), Verdict::UnknownUser);

    // The old default, Apache MD5, is refused with a message that says what to do.
    let err = Htpasswd::parse(&htpasswd(&["-bnm", "frank", "pw"])).unwrap_err();
    assert!(err.to_string().contains("htpasswd -B"), "{err}");
}

#[test]
fn htdigest_md5_lines_match_md5sum() {
    require_tool("md5sum", "coreutils");
    let realm = "Private Area";
    for (user, password) in LOGINS {
        let out = Command::new("sh")
            .args([
                "-c",
                "printf '%s:%s:%s' \"$1\" \"$2\" \"$3\" | md5sum",
                "sh",
                user,
                realm,
                password,
            ])
            .output()
            .expect("run md5sum");
        let digest = String::from_utf8(out.stdout).expect("UTF-8");
        let digest = digest.split_whitespace().next().expect("a digest");
        let line = format_line(user, realm, password, HashFunction::Md5).expect("a line");
        assert_eq!(line, format!("{user}:{realm}:{digest}"));
    }
}

/// `htdigest` reads the password from the terminal, so it runs on a pseudo-terminal
/// (Python's `pty`) that types the password each time htdigest prompts for it.
const TYPE_AT_PROMPTS: &str = r#"
import os, pty, select, sys, time
env = os.environb
pid, fd = pty.fork()
if pid == 0:
    os.execvp("htdigest", ["htdigest", "-c", env[b"FILE"], env[b"REALM"], env[b"USER"]])
deadline = time.monotonic() + 30
for prompt in (b"New password:", b"Re-type new password:"):
    seen = b""
    while prompt not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit("htdigest did not prompt %r; it wrote %r" % (prompt, seen))
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                chunk = b""
            if not chunk:
                sys.exit("htdigest ended before prompting %r; it wrote %r" % (prompt, seen))
            seen += chunk
    os.write(fd, env[b"PW"] + b"\n")
while True:
    try:
        if not os.read(fd, 1024):
            break
    except OSError:
        break
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"#;

#[test]
fn htdigest_tool_writes_our_lines() {
    require_tool("htdigest", "apache2-utils");
    let python = require_tool("python3", "python3");
    let dir = std::env::temp_dir().join(format!("kerbside-htdigest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("digest");
    let (user, realm, password) = ("alice", "my realm", "s3cret w\u{f6}rd");
    let out = Command::new(python)
        .args(["-c", TYPE_AT_PROMPTS])
        .env("PW", password)
        .env("FILE", &path)
        .env("REALM", realm)
        .env("USER", user)
        .stdout(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "htdigest on a pty: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&path).expect("htdigest wrote the file");
    let _ = std::fs::remove_dir_all(&dir);
    let ours = format_line(user, realm, password, HashFunction::Md5).expect("a line");
    assert_eq!(written.trim_end(), ours);
    let file = Htdigest::parse(written.as_bytes()).expect("parses");
    assert!(file.lookup(user, realm, HashFunction::Md5).is_some());
}
