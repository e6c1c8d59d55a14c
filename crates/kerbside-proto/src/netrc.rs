//! The `~/.netrc` file: logins and passwords per host, as curl, ftp and Python's `netrc`
//! module read them.
//!
//! Sans-IO like the rest of this crate: [`Netrc::parse`] takes the file's bytes; finding,
//! reading and permission-checking the file is the caller's job (`kerbside-client` does it).
//!
//! The grammar is a stream of tokens separated by whitespace (newlines are whitespace too):
//!
//! - `machine NAME` starts an entry for a host, `default` an entry for every other host;
//! - inside an entry, `login VALUE` (or Python's synonym `user VALUE`), `password VALUE`
//!   and `account VALUE` set its fields; a later one replaces an earlier one;
//! - `macdef NAME` ends the current entry and starts an ftp macro, whose body (from the next
//!   line up to the first empty or all-blank line, or the end of the file) is skipped;
//! - a token that starts with `#` where a keyword is expected starts a comment that runs to the
//!   end of the line (a value may start with `#`: `password #1secret` is a password);
//! - a value in double quotes may contain spaces; inside it, as in curl 7.84 and later,
//!   `\n`, `\r` and `\t` stand for newline, carriage return and tab, and a backslash before any
//!   other character stands for that character (`\"`, `\\`). A quoted value ends on its line.
//!   Outside quotes a backslash is an ordinary character, so `login EXAMPLE\alice` works as in
//!   curl.
//!
//! Where curl and Python disagree, this parser takes the stricter reading and says where the
//! problem is: a word that is not a keyword, a keyword without its value, or an unterminated
//! quote is an error with its line and column, not a silently skipped token.
//!
//! ```
//! use kerbside_proto::netrc::Netrc;
//!
//! let netrc = Netrc::parse(b"
//! machine intranet.example.com
//!     login alice
//!     password \"correct horse\"
//! default login anonymous password guest
//! ")?;
//! let entry = netrc.lookup("Intranet.Example.COM").unwrap();
//! assert_eq!(entry.password.as_deref(), Some("correct horse"));
//! assert_eq!(netrc.lookup("elsewhere.example").unwrap().login.as_deref(), Some("anonymous"));
//! # Ok::<(), kerbside_proto::netrc::NetrcError>(())
//! ```

use std::fmt;

/// A parsed netrc file: the `machine` entries in file order, and the `default` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    entries: Vec<NetrcEntry>,
    default: Option<NetrcEntry>,
}

/// One `machine` (or `default`) entry. Its [`Debug`] output never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NetrcEntry {
    /// The host name after `machine`; `None` for the `default` entry.
    pub machine: Option<String>,
    /// The value of `login` (or `user`).
    pub login: Option<String>,
    /// The value of `password`.
    pub password: Option<String>,
    /// The value of `account`.
    pub account: Option<String>,
}

impl fmt::Debug for NetrcEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetrcEntry")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("account", &self.account)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a netrc file did not parse, and where: `line 3, column 5: \`login\` needs a value`.
///
/// The message never quotes the file's text, so it cannot leak a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct NetrcError {
    kind: NetrcErrorKind,
    line: usize,
    column: usize,
}

impl NetrcError {
    /// What is wrong.
    pub fn kind(&self) -> &NetrcErrorKind {
        &self.kind
    }

    /// The line of the offending token, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The byte offset of the offending token within its line, from 1.
    pub fn column(&self) -> usize {
        self.column
    }
}

/// What is wrong with a netrc file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetrcErrorKind {
    /// A keyword (`machine`, `login`, `password`, `account`, `macdef`) is the last token of
    /// the file, so its value is missing.
    #[error("`{0}` needs a value")]
    MissingValue(&'static str),
    /// `login`, `password` or `account` appears before any `machine` or `default`, or right
    /// after a `macdef` body.
    #[error("`{0}` outside a `machine` or `default` entry")]
    OutsideEntry(&'static str),
    /// A word appears where a keyword is expected and is none of them. `after` names the
    /// keyword whose value came just before on the same line, which usually means that value
    /// has a space in it and lacks quotes.
    #[error(
        "expected `machine`, `default`, `login`, `password`, `account` or `macdef`{}",
        match after {
            Some(keyword) => format!(
                "; if this word belongs to the `{keyword}` value before it, put that value in double quotes"
            ),
            None => String::new(),
        }
    )]
    UnknownKeyword {
        /// The keyword whose value was the previous token on the same line, if any.
        after: Option<&'static str>,
    },
    /// A keyword is written in quotes, or a quoted string stands where a keyword is expected.
    #[error("a quoted string where a keyword is expected")]
    QuotedKeyword,
    /// A `"` opens a value that does not close before the end of its line.
    #[error("a quoted value has no closing `\"` on its line")]
    UnterminatedQuote,
    /// A closing `"` is followed by something other than whitespace.
    #[error("text right after a closing `\"`; separate tokens with a space")]
    TextAfterQuote,
    /// A value is not UTF-8.
    #[error("a value is not valid UTF-8")]
    NotUtf8,
}

impl Netrc {
    /// Parses the contents of a netrc file.
    pub fn parse(text: &[u8]) -> Result<Netrc, NetrcError> {
        Parser {
            lexer: Lexer::new(text),
            netrc: Netrc::default(),
        }
        .run()
    }

    /// A netrc made of `entries` (each should have a `machine`) and a `default` entry.
    pub fn from_entries(entries: Vec<NetrcEntry>, default: Option<NetrcEntry>) -> Netrc {
        Netrc { entries, default }
    }

    /// The `machine` entries, in file order.
    pub fn entries(&self) -> &[NetrcEntry] {
        &self.entries
    }

    /// The `default` entry (the first, if the file has several).
    pub fn default_entry(&self) -> Option<&NetrcEntry> {
        self.default.as_ref()
    }

    /// The first entry whose `machine` equals `host` (ASCII case-insensitively), else the
    /// `default` entry. `host` is a bare host name: no scheme, port or trailing path.
    pub fn lookup(&self, host: &str) -> Option<&NetrcEntry> {
        self.entries
            .iter()
            .find(|entry| {
                entry
                    .machine
                    .as_deref()
                    .is_some_and(|machine| machine.eq_ignore_ascii_case(host))
            })
            .or(self.default.as_ref())
    }

    /// Writes the netrc back as text, one entry a line, quoting values where needed; it
    /// contains the passwords. An entry in [`entries`](Self::entries) without a `machine` is
    /// written as `default`. [`Netrc::parse`] reads the result back into an equal value.
    pub fn to_netrc_text(&self) -> String {
        let mut out = String::new();
        let machines = self.entries.iter().map(|e| (e.machine.as_deref(), e));
        for (machine, entry) in machines.chain(self.default.iter().map(|e| (None, e))) {
            match machine {
                Some(machine) => {
                    out.push_str("machine ");
                    push_value(&mut out, machine);
                }
                None => out.push_str("default"),
            }
            for (keyword, value) in [
                ("login", &entry.login),
                ("password", &entry.password),
                ("account", &entry.account),
            ] {
                if let Some(value) = value {
                    out.push(' ');
                    out.push_str(keyword);
                    out.push(' ');
                    push_value(&mut out, value);
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Appends `value` as one token: bare if that reads back the same, else quoted and escaped.
fn push_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && !value.starts_with('"')
        && !value.bytes().any(|b| is_space(b) || b.is_ascii_control())
        && !KEYWORDS.contains(&value);
    if bare {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Every keyword, quoted when it is written as a value so that other readers are not confused.
const KEYWORDS: [&str; 7] = [
    "machine", "default", "login", "user", "password", "account", "macdef",
];

/// Whitespace between tokens: curl's `ISSPACE`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A token and where it starts.
struct Token {
    bytes: Vec<u8>,
    quoted: bool,
    line: usize,
    column: usize,
}

impl Token {
    /// The token as a keyword, if it is one written bare.
    fn keyword(&self) -> Option<&'static str> {
        if self.quoted {
            return None;
        }
        KEYWORDS.into_iter().find(|k| k.as_bytes() == self.bytes)
    }

    fn error(&self, kind: NetrcErrorKind) -> NetrcError {
        NetrcError {
            kind,
            line: self.line,
            column: self.column,
        }
    }

    fn into_string(self) -> Result<String, NetrcError> {
        let (line, column) = (self.line, self.column);
        String::from_utf8(self.bytes).map_err(|_| NetrcError {
            kind: NetrcErrorKind::NotUtf8,
            line,
            column,
        })
    }
}

/// Splits the file into tokens, tracking lines and columns.
struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lexer {
            text,
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
            self.line_start = self.pos + 1;
        }
        self.pos += 1;
    }

    fn error_here(&self, kind: NetrcErrorKind) -> NetrcError {
        NetrcError {
            kind,
            line: self.line,
            column: self.pos - self.line_start + 1,
        }
    }

    /// The next token, or `None` at the end of the file.
    fn next(&mut self) -> Result<Option<Token>, NetrcError> {
        while self.peek().is_some_and(is_space) {
            self.bump();
        }
        let Some(first) = self.peek() else {
            return Ok(None);
        };
        let (line, column) = (self.line, self.pos - self.line_start + 1);
        let mut bytes = Vec::new();
        let quoted = first == b'"';
        if quoted {
            self.bump();
            loop {
                match self.peek() {
                    None | Some(b'\n') => {
                        return Err(NetrcError {
                            kind: NetrcErrorKind::UnterminatedQuote,
                            line,
                            column,
                        })
                    }
                    Some(b'"') => {
                        self.bump();
                        break;
                    }
                    Some(b'\\') => {
                        self.bump();
                        match self.peek() {
                            None | Some(b'\n') => {
                                return Err(NetrcError {
                                    kind: NetrcErrorKind::UnterminatedQuote,
                                    line,
                                    column,
                                })
                            }
                            Some(b'n') => bytes.push(b'\n'),
                            Some(b'r') => bytes.push(b'\r'),
                            Some(b't') => bytes.push(b'\t'),
                            Some(other) => bytes.push(other),
                        }
                        self.bump();
                    }
                    Some(other) => {
                        bytes.push(other);
                        self.bump();
                    }
                }
            }
            if self.peek().is_some_and(|b| !is_space(b)) {
                return Err(self.error_here(NetrcErrorKind::TextAfterQuote));
            }
        } else {
            while let Some(b) = self.peek().filter(|b| !is_space(*b)) {
                bytes.push(b);
                self.bump();
            }
        }
        Ok(Some(Token {
            bytes,
            quoted,
            line,
            column,
        }))
    }

    /// Skips the rest of the current line, its newline included.
    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            self.bump();
            if b == b'\n' {
                break;
            }
        }
    }

    /// Skips a `macdef` body: lines up to and including the first blank one.
    fn skip_macro_body(&mut self) {
        while self.peek().is_some() {
            let start = self.pos;
            self.skip_line();
            if self.text[start..self.pos].iter().all(|b| is_space(*b)) {
                break;
            }
        }
    }
}

/// Where the parser is: outside any entry, or filling one in.
enum State {
    Outside,
    Machine(NetrcEntry),
    Default(NetrcEntry),
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    netrc: Netrc,
}

impl Parser<'_> {
    fn run(mut self) -> Result<Netrc, NetrcError> {
        let mut state = State::Outside;
        // The keyword whose value was the last token, and that token's line: for the hint of
        // `UnknownKeyword`.
        let mut last_value: Option<(&'static str, usize)> = None;
        while let Some(token) = self.lexer.next()? {
            if !token.quoted && token.bytes.first() == Some(&b'#') {
                // A comment: a token that starts with `#` where a keyword is expected.
                self.lexer.skip_line();
                continue;
            }
            let after = last_value.take().filter(|(_, line)| *line == token.line);
            let keyword = match token.keyword() {
                Some(keyword) => keyword,
                None if token.quoted => return Err(token.error(NetrcErrorKind::QuotedKeyword)),
                None => {
                    return Err(token.error(NetrcErrorKind::UnknownKeyword {
                        after: after.map(|(keyword, _)| keyword),
                    }))
                }
            };
            match keyword {
                "machine" => {
                    let name = self.value(&token, keyword)?;
                    self.finish(state);
                    state = State::Machine(NetrcEntry {
                        machine: Some(name),
                        ..NetrcEntry::default()
                    });
                }
                "default" => {
                    self.finish(state);
                    state = State::Default(NetrcEntry::default());
                }
                "macdef" => {
                    self.value(&token, keyword)?;
                    self.finish(state);
                    state = State::Outside;
                    self.lexer.skip_line();
                    self.lexer.skip_macro_body();
                }
                field => {
                    let entry = match &mut state {
                        State::Machine(entry) | State::Default(entry) => entry,
                        State::Outside => {
                            return Err(token.error(NetrcErrorKind::OutsideEntry(field)))
                        }
                    };
                    let value = Some(self.value(&token, field)?);
                    match field {
                        "password" => entry.password = value,
                        "account" => entry.account = value,
                        _ => entry.login = value,
                    }
                    last_value = Some((field, self.lexer.line));
                }
            }
        }
        self.finish(state);
        Ok(self.netrc)
    }

    /// The value token after `keyword`, which may be anything, keywords included.
    fn value(
        &mut self,
        keyword_token: &Token,
        keyword: &'static str,
    ) -> Result<String, NetrcError> {
        match self.lexer.next()? {
            Some(token) => token.into_string(),
            None => Err(keyword_token.error(NetrcErrorKind::MissingValue(keyword))),
        }
    }

    fn finish(&mut self, state: State) {
        match state {
            State::Outside => {}
            State::Machine(entry) => self.netrc.entries.push(entry),
            State::Default(entry) => {
                self.netrc.default.get_or_insert(entry);
            }
        }
    }
}

/// The check of the `netrc` fuzz target: parses `data`, and panics if what parses does not
/// survive [`Netrc::to_netrc_text`] → [`Netrc::parse`] unchanged, if
/// [`Netrc::lookup`] misses one of its own entries, or if an error has no position.
pub(crate) fn fuzz_check(data: &[u8]) {
    match Netrc::parse(data) {
        Ok(netrc) => {
            let text = netrc.to_netrc_text();
            assert_eq!(Netrc::parse(text.as_bytes()), Ok(netrc.clone()), "{text:?}");
            for entry in netrc.entries() {
                let host = entry.machine.as_deref().unwrap_or_default();
                let found = netrc.lookup(host).and_then(|e| e.machine.as_deref());
                assert!(found.is_some_and(|m| m.eq_ignore_ascii_case(host)));
            }
        }
        Err(error) => {
            assert!(error.line() >= 1 && error.column() >= 1);
            let _ = error.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(machine: Option<&str>, login: Option<&str>, password: Option<&str>) -> NetrcEntry {
        NetrcEntry {
            machine: machine.map(str::to_owned),
            login: login.map(str::to_owned),
            password: password.map(str::to_owned),
            account: None,
        }
    }

    fn kind(text: impl AsRef<[u8]>) -> (NetrcErrorKind, usize, usize) {
        let error = Netrc::parse(text.as_ref()).unwrap_err();
        (error.kind().clone(), error.line(), error.column())
    }

    /// The example in curl's `docs/cmdline-opts/netrc.md` and `everything/usingcurl/netrc`.
    #[test]
    fn curl_docs_example() {
        let netrc = Netrc::parse(
            b"machine example.com\nlogin daniel\npassword qwerty\n\n\
              machine host.domain.com\nlogin myself\npassword secret\n",
        )
        .unwrap();
        assert_eq!(
            netrc.entries(),
            [
                entry(Some("example.com"), Some("daniel"), Some("qwerty")),
                entry(Some("host.domain.com"), Some("myself"), Some("secret")),
            ]
        );
        assert_eq!(netrc.default_entry(), None);
        assert_eq!(netrc.lookup("other.example"), None);
    }

    /// curl's one-line form and its quoted password with escapes (curl 7.84+, test 478/480).
    #[test]
    fn curl_quoted_values_and_escapes() {
        let netrc = Netrc::parse(
            br#"machine github.com login alice password "with \"quotes\" and \\ tab\t nl\n" account "a b""#,
        )
        .unwrap();
        let github = netrc.lookup("github.com").unwrap();
        assert_eq!(
            github.password.as_deref(),
            Some("with \"quotes\" and \\ tab\t nl\n")
        );
        assert_eq!(github.account.as_deref(), Some("a b"));
        // Any other escaped character stands for itself.
        let netrc = Netrc::parse(br#"machine h password "\a\#\ ""#).unwrap();
        assert_eq!(netrc.entries()[0].password.as_deref(), Some("a# "));
    }

    /// A backslash outside quotes is a plain character, as in curl: Windows domain logins.
    #[test]
    fn backslash_outside_quotes_is_literal() {
        let netrc = Netrc::parse(br"machine intranet login EXAMPLE\alice password p\w").unwrap();
        let intranet = netrc.lookup("intranet").unwrap();
        assert_eq!(intranet.login.as_deref(), Some(r"EXAMPLE\alice"));
        assert_eq!(intranet.password.as_deref(), Some(r"p\w"));
    }

    /// Python's `test_netrc.py`: `test_default`, `test_macros`, `test_optional_tokens`.
    #[test]
    fn python_default_and_macros() {
        let netrc = Netrc::parse(
            b"machine host1.domain.com login log1 password pass1 account acct1\n\
              default login log2 password pass2 account acct2\n",
        )
        .unwrap();
        assert_eq!(
            netrc.lookup("host1.domain.com").unwrap().account.as_deref(),
            Some("acct1")
        );
        let default = netrc.lookup("foo.domain.com").unwrap();
        assert_eq!(default.machine, None);
        assert_eq!(default.login.as_deref(), Some("log2"));

        let netrc = Netrc::parse(
            b"macdef macro1\nline1\nline2\n\nmacdef macro2\nline3\nline4\n\n\
              machine after.macros login me password pw\n",
        )
        .unwrap();
        assert_eq!(
            netrc.entries(),
            [entry(Some("after.macros"), Some("me"), Some("pw"))]
        );

        // Optional tokens: a machine with nothing but its name, and a bare default.
        let netrc = Netrc::parse(b"machine host.domain.com\ndefault").unwrap();
        assert_eq!(
            netrc.entries(),
            [entry(Some("host.domain.com"), None, None)]
        );
        assert_eq!(netrc.default_entry(), Some(&NetrcEntry::default()));
    }

    /// Python's `test_token_value_*`: keywords, `#` and quotes inside values.
    #[test]
    fn python_token_values() {
        for (text, password) in [
            ("machine h login l password #pass", "#pass"),
            ("machine h login l password \"#pass\"", "#pass"),
            ("machine h login l password \"pa ss\"", "pa ss"),
            ("machine h login l password machine", "machine"),
            ("machine h login l password \"\"", ""),
            ("machine h\n\tlogin l\n\tpassword p\"ss", "p\"ss"),
        ] {
            let netrc = Netrc::parse(text.as_bytes()).unwrap();
            assert_eq!(
                netrc.lookup("h").unwrap().password.as_deref(),
                Some(password),
                "{text}"
            );
        }
        // Python's synonym for `login`.
        let netrc = Netrc::parse(b"machine h user bob").unwrap();
        assert_eq!(netrc.lookup("h").unwrap().login.as_deref(), Some("bob"));
    }

    /// Python's `test_comment_*`: comments on their own lines, after entries, and at the start.
    #[test]
    fn comments() {
        let netrc = Netrc::parse(
            b"# a comment\n  # an indented one\nmachine foo.domain.com login bar password pass # trailing\n\
              #machine commented.out login x password y\n\
              machine bar.domain.com login foo password pass #comment with machine words\n",
        )
        .unwrap();
        assert_eq!(
            netrc.entries(),
            [
                entry(Some("foo.domain.com"), Some("bar"), Some("pass")),
                entry(Some("bar.domain.com"), Some("foo"), Some("pass")),
            ]
        );
        // `#` alone, then words, then a new line.
        let netrc = Netrc::parse(b"machine a # login x\n login y").unwrap();
        assert_eq!(netrc.entries(), [entry(Some("a"), Some("y"), None)]);
    }

    #[test]
    fn lookup_is_case_insensitive_and_first_match_wins() {
        let netrc = Netrc::parse(
            b"default login anon\nmachine Example.COM login first\nmachine example.com login second\n",
        )
        .unwrap();
        assert_eq!(
            netrc.lookup("EXAMPLE.com").unwrap().login.as_deref(),
            Some("first")
        );
        // `default` anywhere in the file is only a fallback.
        assert_eq!(
            netrc.lookup("other").unwrap().login.as_deref(),
            Some("anon")
        );
        // Several `default` entries: the first counts.
        let netrc = Netrc::parse(b"default login a\ndefault login b").unwrap();
        assert_eq!(netrc.default_entry().unwrap().login.as_deref(), Some("a"));
        // A later field replaces an earlier one.
        let netrc = Netrc::parse(b"machine h login a login b").unwrap();
        assert_eq!(netrc.lookup("h").unwrap().login.as_deref(), Some("b"));
    }

    #[test]
    fn macro_body_ends_at_blank_line_or_end_of_file() {
        // Blank lines with spaces or CR count as blank (CRLF files).
        let netrc = Netrc::parse(
            b"machine a login x\r\nmacdef init\r\ncd /pub\r\nmachine fake login y\r\n \r\nmachine b login z\r\n",
        )
        .unwrap();
        assert_eq!(
            netrc.entries(),
            [
                entry(Some("a"), Some("x"), None),
                entry(Some("b"), Some("z"), None)
            ]
        );
        // A macro that runs to the end of the file, as curl allows.
        let netrc = Netrc::parse(b"machine a\nmacdef init\ncd /pub\nget x").unwrap();
        assert_eq!(netrc.entries(), [entry(Some("a"), None, None)]);
        // The rest of the `macdef` line is not part of the body; an empty body is fine.
        let netrc = Netrc::parse(b"macdef m ignored words\n\nmachine a").unwrap();
        assert_eq!(netrc.entries(), [entry(Some("a"), None, None)]);
    }

    #[test]
    fn errors_name_the_problem_and_where() {
        assert_eq!(
            kind("machine a\n  login"),
            (NetrcErrorKind::MissingValue("login"), 2, 3)
        );
        assert_eq!(
            Netrc::parse(b"machine a\n  login").unwrap_err().to_string(),
            "line 2, column 3: `login` needs a value"
        );
        assert_eq!(
            kind("machine"),
            (NetrcErrorKind::MissingValue("machine"), 1, 1)
        );
        assert_eq!(
            kind("machine a macdef"),
            (NetrcErrorKind::MissingValue("macdef"), 1, 11)
        );
        assert_eq!(
            kind("login a"),
            (NetrcErrorKind::OutsideEntry("login"), 1, 1)
        );
        assert_eq!(
            kind("macdef m\nx\n\npassword p"),
            (NetrcErrorKind::OutsideEntry("password"), 4, 1)
        );
        assert_eq!(
            kind("machine a port 21"),
            (NetrcErrorKind::UnknownKeyword { after: None }, 1, 11)
        );
        assert_eq!(
            kind("machine a password two words"),
            (
                NetrcErrorKind::UnknownKeyword {
                    after: Some("password")
                },
                1,
                24
            )
        );
        assert_eq!(
            kind("machine a password p\nwords"),
            (NetrcErrorKind::UnknownKeyword { after: None }, 2, 1)
        );
        assert_eq!(kind("\"machine\" a"), (NetrcErrorKind::QuotedKeyword, 1, 1));
        assert_eq!(
            kind("machine a password \"open\nlogin b\""),
            (NetrcErrorKind::UnterminatedQuote, 1, 20)
        );
        assert_eq!(
            kind("machine a password \"ends in backslash\\"),
            (NetrcErrorKind::UnterminatedQuote, 1, 20)
        );
        assert_eq!(
            kind("machine a password \"x\"y"),
            (NetrcErrorKind::TextAfterQuote, 1, 23)
        );
        assert_eq!(
            kind(b"machine a password \xff\xfe"),
            (NetrcErrorKind::NotUtf8, 1, 20)
        );
    }

    #[test]
    fn error_messages_never_quote_the_file() {
        for text in [
            "machine a password hunter2 hunter3",
            "machine a password \"hunter2",
            "machine a password \"hunter2\"hunter3",
        ] {
            let message = Netrc::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(!message.contains("hunter"), "{message}");
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let netrc = Netrc::parse(b"machine h login alice password hunter2").unwrap();
        let debug = format!("{netrc:?} {:#?}", netrc.lookup("h"));
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("alice") && debug.contains("<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn formats_values_that_need_quotes() {
        let netrc = Netrc::from_entries(
            vec![NetrcEntry {
                machine: Some("h".into()),
                login: Some(r"EXAMPLE\alice".into()),
                password: Some("two words \"q\" \\ \t\n".into()),
                account: Some(String::new()),
            }],
            Some(entry(None, Some("machine"), Some("#x"))),
        );
        let text = netrc.to_netrc_text();
        assert_eq!(
            text,
            "machine h login EXAMPLE\\alice password \"two words \\\"q\\\" \\\\ \\t\\n\" account \"\"\n\
             default login \"machine\" password #x\n"
        );
        assert_eq!(Netrc::parse(text.as_bytes()), Ok(netrc));
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9.@_\\\\-]{1,12}",
            ".{0,12}",
            prop::sample::select(KEYWORDS.to_vec()).prop_map(str::to_owned),
            Just("#x".to_owned()),
            Just("\"".to_owned()),
        ]
    }

    fn netrc_entry(machine: bool) -> impl Strategy<Value = NetrcEntry> {
        (
            value(),
            prop::option::of(value()),
            prop::option::of(value()),
            prop::option::of(value()),
        )
            .prop_map(move |(name, login, password, account)| NetrcEntry {
                machine: machine.then_some(name),
                login,
                password,
                account,
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in prop::collection::vec(any::<u8>(), 0..200)) {
            fuzz_check(&text);
        }

        #[test]
        fn parse_never_panics_on_netrc_like_text(
            text in "((machine|default|login|password|account|macdef|#|\"|\\\\|[a-z]{1,3}|\n| |\t|\r)+ ?){0,30}"
        ) {
            fuzz_check(text.as_bytes());
        }

        #[test]
        fn format_then_parse_round_trips(
            entries in prop::collection::vec(netrc_entry(true), 0..5),
            default in prop::option::of(netrc_entry(false)),
        ) {
            let netrc = Netrc::from_entries(entries, default);
            let text = netrc.to_netrc_text();
            prop_assert_eq!(Netrc::parse(text.as_bytes()), Ok(netrc), "{}", text);
        }
    }
}
