//! `kerbside`: passwordless Kerberos (Negotiate) authentication for HTTP.
//!
//! * `kerbside fetch URL`: a curl-like client that answers `401 Negotiate` with the
//!   user's Kerberos ticket.
//! * `kerbside gate`: an authenticating reverse proxy that accepts Negotiate with a
//!   keytab and passes the user on in a header.
//! * `kerbside tunnel`: a local plain-HTTP port that forwards to a kerberized server
//!   with the user's ticket, for tools that cannot speak Negotiate.
//! * `kerbside proxy`: a local forward proxy that answers the corporate proxy's `407`
//!   with the user's credentials, for pip, git, npm, curl... (like cntlm, px).
//! * `kerbside man`, `kerbside completions`: manual pages and shell completions,
//!   generated from these definitions.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cli;

/// Passwordless Kerberos (SPNEGO "Negotiate") authentication for HTTP.
#[derive(Debug, Parser)]
#[command(name = "kerbside", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch a URL, authenticating with Kerberos when the server asks (like curl).
    Fetch(cli::fetch::FetchArgs),
    /// Run an authenticating reverse proxy: Negotiate with a keytab in front of an upstream.
    Gate(cli::gate::GateArgs),
    /// Forward a local plain-HTTP port to a kerberized server, authenticating with your
    /// ticket (for hg, pip, git... that cannot speak Negotiate).
    Tunnel(cli::tunnel::TunnelArgs),
    /// Run a local forward proxy that authenticates to the corporate proxy with your
    /// credentials (Negotiate, NTLM, Basic), for pip, git, npm, curl... (like cntlm, px).
    Proxy(cli::proxy::ProxyArgs),
    /// Load a server with requests that speak Negotiate, and report throughput,
    /// latency, errors and the server's CPU per request.
    Bench(cli::bench::BenchArgs),
    /// Add or change a user of the gate's NTLM users file (`--ntlm-users`); the
    /// password is read from standard input without echo.
    NtlmPasswd(cli::passwd::NtlmPasswdArgs),
    /// Print the NT hash of a password (cntlm -H's PassNT), or a keyring entry holding
    /// it (`--host`): NTLM to a proxy or server without the password on disk.
    NtHash(cli::passwd::NtHashArgs),
    /// Add or change a user of the gate's Digest users file (`--digest-users`,
    /// htdigest lines); the password is read from standard input without echo.
    DigestPasswd(cli::passwd::DigestPasswdArgs),
    /// Check this machine's Kerberos setup and, for a URL, everything between you and
    /// the server; one line per check with what to do.
    Doctor(cli::doctor::DoctorArgs),
    /// Write the manual pages (kerbside.1 and one per subcommand) into a directory.
    Man(cli::docs::ManArgs),
    /// Print shell completions for bash, zsh, fish, elvish or powershell, e.g.
    /// `kerbside completions bash > /etc/bash_completion.d/kerbside`.
    Completions(cli::docs::CompletionsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The generators need no runtime.
    match &cli.command {
        Command::Man(args) => return cli::docs::run_man(&Cli::command(), args),
        Command::Completions(args) => return cli::docs::run_completions(&Cli::command(), args),
        _ => {}
    }
    let runtime = match runtime(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kerbside: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Fetch(args) => runtime.block_on(cli::fetch::run(args)),
        Command::Gate(args) => runtime.block_on(cli::gate::run(args)),
        Command::Tunnel(args) => runtime.block_on(cli::tunnel::run(args)),
        Command::Proxy(args) => runtime.block_on(cli::proxy::run(args)),
        Command::Bench(args) => runtime.block_on(cli::bench::run(args)),
        Command::Doctor(args) => runtime.block_on(cli::doctor::run(args)),
        Command::NtlmPasswd(args) => cli::passwd::run_ntlm(args),
        Command::NtHash(args) => cli::passwd::run_nt_hash(args),
        Command::DigestPasswd(args) => cli::passwd::run_digest(args),
        Command::Man(_) | Command::Completions(_) => ExitCode::SUCCESS,
    }
}

/// The async runtime for `command`: one thread per core, except `kerbside proxy`
/// (`--threads`, default one).
fn runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Proxy(args) = command {
        builder.worker_threads(usize::from(args.threads));
    }
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::{CommandFactory, Parser};

    use super::{cli, Cli};

    #[test]
    fn the_proxy_runs_on_one_thread_unless_told_otherwise() {
        let workers = |argv: &[&str]| {
            let cli = Cli::try_parse_from(argv).expect("parse");
            super::runtime(&cli.command)
                .expect("runtime")
                .metrics()
                .num_workers()
        };
        assert_eq!(workers(&["kerbside", "proxy"]), 1);
        assert_eq!(workers(&["kerbside", "proxy", "--threads", "3"]), 3);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(
            workers(&["kerbside", "gate", "--upstream", "http://127.0.0.1:1"]),
            cores
        );
        let refused = Cli::try_parse_from(["kerbside", "proxy", "--threads", "0"])
            .expect_err("0 threads")
            .to_string();
        assert!(refused.contains("--threads"), "{refused}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_and_subcommand_has_help_text() {
        let missing = cli::docs::undocumented(&Cli::command());
        assert!(
            missing.is_empty(),
            "these have no help text (a `///` comment on the field or variant): {missing:#?}"
        );
    }

    /// `docs/man/` holds the pages the Debian package ships; they must be what the
    /// current flags generate.
    #[test]
    fn the_committed_manual_pages_are_current() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
        let pages = cli::docs::pages(&Cli::command()).expect("render the pages");
        let mut stale = Vec::new();
        for page in &pages {
            match std::fs::read(dir.join(&page.file_name)) {
                Ok(text) if text == page.text => {}
                Ok(_) => stale.push(format!("{} differs", page.file_name)),
                Err(e) => stale.push(format!("{}: {e}", page.file_name)),
            }
        }
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !names.contains(&name.as_str()) {
                    stale.push(format!("{name} is no longer generated"));
                }
            }
        }
        assert!(
            stale.is_empty(),
            "docs/man is stale ({stale:?}): run scripts/generate-docs.sh"
        );
    }

    /// `packaging/completions/` holds the scripts the Debian package ships.
    #[test]
    fn the_committed_completions_are_current() {
        use clap_complete::Shell;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../packaging/completions");
        for (shell, file) in [
            (Shell::Bash, "kerbside.bash"),
            (Shell::Zsh, "_kerbside"),
            (Shell::Fish, "kerbside.fish"),
        ] {
            let mut cmd = Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "kerbside", &mut out);
            let committed = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                committed == out,
                "packaging/completions/{file} ({shell}) is stale: run scripts/generate-docs.sh"
            );
        }
    }

    #[test]
    fn completions_name_every_subcommand_in_every_shell() {
        use clap_complete::Shell;
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut cmd = Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "kerbside", &mut out);
            let text = String::from_utf8_lossy(&out);
            for sub in ["fetch", "gate", "tunnel", "bench", "completions"] {
                assert!(text.contains(sub), "{shell}: no {sub} in the completions");
            }
            assert!(
                text.contains("negotiate"),
                "{shell}: fetch's --negotiate missing"
            );
        }
    }

    #[test]
    fn there_is_a_page_per_subcommand() {
        let pages = cli::docs::pages(&Cli::command()).expect("render the pages");
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        for want in [
            "kerbside.1",
            "kerbside-fetch.1",
            "kerbside-gate.1",
            "kerbside-tunnel.1",
        ] {
            assert!(names.contains(&want), "no {want} in {names:?}");
        }
        let gate = pages
            .iter()
            .find(|p| p.file_name == "kerbside-gate.1")
            .map(|p| String::from_utf8_lossy(&p.text).into_owned())
            .unwrap_or_default();
        assert!(
            gate.contains("keytab"),
            "the gate's page documents --keytab"
        );
    }
}
