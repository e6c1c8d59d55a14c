//! The library half of the `kerbside` package: the parts of the command-line tools that
//! other programs may drive themselves.
//!
//! * [`bench`](mod@bench) — the load generator behind `kerbside bench`, which speaks Negotiate.
//! * [`doctor`](mod@doctor) — the checks behind `kerbside doctor`: what is wrong with
//!   Kerberos here, in words, and what to do.
#![warn(missing_docs)]

pub mod bench;
pub mod doctor;
