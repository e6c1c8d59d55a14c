//! The gate's whoami page (`/.kerbside/whoami` by default): who the client is (principal,
//! the user name the applications get, realm, groups) and how they logged in (scheme,
//! the gate's mode, what carried the identity on this request, channel binding, when a
//! session cookie expires), in HTML for browsers and in JSON for `Accept:
//! application/json`. The first thing to look at when "it asks for a password" or "the
//! application sees the wrong user".
//!
//! It is served behind authentication and the access rules like any path, and it never
//! shows a credential: no token, no cookie value, no header of the request.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::auth::AuthMode;
use crate::body::GateBody;
use crate::identity::{Authenticated, LoginDetails};
use crate::usermap::UserMap;

/// The default path of the page.
pub const DEFAULT_WHOAMI_PATH: &str = "/.kerbside/whoami";

/// The page, with what it needs of the gate's configuration.
#[derive(Debug, Clone)]
pub struct WhoamiPage {
    path: String,
    user_map: Option<UserMap>,
    mode: AuthMode,
}

impl WhoamiPage {
    /// The page at `path` (canonical), naming users as `user_map` does (none: the
    /// principal), for a gate in `mode`.
    pub fn new(path: impl Into<String>, user_map: Option<UserMap>, mode: AuthMode) -> Self {
        Self {
            path: path.into(),
            user_map,
            mode,
        }
    }

    /// Whether `request` asks for this page.
    pub fn matches<B>(&self, request: &Request<B>) -> bool {
        request.uri().path() == self.path
            && (request.method() == Method::GET || request.method() == Method::HEAD)
    }

    /// The page for `request`, from the identity the layer put in its extensions.
    pub fn answer<B>(&self, request: &Request<B>) -> Response<GateBody> {
        let facts = Facts::of(request, self);
        let json = request
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/json"));
        let (content_type, text) = if json {
            ("application/json", facts.json())
        } else {
            ("text/html; charset=utf-8", facts.html())
        };
        let body = if request.method() == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(text)
        };
        let mut response = Response::new(
            Full::new(body)
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed(),
        );
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// What the page shows.
struct Facts {
    who: Option<Authenticated>,
    user: Option<String>,
    details: Option<LoginDetails>,
    mode: &'static str,
}

impl Facts {
    fn of<B>(request: &Request<B>, page: &WhoamiPage) -> Facts {
        let who = request.extensions().get::<Authenticated>().cloned();
        let user = who.as_ref().map(|w| match (&page.user_map, w.kerberos) {
            (Some(map), true) => map.map(&w.principal).unwrap_or_else(|| w.principal.clone()),
            _ => w.principal.clone(),
        });
        Facts {
            who,
            user,
            details: request.extensions().get::<LoginDetails>().copied(),
            mode: match page.mode {
                AuthMode::None => "none",
                AuthMode::PerRequest => "per-request",
                AuthMode::Connection => "connection",
                AuthMode::Cookie => "cookie",
            },
        }
    }

    fn expires(&self) -> Option<u64> {
        self.details
            .and_then(|d| d.session_expires)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    }

    fn json(&self) -> String {
        let Some(who) = &self.who else {
            return format!(
                "{{\"authenticated\":false,\"mode\":{}}}\n",
                quote(self.mode)
            );
        };
        let groups: Vec<String> = who.groups.iter().map(|g| quote(g)).collect();
        format!(
            "{{\"authenticated\":true,\"principal\":{},\"user\":{},\"realm\":{},\
             \"groups\":[{}],\"scheme\":{},\"mode\":{},\"via\":{},\"channel_bound\":{},\
             \"session_expires\":{}}}\n",
            quote(&who.principal),
            quote(self.user.as_deref().unwrap_or(&who.principal)),
            who.realm
                .as_deref()
                .map_or_else(|| "null".to_owned(), quote),
            groups.join(","),
            quote(who.scheme.name()),
            quote(self.mode),
            self.details
                .map_or_else(|| "null".to_owned(), |d| quote(d.via.name())),
            who.channel_bound,
            self.expires()
                .map_or_else(|| "null".to_owned(), |t| t.to_string()),
        )
    }

    fn html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Who am I</title>\
             <style>body{font:22px sans-serif;margin:2em}th{text-align:left;padding-right:1em}\
             td,th{padding:.3em}</style></head><body>\n",
        );
        let Some(who) = &self.who else {
            let _ = writeln!(
                out,
                "<h1>Not logged in</h1><p>This request carried no credentials the gate \
                 accepted (the gate's mode: {}).</p></body></html>",
                escape(self.mode)
            );
            return out;
        };
        let _ = write!(out, "<h1>{}</h1>\n<table>\n", escape(&who.principal));
        let mut row = |name: &str, value: &str| {
            let _ = writeln!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(name),
                escape(value)
            );
        };
        row("User name", self.user.as_deref().unwrap_or(&who.principal));
        row("Realm", who.realm.as_deref().unwrap_or("(none)"));
        let groups = if who.groups.is_empty() {
            "(none)".to_owned()
        } else {
            who.groups.join(", ")
        };
        row("Groups", &groups);
        row("Scheme", who.scheme.name());
        row("Mode", self.mode);
        row(
            "Logged in by",
            self.details.map_or("credentials", |d| d.via.name()),
        );
        row(
            "Channel-bound",
            if who.channel_bound { "yes" } else { "no" },
        );
        if let Some(expires) = self.expires() {
            let left = expires.saturating_sub(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            );
            row(
                "Session expires",
                &format!("in {} min (unix time {expires})", left / 60),
            );
        }
        out.push_str("</table></body></html>\n");
        out
    }
}

/// A JSON string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// HTML text.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kerbside_proto::SchemeKind;

    fn body(response: Response<GateBody>) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn names_are_escaped_in_html_and_json() {
        let page = WhoamiPage::new("/.kerbside/whoami", None, AuthMode::Cookie);
        let mut request = Request::get("/.kerbside/whoami").body(()).unwrap();
        let mut who = Authenticated::new("<script>\"x\"@EXAMPLE.TEST", SchemeKind::Negotiate, true);
        who.groups = vec!["a&b".to_owned()];
        request.extensions_mut().insert(who);
        let html = body(page.answer(&request));
        assert!(
            html.contains("&lt;script&gt;&quot;x&quot;@EXAMPLE.TEST"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("a&amp;b"), "{html}");
        request
            .headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        let json = body(page.answer(&request));
        assert!(
            json.contains(r#""principal":"\u003cscript\u003e\"x\"@EXAMPLE.TEST""#),
            "{json}"
        );
        assert!(json.contains(r#""groups":["a\u0026b"]"#), "{json}");
    }

    #[test]
    fn an_anonymous_request_is_told_so() {
        let page = WhoamiPage::new("/.kerbside/whoami", None, AuthMode::PerRequest);
        let request = Request::get("/.kerbside/whoami")
            .header(ACCEPT, "application/json")
            .body(())
            .unwrap();
        assert_eq!(
            body(page.answer(&request)),
            "{\"authenticated\":false,\"mode\":\"per-request\"}\n"
        );
        assert!(!page.matches(&Request::post("/.kerbside/whoami").body(()).unwrap()));
        assert!(!page.matches(&Request::get("/.kerbside/whoamix").body(()).unwrap()));
    }
}
