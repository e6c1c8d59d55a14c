//! [`TestRequest`]: one HTTP/1.1 request read off a socket, for the small servers
//! tests write to see exactly what a client sends.

use std::io::{self, BufRead};

/// One request: its request line, its headers in order, and its body (by
/// `Content-Length`; chunked bodies are not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRequest {
    /// `GET /path HTTP/1.1`, without the line end.
    pub line: String,
    /// Each header's name and value, trimmed.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl TestRequest {
    /// Reads the next request of a connection; `None` when the client closed it
    /// before a request began.
    pub fn read(reader: &mut impl BufRead) -> io::Result<Option<TestRequest>> {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                break;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let mut request = TestRequest {
            line: line.trim_end().to_owned(),
            headers,
            body: Vec::new(),
        };
        let length = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0usize);
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
        Ok(Some(request))
    }

    /// The first header of this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_one_after_another() {
        let wire =
            b"POST /a HTTP/1.1\r\nAuthorization: Negotiate abc\r\nContent-Length: 3\r\n\r\nxyz\
GET /b HTTP/1.1\r\n\r\n";
        let mut reader = &wire[..];
        let first = TestRequest::read(&mut reader).unwrap().unwrap();
        assert_eq!(first.line, "POST /a HTTP/1.1");
        assert_eq!(first.header("AUTHORIZATION"), Some("Negotiate abc"));
        assert_eq!(first.body, b"xyz");
        let second = TestRequest::read(&mut reader).unwrap().unwrap();
        assert_eq!(
            (second.line.as_str(), second.header("authorization")),
            ("GET /b HTTP/1.1", None)
        );
        assert_eq!(TestRequest::read(&mut reader).unwrap(), None);
    }
}
