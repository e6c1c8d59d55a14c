//! The realm's KDCs: does each answer over UDP and TCP (with a deadline), and how far
//! is this machine's clock from the KDC's (read off the KDC's answer to a probe).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kerbside_gssapi::krb5::Context;
use kerbside_proto::kdc_probe::{self, KdcReply};

use super::Finding;

/// MIT's default `clockskew`: five minutes.
const DEFAULT_CLOCKSKEW: i64 = 300;
/// Past this, a skew is worth a warning.
const WARN_SKEW: f64 = 60.0;
/// The most a TCP reply may be (a KRB-ERROR is a few hundred bytes).
const MAX_TCP_REPLY: usize = 64 * 1024;

/// A `kdc = ` entry: `host`, `host:port`, `[v6]:port`, optionally after `tcp/` or `udp/`.
fn parse_kdc(entry: &str) -> (String, u16) {
    let entry = entry
        .trim()
        .trim_start_matches("tcp/")
        .trim_start_matches("udp/")
        .trim_start_matches("kkdcp/");
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(88);
            return (host.to_owned(), port);
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host.to_owned(), port.parse().unwrap_or(88)),
        _ => (entry.to_owned(), 88),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One probe's result: the reply and the local time halfway through the exchange.
struct Answer {
    reply: KdcReply,
    local_mid: f64,
}

fn probe_udp(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<Answer, String> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?
    } else {
        "[::]:0".parse().map_err(|e| format!("{e}"))?
    };
    let socket = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    socket.connect(addr).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let start = unix_now();
    socket.send(request).map_err(|e| e.to_string())?;
    let mut buf = vec![0_u8; 65_536];
    let n = socket.recv(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {}s", timeout.as_secs())
        }
        std::io::ErrorKind::ConnectionRefused => "refused (nothing listens)".to_owned(),
        _ => e.to_string(),
    })?;
    let local_mid = (start + unix_now()) / 2.0;
    let reply = kdc_probe::parse_reply(&buf[..n]).map_err(|e| e.to_string())?;
    Ok(Answer { reply, local_mid })
}

fn probe_tcp(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<Answer, String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "refused (nothing listens)".to_owned(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("no connection within {}s", timeout.as_secs())
        }
        _ => e.to_string(),
    })?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let start = unix_now();
    stream
        .set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&kdc_probe::tcp_frame(request))
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        if Instant::now() >= deadline {
            return Err(format!("no full answer within {}s", timeout.as_secs()));
        }
        let n = stream.read(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no full answer within {}s", timeout.as_secs())
            }
            _ => e.to_string(),
        })?;
        if n == 0 {
            return Err("closed the connection without an answer".to_owned());
        }
        reply.extend_from_slice(&buf[..n]);
        if let Some(len) = kdc_probe::tcp_length(&reply) {
            if len > MAX_TCP_REPLY {
                return Err("answered something too big to be a KDC's".to_owned());
            }
            if reply.len() >= 4 + len {
                let local_mid = (start + unix_now()) / 2.0;
                let reply =
                    kdc_probe::parse_reply(&reply[4..4 + len]).map_err(|e| e.to_string())?;
                return Ok(Answer { reply, local_mid });
            }
        } else if reply.len() >= 4 {
            return Err("answered something that is not Kerberos over TCP".to_owned());
        }
    }
}

/// Probes every KDC of `realm` and judges the clock from the first answer; false
/// when KDCs are configured and none answered.
pub(super) fn check(
    context: &Context,
    realm: &str,
    timeout: Duration,
    findings: &mut Vec<Finding>,
) -> bool {
    let kdcs = context.profile_values(&["realms", realm, "kdc"]);
    if kdcs.is_empty() {
        let (dns, _) = super::config::libdefault(context, "dns_lookup_kdc", "true");
        findings.push(Finding::warn(
            "kdc",
            "no_kdc_configured",
            format!(
                "krb5.conf names no kdc for {realm} in [realms]; dns_lookup_kdc = {dns} \
                 (doctor does not look up DNS SRV records)"
            ),
            format!("add `kdc = HOST` for {realm} under [realms], or check the _kerberos._udp SRV records"),
        ));
        return true;
    }
    let nonce = u32::try_from(super::now() & 0x7fff_ffff).unwrap_or(1);
    let request = kdc_probe::as_req(realm, nonce, super::now() + 86_400);
    let mut first: Option<(String, Answer)> = None;
    let mut any_answer = false;
    for entry in &kdcs {
        let (host, port) = parse_kdc(entry);
        let name = host.clone();
        let addr = super::within(super::DNS_DEADLINE, move || {
            (name.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
        })
        .flatten();
        let Some(addr) = addr else {
            findings.push(Finding::fail(
                "kdc",
                "kdc_unreachable",
                format!(
                    "KDC {host}:{port} of {realm}: the name does not resolve (within {:?})",
                    super::DNS_DEADLINE
                ),
                "fix the kdc entry in krb5.conf, or DNS",
            ));
            continue;
        };
        let udp = probe_udp(addr, &request, timeout);
        let tcp = probe_tcp(addr, &request, timeout);
        let say = |r: &Result<Answer, String>| match r {
            Ok(_) => "answers".to_owned(),
            Err(e) => e.clone(),
        };
        let line = format!(
            "KDC {host}:{port} ({addr}) of {realm}: UDP {}, TCP {}",
            say(&udp),
            say(&tcp)
        );
        match (&udp, &tcp) {
            (Ok(_), Ok(_)) => findings.push(Finding::ok("kdc", line)),
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => findings.push(Finding::warn(
                "kdc",
                "kdc_half_reachable",
                line,
                "large tickets (many groups) need TCP, and UDP may be dropped: open port 88 \
                 for both (or set udp_preference_limit = 1 to always use TCP)",
            )),
            (Err(_), Err(_)) => findings.push(Finding::fail(
                "kdc",
                "kdc_unreachable",
                line,
                format!(
                    "start the KDC, or open port {port} in the firewall; check the kdc \
                     entries for {realm} in krb5.conf"
                ),
            )),
        }
        for answer in [udp, tcp].into_iter().flatten() {
            any_answer = true;
            if first.is_none() {
                first = Some((format!("{host}:{port}"), answer));
            }
        }
    }
    if !any_answer {
        findings.push(Finding::fail(
            "kdc",
            "kdc_unreachable",
            format!("cannot reach any KDC for {realm}"),
            "fix [realms] in krb5.conf; check port 88 and the firewall",
        ));
    }
    if let Some((kdc, answer)) = first {
        clock(context, &kdc, &answer, findings);
    }
    any_answer
}

/// Judges the skew between this machine's clock and a KDC's.
fn clock(context: &Context, kdc: &str, answer: &Answer, findings: &mut Vec<Finding>) {
    let server = answer.reply.server_time as f64 + f64::from(answer.reply.server_usec) / 1e6;
    let skew = answer.local_mid - server;
    let limit = context
        .profile_values(&["libdefaults", "clockskew"])
        .first()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(DEFAULT_CLOCKSKEW);
    let direction = if skew >= 0.0 { "ahead of" } else { "behind" };
    let found = format!(
        "this machine's clock is {:.1}s {direction} the KDC's ({kdc} says {}); the realm allows {limit}s",
        skew.abs(),
        kerbside_proto::kdc_probe::utc_text(answer.reply.server_time)
    );
    if skew.abs() > limit as f64 {
        findings.push(Finding::fail(
            "clock",
            "clock_skew",
            found,
            "set the clock right: run NTP (systemd-timesyncd, chrony) here, on the server \
             and on the KDC; Kerberos refuses tickets across more skew than the realm allows",
        ));
    } else if skew.abs() > WARN_SKEW {
        findings.push(Finding::warn(
            "clock",
            "clock_skew",
            found,
            "run NTP (systemd-timesyncd, chrony): past the realm's limit Kerberos stops working",
        ));
    } else {
        findings.push(Finding::ok("clock", found));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_kdc;

    #[test]
    fn kdc_entries() {
        assert_eq!(parse_kdc("kdc.example.com"), ("kdc.example.com".into(), 88));
        assert_eq!(parse_kdc("127.0.0.1:4088"), ("127.0.0.1".into(), 4088));
        assert_eq!(parse_kdc("tcp/kdc:750"), ("kdc".into(), 750));
        assert_eq!(parse_kdc("[::1]:89"), ("::1".into(), 89));
        assert_eq!(parse_kdc("::1"), ("::1".into(), 88));
    }
}
