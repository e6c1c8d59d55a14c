//! [`SetupError`]: why a part of the server could not be set up (a file that cannot be
//! read, settings that do not fit, a certificate that does not load). Errors at request
//! time are answers (`400`, `401`...), never this.

/// Why a part of the server could not be set up. Its text says what went wrong and
/// what to do, for a person reading the server's log or the command's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SetupError {
    message: String,
}

impl SetupError {
    /// The explanation, as displayed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for SetupError {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for SetupError {
    fn from(message: &str) -> Self {
        Self {
            message: message.to_owned(),
        }
    }
}

/// A value that is none of the accepted spellings (`--auth`, `--channel-binding`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}: use {expected}")]
pub struct ParseSettingError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl ParseSettingError {
    pub(crate) fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}
