//! Property tests of the forward proxy's parsers: nothing panics, what parses
//! formats back into the same value, and matching agrees with its definition.

use proptest::prelude::*;

use super::hosts::{Cidr, HostList, HostPattern};
use super::route::{parse_pac_result, parse_proxy_list, parse_upstream, RouteChoice};

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
}

proptest! {
    #[test]
    fn any_text_is_safe(text in "\\PC{0,120}") {
        super::fuzz_check(text.as_bytes());
    }

    #[test]
    fn list_like_text_is_safe(text in "[a-z0-9.*?,:/\\[\\] ;-]{0,60}") {
        super::fuzz_check(text.as_bytes());
    }

    #[test]
    fn a_domain_matches_exactly_itself_and_its_subdomains(d in name(), sub in label(), other in name()) {
        let p = HostPattern::parse(&d).unwrap();
        let child = format!("{sub}.{d}");
        let glued = format!("{sub}{d}");
        prop_assert!(p.matches(&d));
        prop_assert!(p.matches(&child));
        prop_assert!(p.matches(&d.to_ascii_uppercase()));
        let dotted = format!(".{d}");
        prop_assert!(!p.matches(&glued) || glued.ends_with(&dotted));
        let leading = HostPattern::parse(&format!(".{d}")).unwrap();
        prop_assert_eq!(&leading, &p);
        let sub_only = HostPattern::parse(&format!("*.{d}")).unwrap();
        prop_assert!(!sub_only.matches(&d));
        prop_assert!(sub_only.matches(&child));
        if other != d && !other.ends_with(&dotted) {
            prop_assert!(!p.matches(&other));
        }
    }

    #[test]
    fn a_cidr_contains_what_its_prefix_says(a in any::<u32>(), b in any::<u32>(), bits in 0u8..=32) {
        let net = std::net::Ipv4Addr::from(a);
        let cidr = Cidr::parse(&format!("{net}/{bits}")).unwrap();
        let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
        let inside = (a & m) == (b & m);
        prop_assert_eq!(cidr.contains(std::net::Ipv4Addr::from(b).into()), inside);
        prop_assert_eq!(Cidr::parse(&cidr.to_string()).unwrap(), cidr);
    }

    #[test]
    fn host_lists_round_trip(entries in prop::collection::vec(
        prop_oneof![
            name(),
            name().prop_map(|n| format!(".{n}")),
            name().prop_map(|n| format!("*.{n}")),
            name().prop_map(|n| format!("{n}*")),
            any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
            (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, b)| format!("{}/{b}", std::net::Ipv6Addr::from(a))),
            Just("*".to_owned()),
        ], 0..6)) {
        let list = HostList::parse(&entries.join(",")).unwrap();
        prop_assert_eq!(list.patterns().len(), entries.len());
        prop_assert_eq!(HostList::parse(&list.to_string()).unwrap(), list);
    }

    #[test]
    fn proxy_lists_round_trip(hosts in prop::collection::vec((name(), 1u16..), 1..4)) {
        let text: Vec<String> = hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let list = parse_proxy_list([text.join(",").as_str()]).unwrap();
        for u in &list {
            prop_assert_eq!(&parse_upstream(&u.to_string()).unwrap(), u);
        }
        let pac: Vec<String> = list.iter().map(|u| format!("PROXY {}:{}", u.host, u.port)).collect();
        let (choices, skipped) = parse_pac_result(&pac.join("; ")).unwrap();
        prop_assert!(skipped.is_empty());
        prop_assert_eq!(choices, list.into_iter().map(RouteChoice::Proxy).collect::<Vec<_>>());
    }
}
