//! What a `replay-cache` Redis URL names: one server, a set watched by Sentinels, or a
//! Cluster.
//!
//! - `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` and `redis+unix:///PATH[?db=DB]`: one
//!   server (or a proxy in front of a primary), read by the redis crate itself;
//! - `redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB]`: the
//!   Sentinels (port 26379 by default) are asked which server is the primary of
//!   `SERVICE`; the credentials are the primary's;
//! - `redis+cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]`: any reachable
//!   nodes of a Redis Cluster (port 6379 by default); the others are found from them.
//!
//! This is configuration, read once at start; a URL that does not parse is refused with
//! the reason, before the gate listens.

/// One `HOST:PORT` of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A name or an address; an IPv6 address without its brackets.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Node {
    /// `HOST:PORT`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The credentials a URL carries, for the data servers (not the Sentinels).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Login {
    /// The ACL user, if one is named.
    pub user: Option<String>,
    /// The password, if one is given.
    pub password: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Login {
    /// `USER:PASSWORD@`, `:PASSWORD@` or nothing, for a `redis://` URL.
    pub fn userinfo(&self) -> String {
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => format!("{user}:{password}@"),
            (None, Some(password)) => format!(":{password}@"),
            (Some(user), None) => format!("{user}@"),
            (None, None) => String::new(),
        }
    }
}

/// Where the claims go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: the URL as given.
    Single(String),
    /// The primary that Sentinels name for `service`.
    Sentinel {
        /// The Sentinels, asked in order.
        sentinels: Vec<Node>,
        /// The name the Sentinels monitor the primary under.
        service: String,
        /// The database number on the primary.
        db: u32,
        /// The primary's credentials.
        login: Login,
    },
    /// A Redis Cluster, found from these nodes.
    Cluster {
        /// Some nodes of the cluster.
        nodes: Vec<Node>,
        /// The nodes' credentials.
        login: Login,
    },
}

const SENTINEL: &str = "redis+sentinel://";
const CLUSTER: &str = "redis+cluster://";

/// Whether `text` names Redis rather than a file.
pub fn is_redis_url(text: &str) -> bool {
    ["redis://", "redis+unix://", SENTINEL, CLUSTER]
        .iter()
        .any(|scheme| text.starts_with(scheme))
}

impl RedisTarget {
    /// Reads `url`; the error says what is wrong with it (without its password).
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix(SENTINEL) {
            let (login, rest) = login(rest)?;
            let (hosts, path) = rest.split_once('/').ok_or(
                "a Sentinel URL names the monitored service after the hosts: \
                 redis+sentinel://HOST:26379/SERVICE",
            )?;
            let sentinels = nodes(hosts, 26379)?;
            let (service, db) = match path.split_once('/') {
                Some((service, db)) => (service, database(db)?),
                None => (path, 0),
            };
            if service.is_empty() || !service.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("{service:?} is not a Sentinel service name"));
            }
            Ok(Self::Sentinel {
                sentinels,
                service: service.to_owned(),
                db,
                login,
            })
        } else if let Some(rest) = url.strip_prefix(CLUSTER) {
            let (login, rest) = login(rest)?;
            let hosts = rest.strip_suffix('/').unwrap_or(rest);
            if hosts.contains('/') {
                return Err("a Redis Cluster has only database 0: give no /DB".to_owned());
            }
            Ok(Self::Cluster {
                nodes: nodes(hosts, 6379)?,
                login,
            })
        } else if is_redis_url(url) {
            Ok(Self::Single(url.to_owned()))
        } else {
            Err("give redis://, redis+sentinel:// or redis+cluster://".to_owned())
        }
    }
}

/// Splits `[[USER]:PASSWORD@]` off the front of what follows the scheme.
fn login(rest: &str) -> Result<(Login, &str), String> {
    let Some((userinfo, after)) = rest.rsplit_once('@') else {
        return Ok((Login::default(), rest));
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let login = Login {
        user: (!user.is_empty()).then(|| decode(user)).transpose()?,
        password: password.map(decode).transpose()?,
    };
    Ok((login, after))
}

/// Percent-decodes a user name or password.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a user name or password has a % not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a user name or password is not UTF-8".to_owned())
}

/// `HOST[:PORT][,HOST[:PORT]...]`.
fn nodes(list: &str, default_port: u16) -> Result<Vec<Node>, String> {
    let nodes = list
        .split(',')
        .map(|item| node(item, default_port))
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err("no host given".to_owned());
    }
    Ok(nodes)
}

fn node(item: &str, default_port: u16) -> Result<Node, String> {
    let (host, port) = if let Some(bracketed) = item.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{item:?}: an IPv6 address without its closing ]"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{item:?}: text after the address")),
            },
        }
    } else {
        match item.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (item, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err(format!("{item:?} is not HOST or HOST:PORT"));
    }
    let port = match port {
        None => default_port,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{item:?}: the port is not a number from 1 to 65535"))?,
    };
    Ok(Node {
        host: host.to_owned(),
        port,
    })
}

fn database(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a database number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(host: &str, port: u16) -> Node {
        Node {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_service_and_the_database() {
        assert_eq!(
            RedisTarget::parse("redis+sentinel://:pw@s1,s2:26380,[::1]/kerbside/2").unwrap(),
            RedisTarget::Sentinel {
                sentinels: vec![n("s1", 26379), n("s2", 26380), n("::1", 26379)],
                service: "kerbside".to_owned(),
                db: 2,
                login: Login {
                    user: None,
                    password: Some("pw".to_owned()),
                },
            }
        );
        let RedisTarget::Sentinel { db, login, .. } =
            RedisTarget::parse("redis+sentinel://gate:p%40ss@s1:1/main").unwrap()
        else {
            panic!("not a Sentinel target");
        };
        assert_eq!(db, 0);
        assert_eq!(login.user.as_deref(), Some("gate"));
        assert_eq!(login.password.as_deref(), Some("p@ss"));
        assert_eq!(login.userinfo(), "gate:p@ss@");
    }

    #[test]
    fn cluster_urls_name_some_nodes_and_no_database() {
        assert_eq!(
            RedisTarget::parse("redis+cluster://10.0.0.1:7000,10.0.0.2").unwrap(),
            RedisTarget::Cluster {
                nodes: vec![n("10.0.0.1", 7000), n("10.0.0.2", 6379)],
                login: Login::default(),
            }
        );
        assert!(RedisTarget::parse("redis+cluster://h:7000/1")
            .unwrap_err()
            .contains("database 0"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, says) in [
            ("redis+sentinel://h:26379", "SERVICE"),
            ("redis+sentinel://h:0/s", "port"),
            ("redis+sentinel://h:x/s", "port"),
            ("redis+sentinel://h/s/x", "database"),
            ("redis+sentinel:///s", "HOST"),
            ("redis+cluster://[::1", "closing"),
            ("redis+cluster://a b", "HOST"),
            ("redis+cluster://:%zz@h", "hex"),
            ("http://h", "redis://"),
        ] {
            let err = RedisTarget::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert_eq!(
            RedisTarget::parse("redis://h:1/0").unwrap(),
            RedisTarget::Single("redis://h:1/0".to_owned())
        );
        assert!(!format!(
            "{:?}",
            Login {
                user: None,
                password: Some("s3cret".to_owned())
            }
        )
        .contains("s3cret"));
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_panicking(text in "\\PC{0,60}") {
            let _ = RedisTarget::parse(&format!("{SENTINEL}{text}"));
            let _ = RedisTarget::parse(&format!("{CLUSTER}{text}"));
        }

        #[test]
        fn node_lists_read_back(ports in proptest::collection::vec(1u16.., 1..5)) {
            let list = ports.iter().map(|p| format!("h{p}:{p}")).collect::<Vec<_>>().join(",");
            let RedisTarget::Cluster { nodes, .. } =
                RedisTarget::parse(&format!("{CLUSTER}{list}")).unwrap() else {
                panic!("not a cluster");
            };
            prop_assert_eq!(nodes.iter().map(|n| n.port).collect::<Vec<_>>(), ports);
        }
    }
}
