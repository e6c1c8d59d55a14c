//! Push or read: how the access rules tell a request that changes a repository from one
//! that only reads it, by its method, path and query alone.

use std::borrow::Cow;
use std::fmt;

use http::Method;
use percent_encoding::percent_decode;
use serde::Deserialize;

/// What a request does: read, or change the repository (push).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Everything that is not a push: browsing, cloning, pulling, fetching.
    Read,
    /// A write: a Mercurial `unbundle` or `pushkey`, a git `receive-pack`, or a method that
    /// changes what is stored (`PUT`, `DELETE`, WebDAV's `MKCOL`, …).
    Push,
}

impl Operation {
    /// The name used in the configuration: `read` or `push`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Push => "push",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mercurial wire-protocol commands that need hgweb's `push` permission.
const HG_PUSH_COMMANDS: [&[u8]; 2] = [b"unbundle", b"pushkey"];

/// Tells a push from a read, by the shape of the request alone (never its body or headers).
///
/// A request is a [`Push`](Operation::Push) when any of these hold, and a
/// [`Read`](Operation::Read) otherwise:
///
/// - **Mercurial**: the query has `cmd=unbundle` or `cmd=pushkey` (hg's HTTP wire protocol
///   names the command in the query string), in any method; or `cmd=batch` in a `POST`,
///   because a batch may carry `pushkey` in `X-HgArg-*` headers or the body, which are not
///   looked at here, and hgweb refuses push commands in a batch sent with `GET` anyway (a
///   `cmds=` in the query that names `pushkey` or `unbundle` is a push with any method).
///   Clients send batches with `GET`, so anonymous pulls keep working, unless the server
///   enabled the experimental `httppostargs`, in which case pulls need push rights.
/// - **git**: a path segment is `git-receive-pack` (`POST …/git-receive-pack`), or the
///   query has `service=git-receive-pack` (`GET …/info/refs?service=git-receive-pack`).
/// - **Any app**: the method is not one that only reads, that is, it is none of `GET`,
///   `HEAD`, `OPTIONS`, `TRACE`, `POST`, `PROPFIND`, `REPORT` and `SEARCH`. So `PUT`,
///   `DELETE`, `PATCH`, WebDAV's `MKCOL`, `COPY`, `MOVE`, `LOCK`, `UNLOCK`, `PROPPATCH` (git's
///   old dumb-HTTP push) and any extension method are pushes. `POST` to other apps is a read:
///   restrict it with `methods` if it writes.
///
/// The query is parsed both as `&`-separated and as `&`- or `;`-separated (Python's
/// `parse_qsl` did the latter before 3.9.2), keys and values are form-decoded (`+` and
/// `%XX`), a command that appears twice counts if either is a push, and values compare
/// ignoring ASCII case: every doubt counts as a push.
///
/// ```
/// use http::Method;
/// use kerbside_server::access::{classify, Operation};
///
/// assert_eq!(classify(&Method::GET, "/hg/repo", Some("cmd=capabilities")), Operation::Read);
/// assert_eq!(classify(&Method::POST, "/hg/repo", Some("cmd=unbundle")), Operation::Push);
/// assert_eq!(
///     classify(&Method::GET, "/git/r.git/info/refs", Some("service=git-receive-pack")),
///     Operation::Push
/// );
/// assert_eq!(classify(&Method::POST, "/git/r.git/git-upload-pack", None), Operation::Read);
/// ```
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Operation {
    if method_writes(method)
        || path_is_receive_pack(path)
        || query.is_some_and(|q| query_is_push(method, q))
    {
        Operation::Push
    } else {
        Operation::Read
    }
}

fn method_writes(method: &Method) -> bool {
    let reads = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::POST,
    ];
    !reads.contains(method) && !matches!(method.as_str(), "PROPFIND" | "REPORT" | "SEARCH")
}

fn path_is_receive_pack(path: &str) -> bool {
    path.split('/').any(|raw| {
        let decoded: Cow<'_, [u8]> = percent_decode(raw.as_bytes()).into();
        decoded
            .split(|&b| b == b'/' || b == b'\\')
            .any(|piece| piece.eq_ignore_ascii_case(b"git-receive-pack"))
    })
}

fn query_is_push(method: &Method, query: &str) -> bool {
    let params = query_params(query, b"&").chain(query_params(query, b"&;"));
    for (key, value) in params {
        let push = match key.as_slice() {
            b"cmd" => {
                is_hg_push_command(&value)
                    || (*method == Method::POST && value.eq_ignore_ascii_case(b"batch"))
            }
            b"cmds" => value.split(|&b| b == b';').any(|op| {
                let op = op.trim_ascii_start();
                let name = op.split(|&b| b == b' ').next().unwrap_or_default();
                is_hg_push_command(name)
            }),
            b"service" => value.eq_ignore_ascii_case(b"git-receive-pack"),
            _ => false,
        };
        if push {
            return true;
        }
    }
    false
}

fn is_hg_push_command(command: &[u8]) -> bool {
    HG_PUSH_COMMANDS
        .iter()
        .any(|push| command.trim_ascii().eq_ignore_ascii_case(push))
}

/// The query's `key=value` pairs, split on any of `separators`, each side form-decoded.
fn query_params<'q>(
    query: &'q str,
    separators: &'static [u8],
) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + 'q {
    query
        .as_bytes()
        .split(move |b| separators.contains(b))
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => {
                let (key, value) = pair.split_at(at);
                (
                    form_decode(key),
                    form_decode(value.get(1..).unwrap_or_default()),
                )
            }
            None => (form_decode(pair), Vec::new()),
        })
}

fn form_decode(raw: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"POST /hg/repo?cmd=unbundle"` classified.
    fn op(line: &str) -> Operation {
        let (method, target) = line.split_once(' ').expect("method and target");
        let method = Method::from_bytes(method.as_bytes()).expect("test method");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        classify(&method, path, query)
    }

    // ---- classification on real request shapes ----

    #[test]
    fn mercurial_reads() {
        for line in [
            "GET /hg/repo?cmd=capabilities",
            "GET /hg/repo?cmd=listkeys&namespace=phases",
            "GET /hg/repo?cmd=listkeys&namespace=bookmarks",
            "GET /hg/repo?cmd=heads",
            "GET /hg/repo?cmd=batch&cmds=heads+%3Bknown+nodes%3D",
            "GET /hg/repo?cmd=getbundle",
            "GET /hg/repo?cmd=lookup&key=tip",
            "GET /hg/repo/log/tip",
            "GET /hg/repo/file/tip/unbundle.txt?style=raw",
            "HEAD /hg/repo",
        ] {
            assert_eq!(op(line), Operation::Read, "{line}");
        }
    }

    #[test]
    fn mercurial_pushes() {
        for line in [
            "POST /hg/repo?cmd=unbundle&heads=686173686564",
            "POST /hg/repo?cmd=pushkey&namespace=bookmarks&key=main&old=&new=abc",
            "POST /hg/repo?cmd=pushkey&namespace=phases&key=abc&old=1&new=0",
            // the method does not save a push command
            "GET /hg/repo?cmd=unbundle",
            // the command may come second, be encoded, be repeated or use `;`
            "POST /hg/repo?heads=686173686564&cmd=unbundle",
            "POST /hg/repo?c%6Dd=unbund%6Ce",
            "POST /hg/repo?cmd=capabilities&cmd=unbundle",
            "POST /hg/repo?cmd=capabilities;cmd=pushkey",
            "POST /hg/repo?cmd=UNBUNDLE",
            // a POSTed batch may carry pushkey in headers or body
            "POST /hg/repo?cmd=batch",
            // a batch that names pushkey in the query, whatever the method
            "GET /hg/repo?cmd=batch&cmds=heads+%3Bpushkey+namespace%3Dbookmarks",
            "GET /hg/repo?cmd=batch&cmds=heads ;pushkey namespace=bookmarks",
        ] {
            assert_eq!(op(line), Operation::Push, "{line}");
        }
    }

    #[test]
    fn git_reads() {
        for line in [
            "GET /git/repo.git/info/refs?service=git-upload-pack",
            "POST /git/repo.git/git-upload-pack",
            "GET /git/repo.git/info/refs",
            "GET /git/repo.git/HEAD",
            "GET /git/repo.git/objects/ab/cdef0123",
        ] {
            assert_eq!(op(line), Operation::Read, "{line}");
        }
    }

    #[test]
    fn git_pushes() {
        for line in [
            "GET /git/repo.git/info/refs?service=git-receive-pack",
            "POST /git/repo.git/git-receive-pack",
            "POST /git/repo.git/git-receive-pack/",
            "POST /git/repo.git/git%2Dreceive%2Dpack",
            "POST /git/repo.git/GIT-RECEIVE-PACK",
            "GET /git/repo.git/info/refs?service=git-upload-pack&service=git-receive-pack",
            // dumb-HTTP push over WebDAV
            "PUT /git/repo.git/objects/ab/cdef0123",
            "MKCOL /git/repo.git/objects/ab/",
            "MOVE /git/repo.git/refs/heads/main.lock",
            "LOCK /git/repo.git/info/refs",
            "PROPPATCH /git/repo.git/",
        ] {
            assert_eq!(op(line), Operation::Push, "{line}");
        }
    }

    #[test]
    fn methods_that_write_are_pushes_for_any_app() {
        for name in [
            "PUT",
            "DELETE",
            "PATCH",
            "COPY",
            "UNLOCK",
            "CONNECT",
            "FROBNICATE",
        ] {
            assert_eq!(op(&format!("{name} /app/x")), Operation::Push, "{name}");
        }
        for name in [
            "GET", "HEAD", "OPTIONS", "TRACE", "POST", "PROPFIND", "REPORT", "SEARCH",
        ] {
            assert_eq!(op(&format!("{name} /app/x")), Operation::Read, "{name}");
        }
    }
}
