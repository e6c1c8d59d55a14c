//! The request itself, through kerbside-client: which schemes the server offers,
//! whether the token was accepted and the server proved itself (mutual
//! authentication), the `Authorization` header's size against common server limits,
//! and NTLM inside SPNEGO (the sign of a missing SPN).

use std::sync::{Arc, Mutex};

use http::{Request, Uri};
use kerbside_client::{Client, ClientConfig, Event, Outcome, RequestBody};
use kerbside_proto::scheme::negotiate::client::MutualOutcome;

use super::service::Names;
use super::Finding;

/// nginx: `large_client_header_buffers 4 8k`, one header line in one 8 KiB buffer.
const NGINX_LINE: usize = 8192;
/// Apache: `LimitRequestFieldSize 8190`.
const APACHE_FIELD: usize = 8190;

/// What the events of one request say.
#[derive(Default)]
struct Seen {
    offered: Vec<String>,
    first_status: Option<String>,
    authorization: Vec<(String, usize)>,
    ntlm_inside: bool,
    mutual: Option<MutualOutcome>,
}

/// `Negotiate [redacted, 1234 bytes]` → (`Negotiate`, the header line's length).
fn authorization_size(value: &str) -> Option<(String, usize)> {
    let (scheme, rest) = value.split_once(' ')?;
    let n: usize = rest
        .strip_prefix("[redacted, ")?
        .strip_suffix(" bytes]")?
        .parse()
        .ok()?;
    Some((
        scheme.to_owned(),
        "Authorization: ".len() + scheme.len() + 1 + n,
    ))
}

/// The scheme names in a `WWW-Authenticate` value (`Negotiate, Basic realm="x"`).
fn schemes_in(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|part| {
            let word = part.split_whitespace().next()?;
            let is_scheme = word.starts_with(|c: char| c.is_ascii_alphabetic())
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            is_scheme.then(|| word.to_owned())
        })
        .collect()
}

fn observe(events: &[Event]) -> Seen {
    let mut seen = Seen::default();
    for event in events {
        match event {
            Event::Response { line, headers, .. } => {
                if seen.first_status.is_none() {
                    seen.first_status = Some(line.clone());
                }
                // Challenges come with a 401; a 200's header is the final token.
                if !line.contains(" 401") {
                    continue;
                }
                for (name, value) in headers {
                    if name == "www-authenticate" {
                        for s in schemes_in(value) {
                            if !seen.offered.contains(&s) {
                                seen.offered.push(s);
                            }
                        }
                    }
                }
            }
            Event::Request { headers, .. } => {
                for (name, value) in headers {
                    if name == "authorization" {
                        if let Some(size) = authorization_size(value) {
                            seen.authorization.push(size);
                        }
                    }
                }
            }
            Event::Scheme { scheme, proxy, .. } if !proxy && scheme.starts_with("NTLM inside") => {
                seen.ntlm_inside = true;
            }
            Event::Authenticated {
                proxy: false,
                scheme,
                mutual,
                ..
            } if scheme == "Negotiate" => seen.mutual = Some(*mutual),
            _ => {}
        }
    }
    seen
}

/// The server refused a token: name the key version the ticket was under, the
/// usual reason.
fn rejected(found: String, names: Option<&Names>) -> Finding {
    let kvno = names
        .and_then(|n| n.ticket.as_ref())
        .and_then(|t| t.kvno.map(|k| (t.server.clone(), k)));
    Finding::fail(
        "request",
        "token_rejected",
        found,
        match kvno {
            Some((server, k)) => format!(
                "the server could not use the ticket for {server} (key version kvno {k}): if \
                 its keytab holds an older kvno (klist -kt KEYTAB on the server), export the \
                 current key (kadmin ktadd); or it rejects the channel binding (try \
                 --channel-binding off); the server's log says which"
            ),
            None => "see the server's log (a keytab with another key version, or channel \
                     bindings)"
                .to_owned(),
        },
    )
}

/// Sends a GET to `url` and judges what happened.
pub(super) async fn check(
    url: &Uri,
    config: ClientConfig,
    names: Option<&Names>,
    extra_limit: Option<usize>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding::fail(
                "request",
                "client_setup",
                format!("cannot set up the client: {e}"),
                "fix the option the message names",
            ));
            return findings;
        }
    };
    let request = match Request::get(url.clone()).body(RequestBody::empty()) {
        Ok(r) => r,
        Err(e) => {
            findings.push(Finding::fail(
                "request",
                "bad_url",
                format!("cannot make a request for {url}: {e}"),
                "check the URL",
            ));
            return findings;
        }
    };
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = events.clone();
    let observer = move |e: &Event| {
        if let Ok(mut list) = sink.lock() {
            list.push(e.clone());
        }
    };
    let result = client.send(request, &observer).await;
    let seen = observe(&events.lock().map(|l| l.clone()).unwrap_or_default());
    if seen.offered.is_empty() {
        if let Some(status) = &seen.first_status {
            findings.push(Finding::ok(
                "schemes",
                format!("{url} did not ask for authentication (first answer: {status})"),
            ));
        }
    } else {
        let level_negotiate = seen
            .offered
            .iter()
            .any(|s| s.eq_ignore_ascii_case("Negotiate"));
        let found = format!("{url} offers {}", seen.offered.join(", "));
        if level_negotiate {
            findings.push(Finding::ok("schemes", found));
        } else {
            findings.push(Finding::warn(
                "schemes",
                "no_negotiate",
                format!("{found}, not Negotiate"),
                "Kerberos needs the server to offer Negotiate: enable it there (the gate's \
                 --keytab, mod_auth_gssapi)",
            ));
        }
    }
    if seen.ntlm_inside {
        findings.push(Finding::warn(
            "token",
            "ntlm_in_spnego",
            "the Negotiate token was NTLM inside SPNEGO, not Kerberos",
            names.map_or_else(
                || "register the service principal and get a ticket (kinit)".to_owned(),
                |n| {
                    format!(
                        "this is what clients do when the KDC has no ticket for {}: register the \
                     SPN (see service-ticket above), or kinit",
                        n.kerbside
                    )
                },
            ),
        ));
    }
    if let Some((scheme, size)) = seen.authorization.iter().max_by_key(|(_, n)| *n).cloned() {
        let gate = kerbside_server::gate::MAX_HEADER_BYTES;
        let found = format!(
            "the Authorization header ({scheme}) is {size} bytes; limits: nginx {NGINX_LINE} \
             per line (large_client_header_buffers), Apache {APACHE_FIELD} \
             (LimitRequestFieldSize), kerbside gate {gate} for all headers{}",
            extra_limit.map_or_else(String::new, |l| format!(", --header-limit {l}"))
        );
        if size > gate || extra_limit.is_some_and(|l| size > l) {
            findings.push(Finding::fail(
                "header-size",
                "header_too_large",
                found,
                "the ticket is too big for the server: raise its limit, or make the ticket \
                 smaller (fewer group memberships in AD, no PAC for this service)",
            ));
        } else if size > APACHE_FIELD {
            findings.push(Finding::warn(
                "header-size",
                "header_too_large",
                found,
                "nginx and Apache refuse a header this size by default: raise \
                 large_client_header_buffers (nginx) or LimitRequestFieldSize (Apache), or make \
                 the ticket smaller (fewer groups)",
            ));
        } else {
            findings.push(Finding::ok("header-size", found));
        }
    }
    let sent_token = !seen.authorization.is_empty();
    match result {
        Ok(response) => {
            let status = response.status();
            let outcome = response.extensions().get::<Outcome>().cloned();
            let scheme = outcome
                .as_ref()
                .and_then(|o| o.scheme)
                .map(|s| format!("{s:?}"));
            if status.as_u16() == 401 && sent_token {
                findings.push(rejected(
                    format!("the server rejected the token: {url} answered 401 again"),
                    names,
                ));
            } else if status.as_u16() == 401 {
                findings.push(Finding::fail(
                    "request",
                    "not_authenticated",
                    format!("{url} answered 401 and no token was sent"),
                    "see the credentials and service-ticket lines above",
                ));
            } else {
                findings.push(Finding::ok(
                    "request",
                    format!(
                        "{url} answered {status}{}",
                        scheme.map_or_else(String::new, |s| format!(" after {s} authentication"))
                    ),
                ));
            }
        }
        Err(e)
            if sent_token
                && e.is_auth()
                && !e.kerberos_unavailable()
                && !e.lacks_kerberos_credentials()
                && !e.to_string().contains("did not verify") =>
        {
            findings.push(rejected(format!("the request to {url} failed: {e}"), names));
        }
        Err(e) => findings.push(Finding::fail(
            "request",
            "request_failed",
            format!("the request to {url} failed: {e}"),
            if e.kerberos_unavailable() || e.lacks_kerberos_credentials() {
                "see the credentials and service-ticket lines above"
            } else {
                "the message says what to do; docs/troubleshooting.md has more"
            },
        )),
    }
    match seen.mutual {
        Some(MutualOutcome::Verified) => findings.push(Finding::ok(
            "mutual",
            "mutual authentication: the server proved it holds the service key",
        )),
        Some(MutualOutcome::NotSent) => findings.push(Finding::warn(
            "mutual",
            "no_mutual_auth",
            "the server sent no final Negotiate token, so it did not prove who it is",
            "nothing to fix on this side; servers that send it (mod_auth_gssapi, the gate) are \
             checked with --mutual required",
        )),
        Some(MutualOutcome::NotChecked) | None => {}
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redacted_sizes_and_offers() {
        assert_eq!(
            authorization_size("Negotiate [redacted, 1000 bytes]"),
            Some(("Negotiate".to_owned(), 15 + 10 + 1000))
        );
        assert_eq!(authorization_size("Negotiate"), None);
        assert_eq!(
            schemes_in("Negotiate, Basic realm=\"x\", charset=\"UTF-8\""),
            vec!["Negotiate", "Basic"]
        );
        assert_eq!(
            schemes_in("Negotiate [redacted, 248 bytes]"),
            vec!["Negotiate"]
        );
    }
}
