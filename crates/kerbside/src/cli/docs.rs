//! `kerbside man` and `kerbside completions`: manual pages and shell completions
//! generated from the clap definitions, so they cannot drift from the flags.
//!
//! The pages are also committed under `docs/man/` (the Debian package ships them); a
//! test in `main.rs` fails when those copies are stale or a flag has no help text.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Command};
use clap_complete::Shell;

/// Arguments of `kerbside man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write the pages into this directory (`kerbside.1` and one `kerbside-SUBCOMMAND.1`
    /// per subcommand), creating it if needed.
    #[arg(long = "out", value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Arguments of `kerbside completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for (bash, zsh, fish, elvish, powershell).
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// One generated manual page: its file name and its roff text.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    /// `kerbside.1` or `kerbside-SUBCOMMAND.1`.
    pub file_name: String,
    /// The page, in roff.
    pub text: Vec<u8>,
}

/// Renders the page of `cmd` and of each of its (visible) subcommands, depth first.
pub fn pages(cmd: &Command) -> io::Result<Vec<Page>> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, cmd.get_name(), &mut out)?;
    Ok(out)
}

fn collect(cmd: &Command, name: &str, out: &mut Vec<Page>) -> io::Result<()> {
    // The page of a subcommand is titled with its full name (`kerbside-gate`), as
    // git's and cargo's are, so `man kerbside-gate` finds it.
    let titled = cmd
        .clone()
        .name(name.to_owned())
        .version(env!("CARGO_PKG_VERSION"));
    let mut text = Vec::new();
    clap_mangen::Man::new(titled)
        .title(name.to_owned())
        .render(&mut text)?;
    out.push(Page {
        file_name: format!("{name}.1"),
        text,
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        collect(sub, &format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}

/// `kerbside man --out DIR`.
pub fn run_man(cmd: &Command, args: &ManArgs) -> ExitCode {
    match write_pages(cmd, &args.out) {
        Ok(n) => {
            eprintln!("kerbside: wrote {n} manual pages to {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "kerbside: cannot write the manual pages to {}: {e}",
                args.out.display()
            );
            ExitCode::from(1)
        }
    }
}

fn write_pages(cmd: &Command, dir: &Path) -> io::Result<usize> {
    fs::create_dir_all(dir)?;
    let pages = pages(cmd)?;
    for page in &pages {
        fs::write(dir.join(&page.file_name), &page.text)?;
    }
    Ok(pages.len())
}

/// `kerbside completions SHELL`: the script on standard output.
pub fn run_completions(cmd: &Command, args: &CompletionsArgs) -> ExitCode {
    let mut cmd = cmd.clone();
    let name = cmd.get_name().to_owned();
    clap_complete::generate(args.shell, &mut cmd, name, &mut io::stdout());
    ExitCode::SUCCESS
}

/// Every argument and subcommand of `cmd` (recursively) without help text, as
/// `kerbside gate --flag` paths; empty when all are documented.
#[cfg(test)]
pub fn undocumented(cmd: &Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, cmd.get_name(), &mut missing);
    missing
}

#[cfg(test)]
fn walk(cmd: &Command, path: &str, missing: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        if arg.is_hide_set() {
            continue;
        }
        let id = arg.get_id().as_str();
        // clap's own --help and --version.
        if id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            let spelled = arg
                .get_long()
                .map(|l| format!("--{l}"))
                .or_else(|| arg.get_short().map(|s| format!("-{s}")))
                .unwrap_or_else(|| format!("<{id}>"));
            missing.push(format!("{path} {spelled}"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.get_about().is_none() && sub.get_long_about().is_none() {
            missing.push(sub_path.clone());
        }
        walk(sub, &sub_path, missing);
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, Command};

    use super::undocumented;

    #[test]
    fn a_flag_or_subcommand_without_help_is_named() {
        let cmd = Command::new("kerbside")
            .arg(
                Arg::new("quiet")
                    .long("quiet")
                    .action(ArgAction::SetTrue)
                    .help("Say less"),
            )
            .subcommand(
                Command::new("gate")
                    .arg(Arg::new("keytab").long("keytab"))
                    .arg(Arg::new("secret").long("secret").hide(true)),
            );
        assert_eq!(
            undocumented(&cmd),
            ["kerbside gate", "kerbside gate --keytab"]
        );
    }
}
