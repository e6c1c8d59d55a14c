//! Authentication schemes carried in HTTP headers, each with a client and a server
//! side: Negotiate (RFC 4559), NTLM, Digest (RFC 7616) and Basic (RFC 7617).

pub mod basic;
pub mod digest;
pub mod negotiate;
pub mod ntlm;
