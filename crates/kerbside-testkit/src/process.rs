//! Running tools and daemons: errors that carry the tool's output, polite shutdown, file owners.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `cmd` to completion with `input` on its stdin, capturing stdout and stderr.
///
/// A failure to start names the program; a non-zero exit becomes an error holding the command
/// line, the exit status, both outputs and `context()` (typically the tail of a daemon's log).
pub(crate) fn run(
    cmd: &mut Command,
    input: Option<&str>,
    context: &dyn Fn() -> String,
) -> io::Result<Output> {
    let output = output_of(cmd, input)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failure(cmd, &output, &context()))
    }
}

/// Runs `cmd` to completion with `input` on its stdin; the exit status is the caller's business.
pub(crate) fn output_of(cmd: &mut Command, input: Option<&str>) -> io::Result<Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error(cmd, e))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // The tool may exit without reading: a broken pipe here is reported by its status.
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output()
}

/// The error for a program that could not be started.
pub(crate) fn spawn_error(cmd: &Command, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot run `{}`: {e} (is it installed? Kerberos and Apache daemons are in /usr/sbin)",
            cmd.get_program().to_string_lossy()
        ),
    )
}

/// The error for a tool that exited unsuccessfully.
pub(crate) fn failure(cmd: &Command, output: &Output, context: &str) -> io::Error {
    let mut msg = format!("`{}` failed ({})", command_line(cmd), output.status);
    append_section(&mut msg, "stdout", &String::from_utf8_lossy(&output.stdout));
    append_section(&mut msg, "stderr", &String::from_utf8_lossy(&output.stderr));
    if !context.trim().is_empty() {
        msg.push('\n');
        msg.push_str(context.trim_end());
    }
    io::Error::other(msg)
}

/// `program arg arg…` for messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

fn append_section(msg: &mut String, name: &str, text: &str) {
    if !text.trim().is_empty() {
        msg.push_str(&format!("\n--- {name} ---\n{}", text.trim_end()));
    }
}

/// The last `max` bytes of the file at `path` under a `--- label ---` heading, or a note that
/// it cannot be read.
pub(crate) fn log_tail(label: &str, path: &Path, max: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            let text = String::from_utf8_lossy(&bytes[start..]);
            let cut = if start > 0 {
                "…(earlier lines cut)\n"
            } else {
                ""
            };
            format!(
                "--- {label} ({}) ---\n{cut}{}",
                path.display(),
                text.trim_end()
            )
        }
        Err(e) => format!("--- {label} ({}): unreadable: {e} ---", path.display()),
    }
}

/// The tails of several logs, each as [`log_tail`] gives it, one after another: `(label,
/// path, max bytes)`.
pub(crate) fn log_tails(logs: &[(&str, &Path, usize)]) -> String {
    logs.iter()
        .map(|(label, path, max)| log_tail(label, path, *max))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole of the log at `main` (empty if unreadable), followed by each non-empty log in
/// `extra` under a `--- label ---` heading, for test failure messages.
pub(crate) fn read_logs(main: &Path, extra: &[(&str, &Path)]) -> String {
    let mut text = fs::read_to_string(main).unwrap_or_default();
    for (label, path) in extra {
        if let Ok(more) = fs::read_to_string(path) {
            if !more.trim().is_empty() {
                text.push_str(&format!("--- {label} ---\n{more}"));
            }
        }
    }
    text
}

/// The ids of the processes whose parent is `parent`, from `/proc`.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Stops a daemon we started: SIGTERM (through the `kill` tool, so no unsafe code or libc),
/// up to `grace` for it to exit, then SIGKILL. Always reaps the child.
pub(crate) fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if sent {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// The uid and primary gid of the local account `name`, from `/etc/passwd`.
pub(crate) fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// The name of the group with id `gid`, from `/etc/group`.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    let groups = fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == gid).then(|| name.to_owned())
    })
}

/// Sets the permission bits of `path`.
pub(crate) fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io::Error::new(e.kind(), format!("chmod {mode:o} {}: {e}", path.display())))
}

/// Gives `path` to `owner` (uid, gid) when there is one (we run as root).
pub(crate) fn chown(path: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    match owner {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("chown {uid}:{gid} {}: {e}", path.display()),
            )
        }),
        None => Ok(()),
    }
}

/// A daemon of the test realm (Apache, Squid) that accepts Kerberos with its own copy of
/// the keytab and replay cache: the realm's environment without a user ticket cache,
/// stdout and stderr into `stderr_log`.
pub(crate) fn keytab_daemon(
    program: &Path,
    realm: &crate::TestRealm,
    keytab: &Path,
    rcache_dir: &Path,
    stderr_log: &Path,
) -> io::Result<Command> {
    let stderr = std::fs::File::create(stderr_log)?;
    let mut keytab_name = std::ffi::OsString::from("FILE:");
    keytab_name.push(keytab);
    let mut cmd = Command::new(program);
    cmd.envs(realm.env())
        .env_remove("KRB5CCNAME")
        .env("KRB5_KTNAME", keytab_name)
        .env("KRB5RCACHEDIR", rcache_dir)
        .stdin(std::process::Stdio::null())
        .stdout(stderr.try_clone()?)
        .stderr(stderr);
    Ok(cmd)
}
