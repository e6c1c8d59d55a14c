//! The password accounts of the NTLM, Digest and Basic peers, and the files that hold them:
//! NTLM user files (`DOMAIN:user:password`, read by gss-ntlmssp and pyspnego) and htdigest
//! files (`user:realm:HA1`, read by Apache mod_auth_digest and lighttpd mod_auth).

use std::fmt::Write as _;
use std::io;
use std::process::Command;

use crate::process;

/// A user name and password that every password-scheme peer in this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordUser {
    /// The bare user name, e.g. `alice` (NTLM peers want it with [`NTLM_DOMAIN`]).
    pub name: &'static str,
    /// The password.
    pub password: &'static str,
}

impl PasswordUser {
    /// `EXAMPLE\alice`: the name as NTLM clients send it.
    pub fn ntlm_name(&self) -> String {
        format!("{NTLM_DOMAIN}\\{}", self.name)
    }
}

/// `alice` / `alice-password`.
pub const ALICE: PasswordUser = PasswordUser {
    name: "alice",
    password: "alice-password",
};

/// `bob` / `bob-password`.
pub const BOB: PasswordUser = PasswordUser {
    name: "bob",
    password: "bob-password",
};

/// The accounts every password peer knows.
pub const PASSWORD_USERS: &[PasswordUser] = &[ALICE, BOB];

/// The NetBIOS domain of the NTLM accounts: clients log in as `EXAMPLE\alice`.
pub const NTLM_DOMAIN: &str = "EXAMPLE";

/// The realm of the Digest peers' htdigest files and challenges.
pub const DIGEST_REALM: &str = "kerbside test realm";

/// The hash of an htdigest line's HA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5`: Apache's `htdigest` format, the only algorithm mod_auth_digest offers.
    Md5,
    /// `SHA-256`: what lighttpd's `"algorithm" => "SHA-256"` looks up.
    Sha256,
}

/// The NTLM user file for [`PASSWORD_USERS`]: `EXAMPLE:alice:alice-password` lines (the
/// Heimdal format that gss-ntlmssp and pyspnego read from `NTLM_USER_FILE`).
pub fn ntlm_user_file() -> String {
    PASSWORD_USERS.iter().fold(String::new(), |mut s, u| {
        let _ = writeln!(s, "{NTLM_DOMAIN}:{}:{}", u.name, u.password);
        s
    })
}

/// One htdigest line `user:realm:HA1`, HA1 the hex `algorithm` hash of
/// `user:realm:password` (computed with coreutils' `md5sum` / `sha256sum`).
pub fn htdigest_line(
    user: &str,
    realm: &str,
    password: &str,
    algorithm: DigestAlgorithm,
) -> io::Result<String> {
    let tool = match algorithm {
        DigestAlgorithm::Md5 => "md5sum",
        DigestAlgorithm::Sha256 => "sha256sum",
    };
    let out = process::run(
        &mut Command::new(tool),
        Some(&format!("{user}:{realm}:{password}")),
        &String::new,
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ha1 = stdout.split_whitespace().next().unwrap_or_default();
    Ok(format!("{user}:{realm}:{ha1}"))
}

/// The htdigest file for [`PASSWORD_USERS`] in [`DIGEST_REALM`].
pub fn htdigest_file(algorithm: DigestAlgorithm) -> io::Result<String> {
    let mut file = String::new();
    for u in PASSWORD_USERS {
        file.push_str(&htdigest_line(u.name, DIGEST_REALM, u.password, algorithm)?);
        file.push('\n');
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htdigest_lines_match_known_hashes() {
        // RFC 7616's example account; the hashes as Python's hashlib computes them.
        let (user, realm, password) = ("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            htdigest_line(user, realm, password, DigestAlgorithm::Md5).unwrap(),
            "Mufasa:http-auth@example.org:3d78807defe7de2157e2b0b6573a855f"
        );
        assert_eq!(
            htdigest_line(user, realm, password, DigestAlgorithm::Sha256).unwrap(),
            "Mufasa:http-auth@example.org:\
             7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    #[test]
    fn ntlm_user_file_has_domain_user_password_lines() {
        assert_eq!(
            ntlm_user_file(),
            "EXAMPLE:alice:alice-password\nEXAMPLE:bob:bob-password\n"
        );
        assert_eq!(ALICE.ntlm_name(), "EXAMPLE\\alice");
    }
}
