//! The library half of the `kerbside` package: the parts of the command-line tools that
//! other programs may drive themselves.
//!
//! * [`bench`](mod@bench) — the load generator behind `kerbside bench`, which speaks Negotiate.
#![warn(missing_docs)]

pub mod bench;
