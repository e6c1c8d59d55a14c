//! One module per subcommand: its clap arguments, and how they resolve into the
//! library's configuration.

pub mod bench;
pub mod client_args;
#[cfg(test)]
mod config_reference;
pub mod docs;
pub mod doctor;
pub mod fetch;
pub mod gate;
mod gate_probe;
pub mod passwd;
pub mod proxy;
pub mod tunnel;
