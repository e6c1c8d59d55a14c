//! Commands that read a password on their standard input (`kerbside nt-hash`, `cntlm
//! -H`), and the hashes Debian's real cntlm prints, for the NTLM-hash tests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::text;

/// Debian's cntlm (0.92.3).
pub const CNTLM: &str = "/usr/sbin/cntlm";

/// Runs `cmd` with `password` and a newline on its standard input; its standard output.
pub fn with_password(mut cmd: Command, password: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{cmd:?}: {stdout}{err}");
    stdout
}

/// The hex of the `PassNTLMv2` line of `cntlm -H` or `kerbside nt-hash` output, and the
/// rest of that line.
pub fn pass_ntlmv2(output: &str) -> (String, String) {
    let line = output
        .lines()
        .find(|l| l.starts_with("PassNTLMv2 "))
        .unwrap_or_else(|| panic!("no PassNTLMv2 line: {output}"));
    let mut words = line.split_whitespace();
    words.next();
    let hex = words.next().unwrap().to_owned();
    assert_eq!(hex.len(), 32, "{line}");
    (hex, words.collect::<Vec<_>>().join(" "))
}

/// The hash the real cntlm prints for `user` in `domain` (its `PassNTLMv2`), as printed.
pub fn cntlm_hash(user: &str, domain: &str, password: &str) -> String {
    assert!(
        Path::new(CNTLM).exists(),
        "{CNTLM} is missing: apt-get install cntlm"
    );
    let mut cmd = Command::new(CNTLM);
    cmd.args(["-c", "/dev/null", "-H", "-u", user, "-d", domain]);
    let out = with_password(cmd, password);
    let (hex, comment) = pass_ntlmv2(&out);
    assert_eq!(
        comment,
        format!("# Only for user '{user}', domain '{domain}'"),
        "{out}"
    );
    hex
}

/// cntlm 0.92 prints each byte of its hashes inverted (`printmem` XORs with 0xFF):
/// the hash itself, as docs/corporate-proxy.md says to convert it.
pub fn invert(hex: &str) -> String {
    (0..16)
        .map(|i| {
            let byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
            format!("{:02X}", !byte)
        })
        .collect()
}
