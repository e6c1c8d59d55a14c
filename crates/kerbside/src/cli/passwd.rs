//! `kerbside ntlm-passwd FILE USER` and `kerbside digest-passwd FILE USER REALM`: add
//! or replace a user in the gate's NTLM users file (NT hashes) or Digest users file
//! (htdigest lines), the password read from standard input without echo.
//! `kerbside nt-hash USER [--host HOST] [--ntlmv2]`: the NT hash (and, for `DOMAIN\user`,
//! the NTLMv2 hash) of a password for the client's keyring file (cntlm's `-H`).

use std::fs::OpenOptions;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kerbside_proto::scheme::digest::{htdigest, HashFunction};
use kerbside_proto::scheme::ntlm::crypto::{nt_hash, ntlmv2_hash};
use kerbside_proto::scheme::ntlm::users;

/// Arguments of `kerbside ntlm-passwd`.
#[derive(Debug, Args)]
#[command(after_help = "\
The file holds one `USER:NTHASH` line per user (`DOMAIN\\USER:NTHASH` to bind a user to \
one domain), where NTHASH is the MD4 of the UTF-16LE password in hex: what NTLM needs to \
check a login, and as good as the password to anyone who reads it. The file is created \
with mode 600, and the gate refuses one that others can read. The password is read from \
standard input: asked for twice without echo on a terminal, else its first line.")]
pub struct NtlmPasswdArgs {
    /// The users file (created if missing).
    pub file: PathBuf,
    /// The user: `alice` (any domain) or `EXAMPLE\alice`.
    pub user: String,
}

/// Arguments of `kerbside nt-hash`.
#[derive(Debug, Args)]
#[command(after_help = "\
Prints `PassNT <32 hex digits>` as cntlm -H does, and for `DOMAIN\\user` also \
`PassNTLMv2 <32 hex digits>` (NTOWFv2 with user and domain upper-cased, as cntlm -H -u \
user -d DOMAIN prints it, but not bit-inverted as cntlm 0.92 prints its hashes). With \
--host, prints instead a keyring entry to append to the keyring file ($KERBSIDE_KEYRING, \
else ~/.config/kerbside/keyring.toml, mode 600):
  kerbside nt-hash 'CORP\\alice' --host proxy.corp.example >> ~/.config/kerbside/keyring.toml
An `nt_hash` answers NTLM (v2) only: a proxy or server that asks for Basic, Digest or a \
Kerberos password gets a clear refusal. With --ntlmv2 the entry holds the `ntlmv2_hash` \
instead, which answers NTLMv2 only and only as this user in this domain. The hash is as good as the password to anyone who \
reads it, for NTLM; keep the file private. The password is read from standard input: asked \
for twice without echo on a terminal, else its first line.")]
pub struct NtHashArgs {
    /// The user: `alice` or `CORP\alice` (the domain goes into NTLM, not the hash).
    pub user: String,
    /// Print a keyring entry for this host (or `*.domain`) instead of the bare hash.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// With --host: the entry holds the NTLMv2 hash (`ntlmv2_hash`, bound to USER's user
    /// and domain, so USER must be `DOMAIN\user`) instead of the NT hash.
    #[arg(long, requires = "host")]
    pub ntlmv2: bool,
}

/// Arguments of `kerbside digest-passwd`.
#[derive(Debug, Args)]
#[command(after_help = "\
The file holds htdigest lines, `USER:REALM:HA1`, HA1 the hex hash of USER:REALM:PASSWORD: \
SHA-256 by default (as lighttpd reads them), MD5 with --algorithm md5 (as Apache's \
htdigest writes them, for clients that know only MD5). The realm must be the gate's \
--digest-realm. The file is created with mode 600. The password is read from standard \
input: asked for twice without echo on a terminal, else its first line.")]
pub struct DigestPasswdArgs {
    /// The users file (created if missing).
    pub file: PathBuf,
    /// The user name.
    pub user: String,
    /// The realm, as the gate's --digest-realm.
    pub realm: String,
    /// The hash of the line.
    #[arg(long, value_enum, default_value = "sha-256")]
    pub algorithm: DigestHash,
}

/// `--algorithm` of `digest-passwd`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DigestHash {
    /// SHA-256 (RFC 7616).
    #[value(name = "sha-256")]
    Sha256,
    /// MD5 (RFC 2617; old clients only).
    Md5,
}

/// Runs `kerbside ntlm-passwd`.
pub fn run_ntlm(args: NtlmPasswdArgs) -> ExitCode {
    let result = read_password(&args.user).and_then(|password| {
        let line = users::format_line(&args.user, &nt_hash(&password))
            .map_err(|e| format!("cannot add {}: {e}", args.user))?;
        let user = args.user.clone();
        replace_line(&args.file, &line, |existing| {
            existing
                .split_once(':')
                .is_some_and(|(u, _)| u.eq_ignore_ascii_case(&user))
        })
    });
    report(result, &args.user, &args.file)
}

/// Runs `kerbside nt-hash`.
pub fn run_nt_hash(args: NtHashArgs) -> ExitCode {
    let domain_user = args
        .user
        .split_once('\\')
        .filter(|(domain, user)| !domain.is_empty() && !user.is_empty());
    if args.ntlmv2 && domain_user.is_none() {
        eprintln!(
            "kerbside: --ntlmv2 needs the user as 'DOMAIN\\user': the NTLMv2 hash is made for \
             one user in one domain"
        );
        return ExitCode::from(2);
    }
    let password = match read_password(&args.user) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kerbside: {e}");
            return ExitCode::from(1);
        }
    };
    let hex = |hash: [u8; 16]| -> String { hash.iter().map(|b| format!("{b:02X}")).collect() };
    let v2 = domain_user.map(|(domain, user)| hex(ntlmv2_hash(&password, user, domain)));
    match (&args.host, v2) {
        (None, v2) => {
            println!("PassNT          {}", hex(nt_hash(&password)));
            if let (Some(v2), Some((domain, user))) = (v2, domain_user) {
                println!("PassNTLMv2      {v2}    # Only for user '{user}', domain '{domain}'");
            }
        }
        (Some(host), Some(v2)) if args.ntlmv2 => println!(
            "[[credential]]\nhost = {}\nuser = {}\nntlmv2_hash = \"{v2}\"\nschemes = [\"ntlm\"]",
            toml_string(host),
            toml_string(&args.user)
        ),
        (Some(host), _) => println!(
            "[[credential]]\nhost = {}\nuser = {}\nnt_hash = \"{}\"\nschemes = [\"ntlm\"]",
            toml_string(host),
            toml_string(&args.user),
            hex(nt_hash(&password))
        ),
    }
    ExitCode::SUCCESS
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `kerbside digest-passwd`.
pub fn run_digest(args: DigestPasswdArgs) -> ExitCode {
    let hash = match args.algorithm {
        DigestHash::Sha256 => HashFunction::Sha256,
        DigestHash::Md5 => HashFunction::Md5,
    };
    let result = read_password(&args.user).and_then(|password| {
        let line = htdigest::format_line(&args.user, &args.realm, &password, hash)
            .map_err(|e| format!("cannot add {}: {e}", args.user))?;
        let prefix = format!("{}:{}:", args.user, args.realm);
        let hex_len = hash.hex_len();
        replace_line(&args.file, &line, |existing| {
            existing.starts_with(&prefix) && existing.len() - prefix.len() == hex_len
        })
    });
    report(result, &args.user, &args.file)
}

fn report(result: Result<(), String>, user: &str, file: &Path) -> ExitCode {
    match result {
        Ok(()) => {
            eprintln!("kerbside: {user} written to {}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kerbside: {e}");
            ExitCode::from(1)
        }
    }
}

/// The password: twice without echo on a terminal, else the first line of stdin.
fn read_password(user: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {user}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let second = rpassword::prompt_password("Again: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != second {
            return Err("the two passwords differ; nothing written".to_owned());
        }
        return non_empty(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    non_empty(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn non_empty(password: String) -> Result<String, String> {
    if password.is_empty() {
        return Err("empty password; nothing written".to_owned());
    }
    Ok(password)
}

/// Writes `line` in place of the lines `same` matches (or at the end), keeping every
/// other line; the file is written whole to a temporary file next to it (mode 600)
/// and renamed over it.
fn replace_line(path: &Path, line: &str, same: impl Fn(&str) -> bool) -> Result<(), String> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                eprintln!(
                    "kerbside: {} was readable by others (mode {:o}); it is now 600",
                    path.display(),
                    mode & 0o777
                );
            }
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut out = String::new();
    let mut replaced = false;
    for existing in old.lines() {
        if same(existing) {
            if !replaced {
                out.push_str(line);
                out.push('\n');
                replaced = true;
            }
        } else {
            out.push_str(existing);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str(line);
        out.push('\n');
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{}.kerbside-tmp", file_name(path)));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(out.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users".to_owned())
}
