//! `kerbside`: passwordless Kerberos (Negotiate) authentication for HTTP.
//!
//! * `kerbside fetch URL`: a curl-like client that answers `401 Negotiate` with the
//!   user's Kerberos ticket.
//! * `kerbside gate`: an authenticating reverse proxy that accepts Negotiate with a
//!   keytab and passes the user on in a header.
//! * `kerbside tunnel`: a local plain-HTTP port that forwards to a kerberized server
//!   with the user's ticket, for tools that cannot speak Negotiate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Load a server with requests that speak Negotiate, and report throughput,
    /// latency, errors and the server's CPU per request.
    Bench(cli::bench::BenchArgs),
    /// Add or change a user of the gate's NTLM users file (`--ntlm-users`); the
    /// password is read from standard input without echo.
    NtlmPasswd(cli::passwd::NtlmPasswdArgs),
    /// Add or change a user of the gate's Digest users file (`--digest-users`,
    /// htdigest lines); the password is read from standard input without echo.
    DigestPasswd(cli::passwd::DigestPasswdArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
        Command::Bench(args) => runtime.block_on(cli::bench::run(args)),
        Command::NtlmPasswd(args) => cli::passwd::run_ntlm(args),
        Command::DigestPasswd(args) => cli::passwd::run_digest(args),
    }
}
