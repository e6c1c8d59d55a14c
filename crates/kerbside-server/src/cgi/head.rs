//! The CGI program's header block (RFC 3875 §6): reading it off the program's output,
//! and parsing it into a status and response headers.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::MAX_CGI_HEAD;
use crate::hop_by_hop::is_hop_by_hop;

/// The CGI header block and what was read after it.
pub(super) struct Head {
    pub(super) block: Vec<u8>,
    pub(super) rest: Vec<u8>,
}

pub(super) enum HeadError {
    /// Output ended before the blank line.
    Ended,
    /// No blank line within [`MAX_CGI_HEAD`] bytes.
    TooLarge,
    Read(std::io::Error),
}

/// Reads the program's output up to the blank line that ends the header block.
pub(super) async fn read_head(stdout: &mut (impl AsyncRead + Unpin)) -> Result<Head, HeadError> {
    let mut buffer = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0; 8 * 1024];
    let mut searched = 0;
    loop {
        if let Some((end, rest)) = find_blank_line(&buffer, searched) {
            let rest = buffer.split_off(rest);
            buffer.truncate(end);
            return Ok(Head {
                block: buffer,
                rest,
            });
        }
        if buffer.len() > MAX_CGI_HEAD {
            return Err(HeadError::TooLarge);
        }
        // A blank line may start up to two bytes before the new data.
        searched = buffer.len().saturating_sub(2);
        let n = stdout.read(&mut chunk).await.map_err(HeadError::Read)?;
        if n == 0 {
            return Err(HeadError::Ended);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Finds the end of the header block: where it ends (before the blank line's
/// line break) and where the body starts. The block may be empty (output starting
/// with a blank line).
pub(super) fn find_blank_line(buffer: &[u8], from: usize) -> Option<(usize, usize)> {
    if from == 0 {
        if buffer.starts_with(b"\n") {
            return Some((0, 1));
        }
        if buffer.starts_with(b"\r\n") {
            return Some((0, 2));
        }
    }
    let mut i = from;
    while i < buffer.len() {
        if buffer[i] == b'\n' {
            match buffer.get(i + 1..) {
                Some([b'\n', ..]) => return Some((i + 1, i + 2)),
                Some([b'\r', b'\n', ..]) => return Some((i + 1, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Turns the header block into a status and headers.
pub(super) fn parse_head(block: &[u8]) -> Result<(StatusCode, HeaderMap), String> {
    let mut headers = HeaderMap::new();
    let mut status = None;
    let mut cgi_field = false;
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let shown = || String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| format!("not a header: {:?}", shown()))?;
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| format!("not a header name: {:?}", shown()))?;
        let value = line[colon + 1..].trim_ascii();
        if name.as_str() == "status" {
            status = Some(parse_status(value).ok_or_else(|| format!("bad status: {:?}", shown()))?);
            cgi_field = true;
            continue;
        }
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| format!("bad header value: {:?}", shown()))?;
        if name == CONTENT_TYPE || name == LOCATION {
            cgi_field = true;
        }
        // Hop-by-hop: the gate's connection to the client is its own.
        if is_hop_by_hop(name.as_str()) {
            continue;
        }
        headers.append(name, value);
    }
    if !cgi_field {
        return Err("no Status, Content-Type or Location".to_owned());
    }
    let status = match status {
        Some(status) => status,
        None if headers.contains_key(LOCATION) => StatusCode::FOUND,
        None => StatusCode::OK,
    };
    Ok((status, headers))
}

/// `Status: 404 Not Found` → 404. Informational (1xx) codes are refused.
pub(super) fn parse_status(value: &[u8]) -> Option<StatusCode> {
    let code = value.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || value.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    let code = std::str::from_utf8(code).ok()?.parse::<u16>().ok()?;
    if !(200..=599).contains(&code) {
        return None;
    }
    StatusCode::from_u16(code).ok()
}
