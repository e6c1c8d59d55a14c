//! Entry points shared by the `cargo fuzz` targets for the server's parsers and the
//! tests that replay their seed corpora, so both check the same properties.

use crate::access::{AccessRules, Decision, Groups};
use crate::usermap::{MapFile, UserMap};

/// Canonicalises `data` as a request target at the gate's edge: the canonical path has the
/// properties [`kerbside_proto::fuzzing::request_path`] checks, is the path the router then
/// matches (the request's URI), and is judged by the access rules and given to CGI as it
/// is, never refused there as not canonical; a refused target leaves the request as it was.
pub fn request_path(data: &[u8]) {
    kerbside_proto::fuzzing::request_path(data);
    let Ok(uri) = http::Uri::try_from(data) else {
        return;
    };
    let mut request = http::Request::new(());
    *request.uri_mut() = uri.clone();
    match crate::canonical_path::canonicalise(&mut request) {
        Ok(canonical) => {
            let path = request.uri().path();
            assert_eq!(path, canonical.as_str(), "{uri}");
            assert_eq!(request.uri().query(), uri.query(), "{uri}");
            let rules = AccessRules::allow_all_authenticated();
            assert_eq!(
                rules.decide(
                    request.method(),
                    path,
                    request.uri().query(),
                    Some("fuzz@EXAMPLE.TEST")
                ),
                Decision::Allow,
                "{uri}"
            );
            assert!(crate::cgi::path_info("", path).is_ok(), "{uri}");
        }
        Err(_) => assert_eq!(request.uri(), &uri),
    }
}

/// Parses `data` as a groups file; what parses must write back to an equal value.
pub fn groups(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(groups) = Groups::parse(&text) {
        let written = groups.to_string();
        match Groups::parse(&written) {
            Ok(again) => assert_eq!(again, groups, "{written:?}"),
            Err(error) => panic!("{written:?} does not parse back: {error}"),
        }
    }
}

/// Parses `data` as a user-map file; what parses must round-trip and map each of its
/// principals to its user; stripping realms never panics.
pub fn usermap(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(map) = MapFile::parse(&text) {
        match MapFile::parse(&map.to_string()) {
            Ok(again) => assert_eq!(again, map),
            Err(e) => panic!("a formatted map does not parse: {e}"),
        }
        let users = UserMap::File(map.clone());
        for (principal, user) in map.iter() {
            assert_eq!(users.map(principal).as_deref(), Some(user));
        }
    }
    for line in text.lines() {
        let _ = UserMap::StripRealm { realms: Vec::new() }.map(line);
    }
}

/// Reads `data` as a forward-auth subrequest's headers (first line the original URI,
/// second the method, a third line present: Caddy's names instead of nginx's) and
/// each line as a trusted address: an accepted target is origin-form, and a refusal
/// or an error never panics.
pub fn forward_auth(data: &[u8]) {
    use crate::forward_auth::{original_request, parse_trusted};
    let mut lines = data.split(|b| *b == b'\n');
    let uri = lines.next().unwrap_or_default();
    let method = lines.next().unwrap_or_default();
    let caddy = lines.next().is_some();
    let (u, m) = if caddy {
        ("x-forwarded-uri", "x-forwarded-method")
    } else {
        ("x-original-uri", "x-original-method")
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(uri) {
        headers.insert(u, value);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(method) {
        headers.insert(m, value);
    }
    if let Ok(original) = original_request(&headers) {
        assert!(original.target.as_str().starts_with('/'));
        assert_eq!(original.method.as_str().as_bytes(), method);
    }
    for line in String::from_utf8_lossy(data).lines() {
        if let Err(e) = parse_trusted(line) {
            assert!(e.message().contains("forward-auth-trusted"));
        }
    }
}

/// Reads `data` as a `replay-cache` Redis URL (each scheme before it): no panics, an
/// error never repeats a password, and node lists keep their order and ports.
pub fn redis_url(data: &[u8]) {
    use crate::redis_url::RedisTarget;
    let text = String::from_utf8_lossy(data);
    for scheme in ["", "redis+sentinel://", "redis+cluster://"] {
        let url = format!("{scheme}{text}");
        match RedisTarget::parse(&url) {
            Ok(RedisTarget::Sentinel { sentinels, .. }) => assert!(!sentinels.is_empty()),
            Ok(RedisTarget::Cluster { nodes, .. }) => {
                assert!(nodes.iter().all(|n| n.port != 0 && !n.host.is_empty()));
            }
            Ok(RedisTarget::Single(single)) => assert_eq!(single, url),
            Err(e) => {
                if let Some((_, after_scheme)) = url.split_once("://") {
                    if let Some((userinfo, _)) = after_scheme.rsplit_once('@') {
                        if let Some((_, password)) = userinfo.split_once(':') {
                            if password.len() >= 4 {
                                assert!(!e.contains(password), "{e}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Replays the checked-in seed corpora of the server's fuzz targets.
    #[test]
    fn seed_corpora_pass() {
        let mut seen = 0;
        for (target, check) in [
            ("groups", super::groups as fn(&[u8])),
            ("usermap", super::usermap),
            ("request_path", super::request_path),
            ("forward_auth", super::forward_auth),
            ("redis_url", super::redis_url),
        ] {
            for (_, data) in kerbside_testkit::fuzz_seeds(target) {
                check(&data);
                seen += 1;
            }
        }
        assert!(seen >= 6, "the seed corpora went missing ({seen} files)");
    }

    /// `fuzz/Cargo.toml` (a workspace of its own, built only by `cargo fuzz`) lists every
    /// target in `fuzz/fuzz_targets` once, each with its seed corpus, and is valid TOML
    /// (a merge once left two names in one `[[bin]]`, which nothing else would notice).
    #[test]
    fn every_fuzz_target_is_listed_once_with_seeds() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        let manifest: toml::Table = toml::from_str(&manifest).unwrap();
        let bins = manifest["bin"].as_array().unwrap();
        let mut listed = std::collections::BTreeSet::new();
        for bin in bins {
            let name = bin["name"].as_str().unwrap();
            assert_eq!(
                bin["path"].as_str(),
                Some(format!("fuzz_targets/{name}.rs").as_str())
            );
            assert!(listed.insert(name.to_owned()), "{name} is listed twice");
            assert!(!kerbside_testkit::fuzz_seeds(name).is_empty());
        }
        let files: std::collections::BTreeSet<String> =
            std::fs::read_dir(fuzz.join("fuzz_targets"))
                .unwrap()
                .map(|e| {
                    let path = e.unwrap().path();
                    path.file_stem().unwrap().to_string_lossy().into_owned()
                })
                .collect();
        assert_eq!(listed, files);
    }

    proptest::proptest! {
        /// The request_path target's properties over arbitrary bytes and path-like text,
        /// between fuzzing runs.
        #[test]
        fn request_path_holds_for_any_bytes(data in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..48)) {
            super::request_path(&data);
        }

        #[test]
        fn request_path_holds_for_path_like_targets(target in "/[/.%2eEfF5cC0a;?=&#]{0,32}") {
            super::request_path(target.as_bytes());
        }
    }
}
