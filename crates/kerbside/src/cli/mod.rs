//! One module per subcommand: its clap arguments, and how they resolve into the
//! library's configuration.

pub mod bench;
pub mod client_args;
pub mod docs;
pub mod fetch;
pub mod gate;
pub mod passwd;
pub mod tunnel;
