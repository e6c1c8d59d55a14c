//! Authentication schemes carried in HTTP headers, each with a client and a server
//! side. Only Negotiate (RFC 4559) exists so far.

pub mod negotiate;
