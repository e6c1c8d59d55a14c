//! The per-origin memory: which origins answered a token, so the next request to
//! them carries one from the start.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use kerbside_proto::Transport;
use reqwest::Url;

/// Where a request goes: scheme, host and port, as the URL gives them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Origin {
    /// The origin of an `http://` or `https://` URL; other schemes have none.
    pub(crate) fn of(url: &Url) -> Option<Origin> {
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        Some(Origin {
            tls,
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// The port when it is not the scheme's default (it may go into the service name).
    pub(crate) fn explicit_port(&self) -> Option<u16> {
        let default = if self.tls { 443 } else { 80 };
        (self.port != default).then_some(self.port)
    }

    /// What protects the exchange with this origin.
    pub(crate) fn transport(&self) -> Transport {
        if self.tls {
            Transport::Tls
        } else {
            Transport::Plain
        }
    }
}

/// Origins known to want Negotiate, at most `max` of them.
#[derive(Debug)]
pub(crate) struct Origins {
    max: usize,
    known: Mutex<HashSet<Origin>>,
}

impl Origins {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            known: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn wants_negotiate(&self, origin: &Origin) -> bool {
        self.lock().contains(origin)
    }

    /// Remembers `origin`; when the memory is full the newcomer is not kept (its
    /// requests then cost a `401` each, which is slower, not wrong).
    pub(crate) fn learn(&self, origin: &Origin) {
        let mut known = self.lock();
        if known.len() < self.max {
            known.insert(origin.clone());
        }
    }

    pub(crate) fn forget(&self, origin: &Origin) {
        self.lock().remove(origin);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Origin>> {
        // The set is valid whatever a panicking holder did.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Option<Origin> {
        Origin::of(&Url::parse(url).unwrap())
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let a = origin("https://Intranet.Example/x?y").unwrap();
        assert_eq!(a.host, "intranet.example");
        assert_eq!((a.port, a.explicit_port()), (443, None));
        assert_eq!(a.transport(), Transport::Tls);
        let b = origin("http://intranet.example:8080/").unwrap();
        assert_eq!(b.explicit_port(), Some(8080));
        assert_eq!(b.transport(), Transport::Plain);
        assert_ne!(a, origin("http://intranet.example/").unwrap());
        assert!(origin("ftp://intranet.example/").is_none());
        assert!(origin("data:text/plain,hi").is_none());
    }

    #[test]
    fn the_memory_is_bounded() {
        let origins = Origins::new(1);
        let (a, b) = (origin("https://a/").unwrap(), origin("https://b/").unwrap());
        origins.learn(&a);
        origins.learn(&b);
        assert!(origins.wants_negotiate(&a));
        assert!(!origins.wants_negotiate(&b));
        origins.forget(&a);
        assert!(!origins.wants_negotiate(&a));
        let none = Origins::new(0);
        none.learn(&a);
        assert!(!none.wants_negotiate(&a));
    }
}
