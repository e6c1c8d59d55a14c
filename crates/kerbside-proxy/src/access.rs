//! Who may use the proxy: a client address on the allow list (`--allow`) and, on
//! Linux, a loopback client whose socket the proxy's own user owns (found in
//! Linux's netlink `sock_diag`, an exact look-up, or else `/proc/net/tcp` and
//! `tcp6`), unless `--allow-other-users`.

use std::net::SocketAddr;

use kerbside_proto::forward_proxy::hosts::{canonical_ip, ClientAllowList};

/// Why a client connection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The address is not on the allow list.
    Address(SocketAddr),
    /// Another user's socket.
    OtherUser { uid: u32, own: u32 },
    /// A loopback client whose socket is not in the kernel's tables (another
    /// network namespace).
    Unknown(SocketAddr),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Address(a) => write!(
                f,
                "clients from {} may not use this proxy (it acts with its user's identity); \
                 its user can allow them with --allow CIDR",
                a.ip()
            ),
            Refused::OtherUser { uid, own } => write!(
                f,
                "the client runs as uid {uid}, the proxy as uid {own}: only the proxy's own \
                 user may use it (it acts with that user's identity); --allow-other-users \
                 turns this off"
            ),
            Refused::Unknown(a) => write!(
                f,
                "the owner of the client socket {a} could not be found (another network \
                 namespace?): only the proxy's own user may use it; --allow-other-users \
                 turns this off"
            ),
        }
    }
}

/// The checks for one proxy.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub allow: ClientAllowList,
    /// The proxy's uid, when same-user checking is on (and possible here).
    pub own_uid: Option<u32>,
}

impl Access {
    pub(crate) fn new(allow: ClientAllowList, same_user_only: bool) -> Self {
        Self {
            allow,
            own_uid: if same_user_only { own_uid() } else { None },
        }
    }

    /// Checks a client connection from `peer` accepted on `local`.
    pub(crate) async fn check(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), Refused> {
        if !self.allow.allows(peer.ip()) {
            return Err(Refused::Address(peer));
        }
        let Some(own) = self.own_uid else {
            return Ok(());
        };
        // The client's socket: its local address is our peer, its remote ours.
        // sock_diag answers at once (one netlink round trip, tens of µs): asked
        // here, without a hop to a blocking thread for every client connection.
        #[cfg(target_os = "linux")]
        let diag = crate::sock_diag::socket_uid(peer, local);
        #[cfg(not(target_os = "linux"))]
        let diag: std::io::Result<Option<u32>> = Err(std::io::ErrorKind::Unsupported.into());
        let owner = match diag {
            Ok(owner) => owner,
            Err(e) => {
                tracing::debug!("sock_diag failed ({e}); reading /proc/net/tcp");
                Self::owner_from_tables(peer, local).await
            }
        };
        match owner {
            Some(uid) if uid == own => Ok(()),
            Some(uid) => Err(Refused::OtherUser { uid, own }),
            // A client on another machine (allowed by --allow) has no local socket.
            None if !canonical_ip(peer.ip()).is_loopback() => Ok(()),
            None => Err(Refused::Unknown(peer)),
        }
    }

    /// The owner from `/proc/net/tcp` and `tcp6` (one line per socket on the
    /// machine: read on a blocking thread).
    async fn owner_from_tables(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        tokio::task::spawn_blocking(move || {
            let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .collect();
            kerbside_proto::forward_proxy::socket_owner::socket_owner(
                tables.iter().map(String::as_str),
                peer,
                local,
            )
        })
        .await
        .ok()
        .flatten()
    }
}

/// The proxy's own (effective) uid, on Linux; `None` elsewhere.
fn own_uid() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
