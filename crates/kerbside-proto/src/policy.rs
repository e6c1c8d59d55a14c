//! Policy decisions that need no network: when credentials may be sent over a
//! transport, and how strictly the server's final mutual-authentication token is
//! checked.

use std::fmt;
use std::str::FromStr;

/// How strictly a client checks the server's final Negotiate token
/// (mutual authentication, RFC 4559 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MutualAuth {
    /// The server must send a final token and it must verify.
    Required,
    /// If the server sends a final token it must verify; if it sends none, the
    /// response is accepted. This is the default.
    #[default]
    Optional,
    /// Final tokens are ignored.
    Off,
}

impl MutualAuth {
    /// The spelling used on command lines and in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for MutualAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mutual-authentication policy name that is not `required`, `optional` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mutual-authentication policy {0:?}: use required, optional or off")]
pub struct UnknownMutualAuth(pub String);

impl FromStr for MutualAuth {
    type Err = UnknownMutualAuth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            "off" => Ok(Self::Off),
            _ => Err(UnknownMutualAuth(s.to_owned())),
        }
    }
}

/// Whether the connection a request travels on protects what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`: TLS with a verified server certificate.
    Tls,
    /// `https://` with certificate verification switched off (`--insecure`).
    InsecureTls,
    /// `http://`: anyone on the path can read and change the exchange.
    Plain,
}

impl Transport {
    /// Whether credentials may go with a request before the server asked for them
    /// (a Negotiate token without a 401, a Digest or Basic login the origin took
    /// before).
    ///
    /// Over plain HTTP never, whatever the options say (`--allow-http-auth`,
    /// `--negotiate-preemptive`, what earlier requests learned): the first request
    /// goes without credentials and the server's 401 decides (OCamlnet's rule).
    /// Anyone on the path could otherwise collect a fresh token from every request,
    /// including requests to pages that need none.
    pub fn allows_unasked_credentials(self) -> bool {
        match self {
            Self::Tls | Self::InsecureTls => true,
            Self::Plain => false,
        }
    }
}

/// Which hosts may receive credentials over plain HTTP.
///
/// Negotiate, NTLM and Basic over plain HTTP let a man in the middle steal or relay
/// credentials, or strip the challenge down to Basic. kerbside refuses them unless
/// the user opted in for that host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlainHttpAuth {
    /// No host: credentials only travel over TLS (the default).
    #[default]
    Refuse,
    /// These hosts (compared without ASCII case) may receive credentials over HTTP.
    Hosts(Vec<String>),
    /// Every host (the user passed `--allow-http-auth` without a host list).
    Any,
}

/// Why credentials were not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The request goes over plain HTTP and the host was not opted in.
    #[error(
        "refusing to send {scheme} credentials to {host} over plain HTTP: anyone on the \
         network path could steal or replay them; use https://, or pass \
         --allow-http-auth if you accept the risk for this host"
    )]
    PlainHttp {
        /// The scheme that would have been used.
        scheme: String,
        /// The host the credentials would have gone to.
        host: String,
    },
}

impl PlainHttpAuth {
    /// Decides whether credentials of `scheme` may go to `host` over `transport`.
    pub fn check(&self, scheme: &str, host: &str, transport: Transport) -> Result<(), PolicyError> {
        let allowed = match (transport, self) {
            (Transport::Tls | Transport::InsecureTls, _) => true,
            (Transport::Plain, Self::Any) => true,
            (Transport::Plain, Self::Hosts(hosts)) => {
                hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            }
            (Transport::Plain, Self::Refuse) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(PolicyError::PlainHttp {
                scheme: scheme.to_owned(),
                host: host.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_by_default_and_names_the_flag() {
        let err = PlainHttpAuth::default()
            .check("Negotiate", "intranet", Transport::Plain)
            .unwrap_err();
        assert!(err.to_string().contains("--allow-http-auth"), "{err}");
        assert!(err.to_string().contains("intranet"), "{err}");
    }

    #[test]
    fn tls_is_always_allowed() {
        for p in [PlainHttpAuth::Refuse, PlainHttpAuth::Any] {
            assert!(p.check("Negotiate", "h", Transport::Tls).is_ok());
        }
    }

    #[test]
    fn credentials_go_unasked_over_tls_only() {
        assert!(Transport::Tls.allows_unasked_credentials());
        assert!(Transport::InsecureTls.allows_unasked_credentials());
        // Even for a host opted in to plain-HTTP authentication: the 401 decides.
        assert!(PlainHttpAuth::Any
            .check("Negotiate", "h", Transport::Plain)
            .is_ok());
        assert!(!Transport::Plain.allows_unasked_credentials());
    }

    #[test]
    fn opt_in_is_per_host() {
        let p = PlainHttpAuth::Hosts(vec!["Build.Example".into()]);
        assert!(p
            .check("Negotiate", "build.example", Transport::Plain)
            .is_ok());
        assert!(p
            .check("Negotiate", "other.example", Transport::Plain)
            .is_err());
        assert!(PlainHttpAuth::Any
            .check("Negotiate", "x", Transport::Plain)
            .is_ok());
    }

    #[test]
    fn mutual_auth_parses_its_three_names_only() {
        assert_eq!("Required".parse(), Ok(MutualAuth::Required));
        assert_eq!("optional".parse(), Ok(MutualAuth::Optional));
        assert_eq!("off".parse(), Ok(MutualAuth::Off));
        assert!("yes".parse::<MutualAuth>().is_err());
    }
}

/// An authentication scheme kerbside knows, strongest first (the derived order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemeKind {
    /// Negotiate: Kerberos through SPNEGO (RFC 4559).
    Negotiate,
    /// NTLM (MS-NLMP).
    Ntlm,
    /// Digest (RFC 7616).
    Digest,
    /// Basic (RFC 7617): the password itself, merely encoded.
    Basic,
}

impl SchemeKind {
    /// Every scheme, strongest first.
    pub const ALL: [SchemeKind; 4] = [Self::Negotiate, Self::Ntlm, Self::Digest, Self::Basic];

    /// The scheme's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Negotiate => "Negotiate",
            Self::Ntlm => "NTLM",
            Self::Digest => "Digest",
            Self::Basic => "Basic",
        }
    }

    /// The kind of a challenge's scheme, if kerbside knows it.
    pub fn of(scheme: &crate::header::Scheme) -> Option<SchemeKind> {
        Self::ALL.into_iter().find(|k| scheme.is(k.name()))
    }

    /// Whether this version of kerbside can answer the scheme (all four can).
    pub fn implemented(self) -> bool {
        true
    }

    /// The scheme for its name on the command line or in a file (`negotiate`, `ntlm`,
    /// `digest`, `basic`), without regard to case.
    pub fn from_name(name: &str) -> Option<SchemeKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which schemes a client may answer, in what order, and over what transport: one
/// object for every decision about which credentials go where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemePolicy {
    /// The schemes the client may use (order does not matter: strength decides).
    pub enabled: Vec<SchemeKind>,
    /// After a stronger scheme failed, may a weaker one be tried? Off by default: a
    /// man in the middle could otherwise force a downgrade.
    pub allow_downgrade: bool,
    /// Which hosts may receive credentials over plain HTTP.
    pub plain_http: PlainHttpAuth,
}

impl Default for SchemePolicy {
    /// Negotiate only, no downgrade, TLS only.
    fn default() -> Self {
        Self {
            enabled: vec![SchemeKind::Negotiate],
            allow_downgrade: false,
            plain_http: PlainHttpAuth::Refuse,
        }
    }
}

/// The scheme a policy chose for a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen<'a> {
    /// The scheme.
    pub kind: SchemeKind,
    /// The challenge that offered it.
    pub challenge: &'a crate::header::Challenge,
    /// Why, in words for `-v`.
    pub reason: String,
}

/// Why a policy answers no challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeRefusal {
    /// The server offered no scheme kerbside knows.
    #[error("the server asks for authentication but offers no scheme kerbside knows (it offered: {offered})")]
    NothingKnown {
        /// What the server offered.
        offered: String,
    },
    /// The server offered only schemes the user did not enable.
    #[error("the server offers {offered}, none of which is enabled (enabled: {enabled}); use --anyauth or the matching option")]
    NotEnabled {
        /// What the server offered.
        offered: String,
        /// What the policy allows.
        enabled: String,
    },
    /// Every enabled scheme on offer needs credentials the client does not hold.
    #[error("the server offers {offered}, and kerbside holds no credentials it may use for any of them ({reasons})")]
    NoCredentials {
        /// What the server offered.
        offered: String,
        /// Each skipped scheme and why.
        reasons: String,
        /// The strongest skipped scheme.
        strongest: SchemeKind,
        /// Why it was skipped.
        strongest_reason: String,
    },
    /// The best scheme is known but not implemented yet.
    #[error("the server offers {0}, which this version of kerbside cannot answer yet")]
    NotImplemented(SchemeKind),
    /// A stronger scheme failed and falling back to a weaker one is not allowed.
    #[error("{failed} failed and the server also offers {weaker}; kerbside does not fall back to a weaker scheme (a man in the middle could force that)")]
    Downgrade {
        /// The scheme that failed.
        failed: SchemeKind,
        /// The weaker schemes on offer.
        weaker: String,
    },
    /// The transport forbids sending credentials.
    #[error(transparent)]
    Transport(#[from] PolicyError),
}

fn names(kinds: impl IntoIterator<Item = SchemeKind>) -> String {
    let v: Vec<&str> = kinds.into_iter().map(SchemeKind::name).collect();
    if v.is_empty() {
        "nothing".to_owned()
    } else {
        v.join(", ")
    }
}

impl SchemePolicy {
    /// A policy allowing exactly these schemes.
    pub fn only(enabled: &[SchemeKind]) -> Self {
        Self {
            enabled: enabled.to_vec(),
            ..Self::default()
        }
    }

    /// True if the scheme is enabled.
    pub fn allows(&self, kind: SchemeKind) -> bool {
        self.enabled.contains(&kind)
    }

    /// Chooses which challenge to answer: the strongest offered scheme that is
    /// enabled, weaker than `failed` only if downgrades are allowed, and only if
    /// credentials may travel to `host` over `transport`.
    pub fn choose<'a>(
        &self,
        challenges: &'a [crate::header::Challenge],
        failed: Option<SchemeKind>,
        host: &str,
        transport: Transport,
    ) -> Result<Chosen<'a>, SchemeRefusal> {
        self.choose_among(challenges, failed, host, transport, &[])
    }

    /// Like [`choose`](Self::choose), but skips the schemes in `unavailable`: those the
    /// client holds no credentials for (no Kerberos ticket, no password for the host),
    /// or whose offer it may not take (Digest with MD5 only, when MD5 is not allowed).
    /// Each comes with the reason, which the chosen scheme's reason repeats.
    pub fn choose_among<'a>(
        &self,
        challenges: &'a [crate::header::Challenge],
        failed: Option<SchemeKind>,
        host: &str,
        transport: Transport,
        unavailable: &[(SchemeKind, String)],
    ) -> Result<Chosen<'a>, SchemeRefusal> {
        let mut offered: Vec<(SchemeKind, &crate::header::Challenge)> = challenges
            .iter()
            .filter_map(|c| SchemeKind::of(&c.scheme).map(|k| (k, c)))
            .collect();
        offered.sort_by_key(|(k, _)| *k);
        offered.dedup_by_key(|(k, _)| *k);
        if offered.is_empty() {
            let all: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            return Err(SchemeRefusal::NothingKnown {
                offered: if all.is_empty() {
                    "nothing".to_owned()
                } else {
                    all.join(", ")
                },
            });
        }
        let skipped: Vec<&(SchemeKind, String)> = unavailable
            .iter()
            .filter(|(k, _)| self.allows(*k) && offered.iter().any(|(o, _)| o == k))
            .collect();
        let enabled: Vec<_> = offered
            .iter()
            .filter(|(k, _)| self.allows(*k) && !unavailable.iter().any(|(u, _)| u == k))
            .copied()
            .collect();
        let candidates: Vec<_> = match failed {
            None => enabled,
            Some(f) => {
                let weaker: Vec<_> = enabled.into_iter().filter(|(k, _)| *k > f).collect();
                if !weaker.is_empty() && !self.allow_downgrade {
                    return Err(SchemeRefusal::Downgrade {
                        failed: f,
                        weaker: names(weaker.iter().map(|(k, _)| *k)),
                    });
                }
                weaker
            }
        };
        let Some(&(kind, challenge)) = candidates.first() else {
            if let Some((first, reason)) = skipped.first() {
                return Err(SchemeRefusal::NoCredentials {
                    offered: names(offered.iter().map(|(k, _)| *k)),
                    reasons: skipped
                        .iter()
                        .map(|(k, r)| format!("{k}: {r}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                    strongest: *first,
                    strongest_reason: reason.clone(),
                });
            }
            return Err(SchemeRefusal::NotEnabled {
                offered: names(offered.iter().map(|(k, _)| *k)),
                enabled: names(self.enabled.iter().copied()),
            });
        };
        if !kind.implemented() {
            return Err(SchemeRefusal::NotImplemented(kind));
        }
        self.plain_http.check(kind.name(), host, transport)?;
        let mut reason = if offered.len() == 1 {
            "the only scheme the server offered".to_owned()
        } else {
            format!(
                "the strongest enabled scheme of those offered ({})",
                names(offered.iter().map(|(k, _)| *k))
            )
        };
        for (k, why) in skipped.iter().filter(|(k, _)| *k < kind) {
            reason.push_str(&format!("; {k} skipped: {why}"));
        }
        Ok(Chosen {
            kind,
            challenge,
            reason,
        })
    }
}

#[cfg(test)]
mod scheme_tests {
    use super::*;
    use crate::header::parse_challenges;

    fn offer(lines: &[&str]) -> Vec<crate::header::Challenge> {
        parse_challenges(lines.iter().map(|l| l.as_bytes())).unwrap()
    }

    #[test]
    fn strongest_enabled_wins_whatever_the_order_offered() {
        let policy = SchemePolicy::only(&SchemeKind::ALL);
        let c = offer(&["Basic realm=\"x\"", "NTLM", "Negotiate"]);
        let chosen = policy.choose(&c, None, "h", Transport::Tls).unwrap();
        assert_eq!(chosen.kind, SchemeKind::Negotiate);
        assert!(
            chosen.reason.contains("Negotiate, NTLM, Basic"),
            "{}",
            chosen.reason
        );
    }

    #[test]
    fn schemes_without_credentials_are_skipped_and_the_reason_says_so() {
        let policy = SchemePolicy::only(&SchemeKind::ALL);
        let c = offer(&[
            "Basic realm=\"x\"",
            "Digest realm=\"x\", nonce=\"n\"",
            "NTLM",
            "Negotiate",
        ]);
        let unavailable = [(SchemeKind::Negotiate, "no Kerberos ticket".to_owned())];
        let chosen = policy
            .choose_among(&c, None, "h", Transport::Tls, &unavailable)
            .unwrap();
        assert_eq!(chosen.kind, SchemeKind::Ntlm);
        assert!(
            chosen
                .reason
                .contains("Negotiate skipped: no Kerberos ticket"),
            "{}",
            chosen.reason
        );
        let none = [
            (SchemeKind::Negotiate, "no Kerberos ticket".to_owned()),
            (SchemeKind::Ntlm, "no password".to_owned()),
        ];
        let err = policy
            .choose_among(
                &offer(&["NTLM", "Negotiate"]),
                None,
                "h",
                Transport::Tls,
                &none,
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                SchemeRefusal::NoCredentials {
                    strongest: SchemeKind::Negotiate,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("NTLM: no password"), "{err}");
    }

    #[test]
    fn scheme_names_parse_without_case() {
        assert_eq!(SchemeKind::from_name("ntlm"), Some(SchemeKind::Ntlm));
        assert_eq!(SchemeKind::from_name("DIGEST"), Some(SchemeKind::Digest));
        assert_eq!(SchemeKind::from_name("bearer"), None);
    }

    #[test]
    fn no_silent_downgrade() {
        let c = offer(&["Negotiate, Basic realm=\"x\""]);
        let strict = SchemePolicy::only(&[SchemeKind::Negotiate, SchemeKind::Basic]);
        let err = strict
            .choose(&c, Some(SchemeKind::Negotiate), "h", Transport::Tls)
            .unwrap_err();
        assert!(matches!(
            err,
            SchemeRefusal::Downgrade {
                failed: SchemeKind::Negotiate,
                ..
            }
        ));
        let lax = SchemePolicy {
            allow_downgrade: true,
            ..strict
        };
        // Allowed by the user: Basic is taken.
        assert_eq!(
            lax.choose(&c, Some(SchemeKind::Negotiate), "h", Transport::Tls)
                .map(|c| c.kind),
            Ok(SchemeKind::Basic)
        );
    }

    #[test]
    fn disabled_and_unknown_schemes() {
        let policy = SchemePolicy::default();
        let err = policy
            .choose(
                &offer(&["NTLM", "Basic realm=\"x\""]),
                None,
                "h",
                Transport::Tls,
            )
            .unwrap_err();
        assert!(matches!(err, SchemeRefusal::NotEnabled { .. }), "{err}");
        assert!(err.to_string().contains("--anyauth"));
        let err = policy
            .choose(&offer(&["Bearer realm=\"x\""]), None, "h", Transport::Tls)
            .unwrap_err();
        assert!(matches!(err, SchemeRefusal::NothingKnown { .. }));
    }

    #[test]
    fn plain_http_is_checked_for_the_chosen_scheme() {
        let err = SchemePolicy::default()
            .choose(&offer(&["Negotiate"]), None, "h", Transport::Plain)
            .unwrap_err();
        assert!(matches!(err, SchemeRefusal::Transport(_)));
        assert!(err.to_string().contains("--allow-http-auth"));
    }
}
