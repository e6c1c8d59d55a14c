//! The server's side of a run, read from /proc: the processes counted, their CPU
//! ticks and their memory.

use std::collections::BTreeMap;

/// The processes whose CPU time is counted: the given pids and, with `children`, every
/// process whose parent is one of them.
pub(super) fn server_processes(pids: &[u32], children: bool) -> Vec<u32> {
    let mut all: Vec<u32> = pids.to_vec();
    if children {
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|t| parse_ppid(&t));
                if parent.is_some_and(|p| pids.contains(&p)) && !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
    }
    all.sort_unstable();
    all
}

/// The parent pid in the text of `/proc/PID/stat`.
pub(super) fn parse_ppid(text: &str) -> Option<u32> {
    text[text.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU ticks of each process (a process that is gone counts nothing).
pub(super) fn read_cpus(pids: &[u32]) -> BTreeMap<u32, CpuTicks> {
    pids.iter()
        .filter_map(|&pid| Some((pid, read_cpu(pid).ok()?)))
        .collect()
}

/// Resident and proportional set size of processes, in KiB, from
/// `/proc/PID/smaps_rollup`.
pub(super) fn read_memory(pids: &[u32]) -> Result<(u64, u64), String> {
    let mut rss = 0;
    let mut pss = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/smaps_rollup");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        for line in text.lines() {
            let field = |name: &str| {
                line.strip_prefix(name)
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            };
            if let Some(kib) = field("Rss:") {
                rss += kib;
            } else if let Some(kib) = field("Pss:") {
                pss += kib;
            }
        }
    }
    Ok((rss, pss))
}

/// CPU time of a process, in clock ticks, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CpuTicks {
    /// utime + stime.
    pub(super) own: u64,
    /// cutime + cstime: children the process waited for.
    pub(super) children: u64,
}

/// Parses the text of `/proc/PID/stat` (the command name may hold spaces and
/// parentheses: fields are counted after the last `)`).
pub(super) fn parse_stat(text: &str) -> Option<CpuTicks> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11.
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(CpuTicks {
        own: field(11)? + field(12)?,
        children: field(13)? + field(14)?,
    })
}

pub(super) fn read_cpu(pid: u32) -> Result<CpuTicks, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path} (--server-pid {pid}): {e}"))?;
    parse_stat(&text).ok_or_else(|| format!("cannot parse {path}"))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's value, if that fails).
pub(super) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (kerb side) (x)) S 1 4242 4242 0 -1 4194560 1523 0 0 0 \
                    37 12 5 3 20 0 9 0 1234 5678 90";
        assert_eq!(
            parse_stat(line),
            Some(CpuTicks {
                own: 49,
                children: 8
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }
}
