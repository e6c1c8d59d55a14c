//! `kerbside gate`: an authenticating reverse proxy and CGI host. Flags and the TOML
//! file are resolved into [`GateConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use http::header::HeaderName;
use http::Uri;
use kerbside_server::access::{AccessRule, AccessRules, Groups};
use kerbside_server::cgi::CgiConfig;
use kerbside_server::gate::{Gate, GateConfig, Mount, MountTarget};
use kerbside_server::usermap::UserMap;
use kerbside_server::{AuthMode, ChannelBindingPolicy};
use serde::Deserialize;

/// Arguments of `kerbside gate`. Each may also be set in the `--config` file; the
/// command line wins.
#[derive(Debug, Args)]
#[command(after_help = "\
Configuration file (TOML): the options below by the same names, plus mounts and access \
rules:

  listen = \"0.0.0.0:443\"
  tls-cert = \"/etc/kerbside/cert.pem\"
  tls-key = \"/etc/kerbside/key.pem\"
  keytab = \"/etc/kerbside/http.keytab\"
  replay-cache = \"/var/lib/kerbside/replay-cache\"  # default: under KRB5RCACHEDIR or /var/tmp
  # replay-cache = \"redis://10.0.0.9:6379/0\"      # shared by gates behind one balancer
  # replay-cache = \"redis+sentinel://10.0.0.7,10.0.0.8/kerbside/0\"  # or redis+cluster://H:P,...
  # replay-cache-unavailable = \"refuse\"           # or \"local\", while Redis does not answer
  auth = \"cookie\"                 # none | per-request | connection | cookie
  session-key = \"/var/lib/kerbside/session.key\"
  previous-session-keys = [\"/var/lib/kerbside/session.key.old\"]
  user-map = \"strip-realm\"
  scheme-header = \"X-Remote-Auth-Type\" # Negotiate | NTLM | Digest | Basic, to proxy mounts
  groups = \"/etc/kerbside/groups\"  # lines `developers: alice@EXAMPLE.COM, bob@EXAMPLE.COM`
  groups-header = \"X-Remote-Groups\" # the client's groups, comma-separated, to proxy mounts
  ad-group-names = \"winbind\"       # AD groups of a PAC named through winbind (default) | \"sid\"
  metrics = \"127.0.0.1:9100\"
  max-handshakes = 64              # tokens accepted at once; more wait
  header-timeout = 30              # seconds to send request headers (slowloris)
  upstream-timeout = 60            # seconds an upstream may stall before a 504
  max-connections = 4096           # open client connections; more wait in the backlog
  max-body = \"1G\"                  # largest request body (bytes, or K/M/G); beyond it 413
  spool-budget = \"4G\"              # disk for CGI bodies sent without a length; beyond it 507
  forward-auth-trusted = [\"127.0.0.1\", \"::1\"]  # front proxies that may ask (default loopback)
  forward-auth-cert = \"/etc/nginx/cert.pem\"      # the front's certificate (channel bindings)
  whoami-path = \"/.kerbside/whoami\"  # who you are, how you logged in (\"\" = off)
  health-path = \"/.kerbside/health\"  # 200 ready / 503 draining, for balancers (\"\" = off)
  shutdown-delay = 5               # seconds of serving with health 503 after SIGTERM
  proxy-protocol = true            # behind HAProxy send-proxy(-v2): the client's address from it
  proxy-protocol-trusted = [\"10.0.0.5\"]  # the balancers that may send it (default loopback)
  delegation-dir = \"/run/kerbside/deleg\"   # delegated tickets for CGI programs (KRB5CCNAME)
  s4u2proxy = \"svc-web@AD.EXAMPLE.COM\"      # constrained delegation as this account

  [[mount]]                        # a CGI program under a path
  path = \"/hg\"
  cgi = \"/srv/hg/hgweb.cgi\"
  env = { HGENCODING = \"utf-8\" }
  timeout = 300
  max-body = \"2G\"                  # this mount's own limit
  [[mount]]                        # a reverse proxy under a path
  path = \"/\"
  upstream = \"http://127.0.0.1:8000\"
  upstream-timeout = 120           # this mount's own timeout

  [[mount]]                        # the endpoint of nginx auth_request / Caddy forward_auth
  path = \"/kerbside-auth\"
  forward-auth = true

  [[access]]                       # anonymous read, authenticated push
  path = \"/hg\"
  operation = \"read\"
  anonymous = true
  [[access]]
  path = \"/hg\"
  operation = \"push\"
  groups = [\"developers\"]       # or AD groups: [\"ADEXAMPLE\\\\developers\", \"S-1-5-21-...\"]

Without [[access]] rules every authenticated principal is let in. Logging: RUST_LOG \
(default info), --log-format json for one JSON object per line.")]
pub struct GateArgs {
    /// A TOML file with the settings below, mounts and access rules.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port to listen on (default 127.0.0.1:8443; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// TLS certificate chain (PEM). Without --tls-cert/--tls-key the gate serves plain
    /// HTTP, where tokens and identities travel unprotected.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Keytab holding the service keys (default: KRB5_KTNAME, then the system keytab).
    /// Key changes (a new kvno) are picked up without a restart.
    #[arg(long, value_name = "FILE")]
    pub keytab: Option<PathBuf>,

    /// Accept only tickets for this service (`HTTP@host` or `HTTP/host@REALM`);
    /// by default a ticket for any key in the keytab is accepted. Repeat it to accept
    /// any of several names (one keytab with several SPNs, e.g. the load balancer's name
    /// and the node's own), or give `{HOSTNAME}`: the ticket must be for
    /// HTTP/<the request's Host, without port, in lower case>. A ticket for another
    /// service gets 401 and a log line saying which.
    #[arg(long, value_name = "NAME")]
    pub acceptor: Vec<String>,

    /// File where accepted Kerberos authenticators are kept, so a token seen before
    /// a restart is still refused after it (mode 0600, owned by the gate's user).
    /// Default: $KRB5RCACHEDIR (else /var/tmp)/kerbside_rcache_<acceptor>_<uid>. If it
    /// cannot be used the gate says why and checks replays with MIT's slower cache.
    /// Behind a load balancer, `redis://HOST:PORT/DB` shares the cache between gates
    /// (a token accepted by one is refused by all); `redis+sentinel://HOST:PORT,.../SERVICE/DB`
    /// follows the primary that Sentinels name, `redis+cluster://HOST:PORT,...` uses a
    /// Redis Cluster.
    #[arg(long, value_name = "FILE|URL")]
    pub replay_cache: Option<PathBuf>,

    /// While the shared replay cache (Redis) does not answer: `refuse` Kerberos
    /// logins (default: no replay window opens), or `local` (this gate's memory cache
    /// decides alone).
    #[arg(long, value_name = "POLICY")]
    pub replay_cache_unavailable: Option<String>,

    /// Forward requests to this upstream (http://host:port[/prefix]), mounted at `/`.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,

    /// Run this CGI program (hgweb.cgi, git http-backend) for requests, mounted at `/`.
    #[arg(long, value_name = "PATH")]
    pub cgi: Option<PathBuf>,

    /// Make PATH the authentication endpoint of a front proxy (nginx auth_request,
    /// Caddy forward_auth, Traefik forwardAuth): 200 with the identity headers, or 401
    /// with the challenges, for the request named in X-Original-Method/X-Original-URI
    /// or X-Forwarded-Method/X-Forwarded-Uri. See docs/forward-auth.md. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub forward_auth: Vec<String>,

    /// A front proxy's address or network (e.g. 127.0.0.1, 10.0.0.0/8) allowed to
    /// ask the forward-auth endpoint; others get 403. Default loopback. Repeatable.
    #[arg(long, value_name = "ADDR[/BITS]")]
    pub forward_auth_trusted: Vec<String>,

    /// The front proxy's TLS certificate (PEM): channel bindings in tokens that come
    /// through forward-auth are checked against it (without it, they are not checked).
    #[arg(long, value_name = "FILE")]
    pub forward_auth_cert: Option<PathBuf>,

    /// Behind HAProxy or another balancer that sends the PROXY protocol (v1 or v2):
    /// take the client's address from the header each connection starts with. Every
    /// connection must then come from --proxy-protocol-trusted and start with a header.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// The path of the health endpoint for load balancers: `200 ready`, or `503
    /// draining` once the gate was told to stop; answered before authentication.
    /// Default /.kerbside/health; an empty PATH turns it off.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,

    /// The path of the whoami page: who you are (principal, user name, groups) and how
    /// you logged in, in HTML or JSON (Accept: application/json); behind
    /// authentication and the access rules. Default /.kerbside/whoami; an empty PATH
    /// turns it off.
    #[arg(long, value_name = "PATH")]
    pub whoami_path: Option<String>,

    /// Seconds the gate keeps serving after SIGTERM with the health endpoint answering
    /// 503, so balancers take it out before it stops accepting (default 0).
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_delay: Option<u64>,

    /// A balancer's address or network allowed to send PROXY protocol headers (the
    /// others are closed). Default loopback. Repeatable.
    #[arg(long, value_name = "ADDR[/BITS]")]
    pub proxy_protocol_trusted: Vec<String>,

    /// Header that carries the client principal (e.g. alice@EXAMPLE.TEST) upstream.
    /// Any copy sent by a client is removed first, in any spelling (case, and `_` for
    /// `-`, as CGI/WSGI/Rack/PHP read them alike). Default X-Remote-User.
    #[arg(long, value_name = "NAME")]
    pub identity_header: Option<String>,

    /// Header that carries the scheme the client authenticated with (Negotiate, NTLM,
    /// Digest or Basic) to proxy upstreams, e.g. X-Remote-Auth-Type; removed from
    /// clients like the identity header. Off by default. (CGI gets AUTH_TYPE.)
    #[arg(long, value_name = "NAME")]
    pub scheme_header: Option<String>,

    /// Sign the identity header with this key file (32+ random bytes, mode 0600):
    /// `<identity-header>-Signature: v1 t=<unix> sig=<base64url HMAC-SHA256 of
    /// "v1\n<principal>\n<t>\n<METHOD>\n<path?query>">`, for upstreams that want proof.
    #[arg(long, value_name = "FILE")]
    pub identity_key: Option<PathBuf>,

    /// How clients stay authenticated: `per-request` (default: a token on every
    /// request), `connection` (one handshake per TCP connection, `Persistent-Auth:
    /// true`; HTTP/2 clients are told to use HTTP/1.1), `cookie` (a session cookie
    /// after one handshake; needs --session-key), `none` (no authentication).
    #[arg(long, value_name = "MODE")]
    pub auth: Option<AuthMode>,

    /// Session key file: 32 random bytes, created with mode 0600 if missing.
    #[arg(long, value_name = "FILE")]
    pub session_key: Option<PathBuf>,

    /// How principals become REMOTE_USER for CGI programs: `full`, `strip-realm`,
    /// `strip-realm:REALM,...`, `down-level` (an AD user's `DOMAIN\user`), `upn` (an
    /// AD user's UPN), or a map file of `alice@EXAMPLE.TEST = alice` lines.
    #[arg(long, value_name = "MAP")]
    pub user_map: Option<String>,

    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// TLS channel bindings: `optional` (default; checked when the client sends them),
    /// `required`, `off`.
    #[arg(long, value_name = "POLICY")]
    pub channel_binding: Option<ChannelBindingPolicy>,

    /// Also accept Basic credentials (HTTPS only): the password gets a ticket from the
    /// KDC and that ticket must open with the gate's keytab, so a fake KDC cannot vouch
    /// for a user. Off by default.
    #[arg(long)]
    pub basic_fallback: bool,

    /// The realm name shown in the Basic challenge (default "kerbside").
    #[arg(long, value_name = "NAME")]
    pub basic_realm: Option<String>,

    /// Accept NTLM (NTLMv2 only) for the users of FILE (`USER:NTHASH` lines, made with
    /// `kerbside ntlm-passwd`; mode 600). Needs --auth connection: NTLM authenticates a
    /// connection, so it is offered over HTTP/1.1 only.
    #[arg(long, value_name = "FILE")]
    pub ntlm_users: Option<PathBuf>,

    /// Also accept NTLM inside Negotiate (SPNEGO), as clients without a Kerberos
    /// ticket send it (curl --negotiate with gss-ntlmssp, Windows). Needs --ntlm-users
    /// or --ntlm-winbind.
    #[arg(long)]
    pub ntlm_in_negotiate: bool,

    /// Accept NTLM (NTLMv2 only) for the accounts of the Active Directory domain this
    /// host is joined to, checked by its domain controller through winbindd (Samba's
    /// libwbclient); the user is `Account@REALM` with the groups of the account, as with
    /// Kerberos. Needs --auth connection, a running winbindd, and the right to its
    /// privileged pipe (root, or the group winbindd_priv).
    #[arg(long, conflicts_with = "ntlm_users")]
    pub ntlm_winbind: bool,

    /// The NetBIOS name of the realm's Active Directory domain (ADEXAMPLE): with
    /// --basic-fallback, a user typing NAME\\bob logs in as bob of the default realm.
    /// Default: the realm's first label (AD for AD.EXAMPLE.COM).
    #[arg(long, value_name = "NAME")]
    pub netbios_domain: Option<String>,

    /// Samba's configuration for --ntlm-winbind. Not needed since the check goes through
    /// libwbclient, which finds winbindd at its socket; accepted (and ignored) so
    /// existing configurations keep working.
    #[arg(long, value_name = "FILE")]
    pub ntlm_winbind_smb_conf: Option<PathBuf>,

    /// Accept Digest (RFC 7616, SHA-256) for the users of FILE (htdigest lines
    /// `USER:REALM:HA1`, made with `kerbside digest-passwd`; mode 600).
    #[arg(long, value_name = "FILE", requires = "digest_realm")]
    pub digest_users: Option<PathBuf>,

    /// The Digest realm (must match the users file's lines).
    #[arg(long, value_name = "NAME")]
    pub digest_realm: Option<String>,

    /// Offer Digest MD5 after SHA-256, for old clients (their lines must be MD5).
    #[arg(long)]
    pub digest_md5: bool,

    /// How long a Digest nonce is good for; a client using an older one is told
    /// `stale=true` and answers the new one without asking for the password again.
    #[arg(long, value_name = "SECONDS")]
    pub digest_nonce_lifetime: Option<u64>,

    /// Accept Basic (HTTPS only) for the users of an htpasswd FILE with bcrypt hashes
    /// (`htpasswd -B`; mode 600), before --basic-fallback's KDC check if both.
    #[arg(long, value_name = "FILE")]
    pub basic_users: Option<PathBuf>,

    /// Check the configuration and keytab, report in words, and exit (0 if all is
    /// well) instead of serving. With --check-principal, also a full Kerberos round
    /// trip: the test principal gets a ticket from the KDC and the keytab must open it.
    #[arg(long, help_heading = "Checking")]
    pub check: bool,

    /// Test principal for --check (e.g. a service account); without --check-keytab or
    /// --check-password-file its ticket must be in the ticket cache.
    #[arg(
        long,
        value_name = "PRINCIPAL",
        requires = "check",
        help_heading = "Checking"
    )]
    pub check_principal: Option<String>,

    /// Keytab of the test principal.
    #[arg(
        long,
        value_name = "FILE",
        requires = "check_principal",
        help_heading = "Checking"
    )]
    pub check_keytab: Option<PathBuf>,

    /// File whose first line is the test principal's password.
    #[arg(
        long,
        value_name = "FILE",
        requires = "check_principal",
        help_heading = "Checking"
    )]
    pub check_password_file: Option<PathBuf>,

    /// Service name the round trip asks a ticket for (default: --acceptor, else
    /// HTTP@<this host's name>).
    #[arg(
        long,
        value_name = "NAME",
        requires = "check",
        help_heading = "Checking"
    )]
    pub check_spn: Option<String>,

    /// Keep the credentials clients delegate (curl --delegation always, kerbside fetch
    /// --delegation always) in DIR, a ticket cache per user (mode 0600, replaced at each
    /// login, removed when it expires; the directory is created mode 0700), and give a
    /// CGI program the user's as KRB5CCNAME. Proxy upstreams get none. Off by default:
    /// a delegated credential is then dropped.
    #[arg(long, value_name = "DIR")]
    pub delegation_dir: Option<PathBuf>,

    /// Constrained delegation (S4U2Proxy): act as ACCOUNT@REALM (the gate's service
    /// account, whose own key must be in the keytab) to get tickets in the user's name
    /// to the services the domain lets it delegate to, without the user delegating;
    /// kept like delegated ones (needs --delegation-dir).
    #[arg(long, value_name = "ACCOUNT@REALM")]
    pub s4u2proxy: Option<String>,

    /// Seconds an upstream may take to accept a connection, then to make progress
    /// (take the request body, send its response head) before the client gets 504.
    /// Default 60; [[mount]]s may set their own.
    #[arg(long, value_name = "SECONDS")]
    pub upstream_timeout: Option<u64>,

    /// Open client connections at most (default 4096); more wait in the kernel's
    /// backlog until one closes.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// The largest request body, in bytes or with K, M, G (default 1G); beyond it the
    /// client gets 413 and nothing more is read. [[mount]]s may set their own.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_body: Option<u64>,

    /// Log format: `text` (default) or `json`.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// A size in bytes, or with a K, M, G or T suffix (powers of 1024; `KiB`, `MB`...
/// are read the same way).
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: give bytes or a number with K, M or G"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("{text:?}: the unit must be K, M, G or T")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A size in the configuration file: a number of bytes or a string like `"512M"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeFile {
    Bytes(u64),
    Text(String),
}

impl SizeFile {
    fn bytes(&self) -> Result<u64, String> {
        match self {
            Self::Bytes(n) => Ok(*n),
            Self::Text(t) => parse_size(t),
        }
    }
}

/// A `[[mount]]` of the configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct MountFile {
    path: String,
    upstream: Option<String>,
    cgi: Option<PathBuf>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    timeout: Option<u64>,
    max_concurrent: Option<usize>,
    working_dir: Option<PathBuf>,
    upstream_timeout: Option<u64>,
    max_body: Option<SizeFile>,
    #[serde(default)]
    forward_auth: bool,
}

/// `acceptor = "NAME"` or `acceptor = ["NAME", ...]` in the configuration file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// The configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct GateFile {
    listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    keytab: Option<PathBuf>,
    acceptor: Option<OneOrMany>,
    replay_cache: Option<PathBuf>,
    replay_cache_unavailable: Option<String>,
    upstream: Option<String>,
    cgi: Option<PathBuf>,
    identity_header: Option<String>,
    scheme_header: Option<String>,
    identity_key: Option<PathBuf>,
    auth: Option<String>,
    session_key: Option<PathBuf>,
    #[serde(default)]
    previous_session_keys: Vec<PathBuf>,
    user_map: Option<String>,
    groups: Option<PathBuf>,
    groups_header: Option<String>,
    ad_group_names: Option<String>,
    metrics: Option<SocketAddr>,
    channel_binding: Option<String>,
    max_handshakes: Option<usize>,
    header_timeout: Option<u64>,
    upstream_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_body: Option<SizeFile>,
    spool_budget: Option<SizeFile>,
    basic_fallback: Option<bool>,
    basic_realm: Option<String>,
    ntlm_users: Option<PathBuf>,
    ntlm_in_negotiate: Option<bool>,
    ntlm_winbind: Option<bool>,
    ntlm_winbind_smb_conf: Option<PathBuf>,
    netbios_domain: Option<String>,
    digest_users: Option<PathBuf>,
    digest_realm: Option<String>,
    digest_md5: Option<bool>,
    digest_nonce_lifetime: Option<u64>,
    basic_users: Option<PathBuf>,
    log_format: Option<String>,
    forward_auth_trusted: Option<Vec<String>>,
    forward_auth_cert: Option<PathBuf>,
    proxy_protocol: Option<bool>,
    proxy_protocol_trusted: Option<Vec<String>>,
    health_path: Option<String>,
    whoami_path: Option<String>,
    shutdown_delay: Option<u64>,
    delegation_dir: Option<PathBuf>,
    s4u2proxy: Option<String>,
    #[serde(default)]
    mount: Vec<MountFile>,
    #[serde(default)]
    access: Vec<AccessRule>,
}

/// A path of one of the gate's own pages: canonical, or empty to turn the page off.
fn page_path(key: &str, path: &str) -> Result<Option<String>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    match kerbside_proto::request_path::CanonicalPath::parse(path) {
        Ok(canonical) if canonical.as_str() == path => Ok(Some(path.to_owned())),
        _ => Err(format!(
            "{key} {path:?} is not a canonical path: give one like /.kerbside/page"
        )),
    }
}

fn load_file(path: &Path) -> Result<GateFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_upstream(upstream: &str) -> Result<Uri, String> {
    upstream
        .parse()
        .map_err(|e| format!("upstream {upstream:?} is not a URL: {e}"))
}

/// Resolves command line and file into the gate's configuration.
fn resolve(args: GateArgs) -> Result<(GateConfig, String), String> {
    let mut file = match &args.config {
        Some(path) => load_file(path)?,
        None => GateFile::default(),
    };
    let user_map_set = args.user_map.is_some() || file.user_map.is_some();
    let user_map: UserMap = match args.user_map.or(file.user_map) {
        Some(m) => m.parse().map_err(|e| format!("user map: {e}"))?,
        None => UserMap::Full,
    };
    let mut mounts = Vec::new();
    for m in file.mount {
        let target = match (m.upstream, m.cgi) {
            (None, None) if m.forward_auth => MountTarget::ForwardAuth,
            (Some(up), None) if !m.forward_auth => MountTarget::Proxy(parse_upstream(&up)?),
            (None, Some(program)) if !m.forward_auth => {
                let mut cgi = CgiConfig::new(program, m.path.trim_end_matches('/'));
                cgi.env = m.env.into_iter().collect();
                cgi.user_map = user_map.clone();
                if let Some(t) = m.timeout {
                    cgi.timeout = Duration::from_secs(t);
                }
                if let Some(n) = m.max_concurrent {
                    cgi.max_concurrent = n;
                }
                cgi.working_dir = m.working_dir;
                MountTarget::Cgi(cgi)
            }
            _ => {
                return Err(format!(
                    "mount {}: give exactly one of upstream, cgi and forward-auth = true",
                    m.path
                ))
            }
        };
        if m.upstream_timeout.is_some() && matches!(target, MountTarget::Cgi(_)) {
            return Err(format!(
                "mount {}: upstream-timeout is for upstream mounts; a CGI mount has timeout",
                m.path
            ));
        }
        let mut mount = Mount::new(m.path, target);
        mount.upstream_timeout = m.upstream_timeout.map(|s| Duration::from_secs(s.max(1)));
        mount.max_body = m.max_body.as_ref().map(SizeFile::bytes).transpose()?;
        mounts.push(mount);
    }
    match (args.upstream.or(file.upstream), args.cgi.or(file.cgi)) {
        (Some(_), Some(_)) => {
            return Err("give --upstream or --cgi for `/`, not both (use [[mount]]s)".to_owned())
        }
        (Some(up), None) => mounts.push(Mount::new("/", MountTarget::Proxy(parse_upstream(&up)?))),
        (None, Some(program)) => {
            let mut cgi = CgiConfig::new(program, "");
            cgi.user_map = user_map.clone();
            mounts.push(Mount::new("/", MountTarget::Cgi(cgi)));
        }
        (None, None) => {}
    }
    for path in args.forward_auth {
        mounts.push(Mount::new(path, MountTarget::ForwardAuth));
    }
    if mounts.is_empty() {
        return Err(
            "nothing to serve: pass --upstream http://host:port or --cgi PATH (or [[mount]]s in --config)"
                .to_owned(),
        );
    }
    let identity = args
        .identity_header
        .or(file.identity_header)
        .unwrap_or_else(|| kerbside_server::DEFAULT_IDENTITY_HEADER.to_owned());
    let identity_header = HeaderName::from_bytes(identity.as_bytes())
        .map_err(|_| format!("{identity:?} is not a valid header name"))?;
    let scheme_header = match args.scheme_header.or(file.scheme_header) {
        Some(name) => {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("scheme header {name:?} is not a valid header name"))?;
            let same_as = |other: &str| {
                kerbside_server::identity_headers::same_variable(header.as_str(), other)
            };
            if same_as(identity_header.as_str()) || same_as(&format!("{identity_header}-signature"))
            {
                return Err(format!(
                    "the scheme header {name:?} would be read as the identity header \
                     {identity_header:?} (or its signature): choose another name"
                ));
            }
            Some(header)
        }
        None => None,
    };
    let groups_header = match file.groups_header.take() {
        Some(name) => {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("groups header {name:?} is not a valid header name"))?;
            let same_as = |other: &str| {
                kerbside_server::identity_headers::same_variable(header.as_str(), other)
            };
            if same_as(identity_header.as_str())
                || same_as(&format!("{identity_header}-signature"))
                || scheme_header.as_ref().is_some_and(|s| same_as(s.as_str()))
            {
                return Err(format!(
                    "the groups header {name:?} would be read as the identity or scheme header: \
                     choose another name"
                ));
            }
            Some(header)
        }
        None => None,
    };
    let group_names = match file.ad_group_names.as_deref() {
        None | Some("winbind") => Some(kerbside_server::ad_groups::GroupNames::winbind()),
        Some("sid") => None,
        Some(other) => {
            return Err(format!(
                "ad-group-names = {other:?}: give \"winbind\" (name AD groups through winbind) \
                 or \"sid\" (keep them as SIDs)"
            ))
        }
    };
    let tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("give both tls-cert and tls-key, or neither".to_owned()),
    };
    let mode = match (args.auth, file.auth) {
        (Some(m), _) => m,
        (None, Some(m)) => m
            .parse()
            .map_err(|e: kerbside_server::ParseSettingError| e.to_string())?,
        (None, None) => AuthMode::PerRequest,
    };
    let channel_binding = match (args.channel_binding, file.channel_binding) {
        (Some(c), _) => c,
        (None, Some(c)) => c
            .parse()
            .map_err(|e: kerbside_server::ParseSettingError| e.to_string())?,
        (None, None) => ChannelBindingPolicy::Optional,
    };
    let groups = match &file.groups {
        Some(path) => Groups::load(path).map_err(|e| e.to_string())?,
        None => Groups::default(),
    };
    let access = if file.access.is_empty() {
        if mode == AuthMode::None {
            AccessRules::new(
                vec![AccessRule {
                    anonymous: true,
                    ..AccessRule::default()
                }],
                groups,
            )
            .map_err(|e| e.to_string())?
        } else {
            AccessRules::allow_all_authenticated()
        }
    } else {
        AccessRules::new(file.access, groups).map_err(|e| format!("access rules: {e}"))?
    };
    let mut config = GateConfig::proxy(
        args.listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
        Uri::from_static("http://127.0.0.1/"),
    );
    config.tls = tls;
    config.keytab = args.keytab.or(file.keytab);
    let acceptor = if args.acceptor.is_empty() {
        file.acceptor.map(OneOrMany::into_vec).unwrap_or_default()
    } else {
        args.acceptor
    };
    let names = kerbside_proto::acceptor_names::AcceptorNames::parse(&acceptor)
        .map_err(|e| e.to_string())?;
    config.acceptor = names.gssapi_name().map(str::to_owned);
    config.acceptor_names = names;
    match args.replay_cache.or(file.replay_cache) {
        Some(cache)
            if kerbside_server::redis_replay::RedisReplay::is_url(&cache.to_string_lossy()) =>
        {
            config.replay_cache_redis = Some(cache.to_string_lossy().into_owned());
        }
        cache => config.replay_cache = cache,
    }
    let unavailable = args
        .replay_cache_unavailable
        .or(file.replay_cache_unavailable);
    match unavailable.as_deref() {
        None | Some("refuse") => {}
        Some("local") => config.replay_cache_unavailable = kerbside_gssapi::WhenUnavailable::Local,
        Some(other) => {
            return Err(format!(
                "replay-cache-unavailable {other:?}: give \"refuse\" or \"local\""
            ))
        }
    }
    if unavailable.is_some() && config.replay_cache_redis.is_none() {
        return Err(
            "replay-cache-unavailable is for a shared replay cache: give replay-cache = \
             \"redis://HOST:PORT/DB\""
                .to_owned(),
        );
    }
    config.mounts = mounts;
    config.identity_header = identity_header;
    config.scheme_header = scheme_header;
    config.groups_header = groups_header;
    config.group_names = group_names;
    config.identity_key = args.identity_key.or(file.identity_key);
    config.mode = mode;
    config.session_key = args.session_key.or(file.session_key);
    config.previous_session_keys = file.previous_session_keys;
    config.access = access;
    config.channel_binding = channel_binding;
    config.metrics = args.metrics.or(file.metrics);
    let trusted = if args.forward_auth_trusted.is_empty() {
        file.forward_auth_trusted
    } else {
        Some(args.forward_auth_trusted)
    };
    if let Some(trusted) = trusted {
        config.forward_auth.trusted = trusted
            .iter()
            .map(|t| kerbside_server::forward_auth::parse_trusted(t))
            .collect::<Result<_, _>>()
            .map_err(|e: kerbside_server::SetupError| e.to_string())?;
    }
    if let Some(cert) = args.forward_auth_cert.or(file.forward_auth_cert) {
        config.forward_auth.front_binding = Some(std::sync::Arc::new(
            kerbside_server::forward_auth::load_front_binding(&cert).map_err(|e| e.to_string())?,
        ));
    }
    if let Some(path) = args.health_path.or(file.health_path) {
        config.health_path = page_path("health-path", &path)?;
    }
    if let Some(path) = args.whoami_path.or(file.whoami_path) {
        config.whoami_path = page_path("whoami-path", &path)?;
    }
    if let Some(secs) = args.shutdown_delay.or(file.shutdown_delay) {
        config.shutdown_delay = Duration::from_secs(secs);
    }
    if args.proxy_protocol || file.proxy_protocol == Some(true) {
        let mut settings = kerbside_server::proxy_protocol::ProxyProtocol::default();
        let trusted = if args.proxy_protocol_trusted.is_empty() {
            file.proxy_protocol_trusted
        } else {
            Some(args.proxy_protocol_trusted)
        };
        if let Some(trusted) = trusted {
            settings.trusted = trusted
                .iter()
                .map(|t| {
                    kerbside_server::forward_auth::parse_trusted(t).map_err(|_| {
                        format!(
                            "proxy-protocol-trusted {t:?} is not an address or network: \
                             give e.g. 127.0.0.1, ::1 or 10.0.0.0/8"
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        config.proxy_protocol = Some(settings);
    } else if !args.proxy_protocol_trusted.is_empty() || file.proxy_protocol_trusted.is_some() {
        return Err(
            "proxy-protocol-trusted is set but proxy-protocol is not: add --proxy-protocol \
             (proxy-protocol = true)"
                .to_owned(),
        );
    }
    if user_map_set {
        config.forward_auth.user_map = Some(user_map.clone());
    }
    let basic_realm = args
        .basic_realm
        .or(file.basic_realm)
        .unwrap_or_else(|| "kerbside".to_owned());
    if args.basic_fallback || file.basic_fallback.unwrap_or(false) {
        config.basic_fallback = Some(basic_realm.clone());
    }
    config.ntlm_users = args.ntlm_users.or(file.ntlm_users);
    config.ntlm_in_negotiate = args.ntlm_in_negotiate || file.ntlm_in_negotiate.unwrap_or(false);
    if args.ntlm_winbind || file.ntlm_winbind.unwrap_or(false) {
        config.ntlm_winbind = Some(kerbside_server::ntlm_winbind::WinbindConfig {
            smb_conf: args.ntlm_winbind_smb_conf.or(file.ntlm_winbind_smb_conf),
            ..Default::default()
        });
    }
    config.netbios_domain = args.netbios_domain.or(file.netbios_domain);
    if config.ntlm_in_negotiate && config.ntlm_users.is_none() && config.ntlm_winbind.is_none() {
        return Err("--ntlm-in-negotiate needs --ntlm-users or --ntlm-winbind".to_owned());
    }
    let digest_realm = args.digest_realm.or(file.digest_realm);
    config.digest_users = match (args.digest_users.or(file.digest_users), digest_realm) {
        (Some(path), Some(realm)) => Some((path, realm)),
        (Some(_), None) => return Err("--digest-users needs --digest-realm".to_owned()),
        (None, _) => None,
    };
    config.digest_md5 = args.digest_md5 || file.digest_md5.unwrap_or(false);
    if let Some(secs) = args.digest_nonce_lifetime.or(file.digest_nonce_lifetime) {
        config.digest_nonce_lifetime = secs;
    }
    config.basic_users = args.basic_users.or(file.basic_users);
    config.delegation_dir = args.delegation_dir.or(file.delegation_dir);
    config.s4u2proxy = args.s4u2proxy.or(file.s4u2proxy);
    if let Some(n) = file.max_handshakes {
        config.max_handshakes = n;
    }
    if let Some(secs) = file.header_timeout {
        config.header_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = args.upstream_timeout.or(file.upstream_timeout) {
        config.upstream_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(n) = args.max_connections.or(file.max_connections) {
        config.max_connections = n.max(1);
    }
    if let Some(bytes) = args.max_body {
        config.max_body = bytes;
    } else if let Some(size) = &file.max_body {
        config.max_body = size.bytes().map_err(|e| format!("max-body: {e}"))?;
    }
    if let Some(size) = &file.spool_budget {
        config.spool_budget = size.bytes().map_err(|e| format!("spool-budget: {e}"))?;
    }
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or_else(|| "text".to_owned());
    if log_format != "text" && log_format != "json" {
        return Err(format!("log format {log_format:?}: use text or json"));
    }
    Ok((config, log_format))
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called, before the
/// gate announces itself, so a signal that comes early still shuts down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().with_current_span(false).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Runs `kerbside gate`.
pub async fn run(args: GateArgs) -> ExitCode {
    let checking = args.check;
    let probe = match super::gate_probe::probe(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, log_format) = match resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(2);
        }
    };
    if checking {
        let report = match tokio::task::spawn_blocking(move || {
            kerbside_server::check::check(&config, probe.as_ref())
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("kerbside gate: the check failed: {e}");
                return ExitCode::from(1);
            }
        };
        print!("{report}");
        return if report.all_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    init_logging(&log_format);
    let shutdown = shutdown_signal();
    let gate = match Gate::bind(&config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = match gate.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kerbside gate: {e}");
            return ExitCode::from(1);
        }
    };
    if !gate.is_tls() && config.mode != AuthMode::None {
        tracing::warn!(
            "serving plain HTTP: Kerberos tokens and user identities travel unprotected; \
             give --tls-cert and --tls-key"
        );
    }
    let scheme = if gate.is_tls() { "https" } else { "http" };
    let targets: Vec<String> = config
        .mounts
        .iter()
        .map(|m| match &m.target {
            MountTarget::Proxy(u) => format!("{} -> {u}", m.prefix),
            MountTarget::Cgi(c) => format!("{} -> CGI {}", m.prefix, c.program.display()),
            MountTarget::ForwardAuth => format!("{} -> forward-auth", m.prefix),
        })
        .collect();
    // Tests and scripts read this line to learn the port.
    eprintln!(
        "kerbside gate: listening on {scheme}://{addr}, forwarding {}",
        targets.join("; ")
    );
    if let Some(metrics) = gate.metrics_addr() {
        eprintln!("kerbside gate: metrics on http://{metrics}/metrics");
    }
    gate.serve(shutdown).await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert!(parse_size("").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn sizes_round_trip_or_are_refused_in_words() {
        let units = [
            ("", 0),
            ("K", 10),
            ("M", 20),
            ("G", 30),
            ("T", 40),
            ("kib", 10),
        ];
        for n in [
            0u64,
            1,
            7,
            1023,
            4096,
            1 << 23,
            (1 << 24) - 1,
            u64::MAX >> 40,
            u64::MAX,
        ] {
            for (unit, shift) in units {
                let text = format!("{n}{unit}");
                match n.checked_mul(1 << shift) {
                    Some(bytes) => assert_eq!(parse_size(&text), Ok(bytes), "{text}"),
                    None => assert!(parse_size(&text).unwrap_err().contains("too large")),
                }
            }
        }
        for junk in [
            "G",
            " ",
            "1.5G",
            "1e9",
            "0x10",
            "1 G B",
            "１G",
            "18446744073709551616",
        ] {
            assert!(parse_size(junk).is_err(), "{junk}");
        }
    }
}
