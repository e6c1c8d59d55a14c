//! Who an Active Directory user is, from the PAC of their ticket: the name the gate gives
//! them, and the account and group SIDs it keeps for them between requests.
//!
//! **The name.** GSSAPI names the client as the ticket request spelled it: `BOB@REALM`
//! after `kinit BOB`, `bob\@ad.example.test@REALM` after `kinit -E bob@ad.example.test`. AD
//! matches names without regard to case and in several forms, so all of those are the same
//! account. With a PAC (checked by GSSAPI), the gate names the client
//! `sAMAccountName@REALM` in the account's own case (`bob@AD.EXAMPLE.TEST`), whatever was
//! typed; rules, logs, the identity header and `REMOTE_USER` all see that one name. A
//! ticket without a PAC (an MIT KDC's) keeps GSSAPI's name.
//!
//! **Between requests.** Only the first request of a connection (connection mode) or of a
//! session (cookie mode) carries a ticket, so the account ([`DomainAccount`]) is kept by
//! name until the ticket expires, and later requests of the same user find it here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kerbside_proto::pac::{Pac, PacError};

use crate::ad_groups::GroupNames;
use crate::identity::{DomainAccount, DomainGroup};

/// At most this many accounts are kept; beyond it, expired ones are dropped first.
const MAX_ACCOUNTS: usize = 50_000;

/// How long an account is kept when the ticket's lifetime is unknown.
const DEFAULT_KEEP: Duration = Duration::from_secs(10 * 3600);

/// Reads the PAC GSSAPI verified for `principal` (GSSAPI's name of the client): the name
/// the gate uses for the client, and the account with its group SIDs (no names yet).
///
/// Falls back to `principal` (and says why) when the PAC names another domain than the
/// principal's realm, or an account name that could not be part of a principal.
pub(crate) fn from_pac(principal: &str, pac: &[u8]) -> Result<(String, DomainAccount), PacError> {
    let pac = Pac::parse(pac)?;
    let logon = pac.logon_info()?.ok_or(PacError::Truncated)?;
    let upn_dns = pac.upn_dns_info()?;
    let mut account =
        DomainAccount::new(logon.account_name.clone(), logon.logon_domain_name.clone());
    account.sid = logon.user_sid().map(|s| s.to_string());
    account.upn = upn_dns
        .as_ref()
        .filter(|u| !u.upn_constructed || !u.upn.is_empty())
        .map(|u| u.upn.clone());
    account.groups = logon
        .group_sids()
        .into_iter()
        .map(|sid| DomainGroup {
            sid: sid.to_string(),
            name: None,
        })
        .collect();
    let realm = realm_of(principal);
    let same_domain = match (&upn_dns, realm) {
        (Some(info), Some(realm)) => info.dns_domain.eq_ignore_ascii_case(realm),
        (None, Some(_)) => true,
        (_, None) => false,
    };
    let name = &logon.account_name;
    let usable = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '@' | '/' | '\\'));
    let canonical = match realm {
        Some(realm) if same_domain && usable => format!("{name}@{realm}"),
        _ => {
            tracing::warn!(
                %principal,
                account = %name.escape_debug(),
                "the PAC's account does not fit the principal; keeping GSSAPI's name"
            );
            principal.to_owned()
        }
    };
    Ok((canonical, account))
}

/// The realm of a principal: what follows its last `@` that is not escaped.
fn realm_of(principal: &str) -> Option<&str> {
    let mut at = None;
    let mut escaped = false;
    for (i, b) in principal.bytes().enumerate() {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'@') => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| &principal[i + 1..]).filter(|r| !r.is_empty())
}

/// The domain accounts of recent logins, by the name the gate gave them.
#[derive(Debug, Default)]
pub(crate) struct DomainAccounts {
    accounts: Mutex<HashMap<String, (DomainAccount, Instant)>>,
}

impl DomainAccounts {
    /// Keeps `account` for `principal` until its ticket expires (`lifetime`).
    pub(crate) fn insert(
        &self,
        principal: &str,
        account: DomainAccount,
        lifetime: Option<Duration>,
    ) {
        let now = Instant::now();
        let expires = now + lifetime.unwrap_or(DEFAULT_KEEP);
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if accounts.len() >= MAX_ACCOUNTS && !accounts.contains_key(principal) {
            accounts.retain(|_, (_, until)| *until > now);
            if accounts.len() >= MAX_ACCOUNTS {
                // Drop the account whose ticket ends first.
                if let Some(first) = accounts
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone())
                {
                    accounts.remove(&first);
                }
            }
        }
        accounts.insert(principal.to_owned(), (account, expires));
    }

    /// The name the gate gives the client GSSAPI named `principal`: with a verified
    /// `pac`, the account's own name (see the [module docs](self)), and the account is kept
    /// for the ticket's `lifetime`; without one, `principal` as it is.
    pub(crate) fn login(
        &self,
        principal: String,
        pac: Option<&[u8]>,
        lifetime: Option<Duration>,
    ) -> String {
        let Some(pac) = pac else {
            return principal;
        };
        match from_pac(&principal, pac) {
            Ok((name, account)) => {
                if name != principal {
                    tracing::debug!(%principal, %name, "named by the PAC");
                }
                self.insert(&name, account, lifetime);
                name
            }
            Err(e) => {
                tracing::warn!(%principal, "the ticket's PAC cannot be read ({e}); no groups from it");
                principal
            }
        }
    }

    /// The account of a login `principal` the domain vouched for (Kerberos, or NTLM checked
    /// by the domain controller), with its groups named through `names` (kept as SIDs
    /// without it). A name from the gate's own users files gets none, even if it reads
    /// like a domain user's.
    pub(crate) async fn resolved(
        &self,
        principal: &str,
        vouched_by_domain: bool,
        names: Option<&GroupNames>,
    ) -> Option<DomainAccount> {
        if !vouched_by_domain {
            return None;
        }
        let mut account = self.get(principal)?;
        if let Some(names) = names {
            let sids: Vec<String> = account.groups.iter().map(|g| g.sid.clone()).collect();
            account.groups = names.resolve(&sids).await;
        }
        Some(account)
    }

    /// The account kept for `principal`, if its ticket has not expired.
    pub(crate) fn get(&self, principal: &str) -> Option<DomainAccount> {
        let accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        accounts
            .get(principal)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(account, _)| account.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMBA_KINIT_BOB: &[u8] =
        include_bytes!("../../kerbside-proto/testdata/pac/samba-kinit-BOB.pac");

    #[test]
    fn the_pac_names_the_account_in_its_own_case() {
        for typed in [
            "BOB@AD.EXAMPLE.TEST",
            "bob@AD.EXAMPLE.TEST",
            "bob\\@ad.example.test@AD.EXAMPLE.TEST",
        ] {
            let (name, account) = from_pac(typed, SAMBA_KINIT_BOB).unwrap();
            assert_eq!(name, "Bob@AD.EXAMPLE.TEST", "{typed}");
            assert_eq!(account.down_level_name(), "ADEXAMPLE\\Bob");
            assert_eq!(account.upn.as_deref(), Some("Bob@ad.example.test"));
            assert_eq!(
                account.sid.as_deref(),
                Some("S-1-5-21-3024129864-1798402130-3102629853-1102")
            );
            assert_eq!(account.groups.len(), 3);
        }
    }

    #[test]
    fn a_pac_of_another_domain_keeps_gssapi_s_name() {
        let (name, _) = from_pac("bob@OTHER.TEST", SAMBA_KINIT_BOB).unwrap();
        assert_eq!(name, "bob@OTHER.TEST");
    }

    #[test]
    fn accounts_are_kept_until_the_ticket_expires() {
        let accounts = DomainAccounts::default();
        let account = DomainAccount::new("bob", "ADEXAMPLE");
        accounts.insert(
            "bob@AD.EXAMPLE.TEST",
            account.clone(),
            Some(Duration::from_secs(60)),
        );
        assert_eq!(accounts.get("bob@AD.EXAMPLE.TEST"), Some(account.clone()));
        accounts.insert("old@AD.EXAMPLE.TEST", account, Some(Duration::ZERO));
        assert_eq!(accounts.get("old@AD.EXAMPLE.TEST"), None);
        assert_eq!(accounts.get("carol@AD.EXAMPLE.TEST"), None);
    }
}
