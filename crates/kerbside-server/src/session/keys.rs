//! Session keys: the current key that seals and the previous keys that still open,
//! made fresh or read from a key file that only its owner can read.

use super::*;

/// A 32-byte session key. It is zeroed when dropped, and its `Debug` output does not show it.
pub struct SessionKey(Box<[u8; KEY_LEN]>);

impl SessionKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SessionKey {
        SessionKey(Box::new(bytes))
    }

    /// A new random key.
    ///
    /// # Errors
    ///
    /// [`SessionError::Random`] if the operating system's random number generator fails.
    pub fn generate() -> Result<SessionKey, SessionError> {
        let mut key = SessionKey(Box::new([0; KEY_LEN]));
        getrandom::fill(&mut key.0[..]).map_err(SessionError::Random)?;
        Ok(key)
    }

    pub(super) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }
}

impl Drop for SessionKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// The keys of a [`SessionCodec`]: the current key seals new cookies; it and the previous
/// keys open them.
#[derive(Debug)]
pub struct SessionKeys {
    pub(super) current: SessionKey,
    previous: Vec<SessionKey>,
}

impl SessionKeys {
    /// Keys from a current key and previous ones.
    pub fn new(current: SessionKey, previous: Vec<SessionKey>) -> SessionKeys {
        SessionKeys { current, previous }
    }

    /// Only `current`, from its bytes; for tests.
    pub fn from_bytes(current: [u8; KEY_LEN]) -> SessionKeys {
        SessionKeys::new(SessionKey::from_bytes(current), Vec::new())
    }

    /// Reads the current key from the key file `path`: exactly [`KEY_LEN`] raw bytes that only
    /// its owner can read. If there is no such file, creates it with mode 0600 and a new
    /// random key. Creation does not race: the file is created only if it does not exist,
    /// never with wider permissions, and if another process creates it first this reads
    /// that process's key. (A reader that comes within the microseconds between creation
    /// and the write of the 32 bytes sees a [`SessionError::KeyFileLength`]; try again.)
    ///
    /// The owner of the file is not checked; keep it in a directory only the gate's user
    /// can write.
    ///
    /// # Errors
    ///
    /// - [`SessionError::KeyFilePermissions`] if the group or others may read or write it
    ///   (Unix only): the message says to run `chmod 600`;
    /// - [`SessionError::KeyFileLength`] if it is not exactly 32 bytes long;
    /// - [`SessionError::KeyFileIo`] if it cannot be created, opened or read;
    /// - [`SessionError::Random`] if no random key can be made.
    pub fn load_or_create(path: &Path) -> Result<SessionKeys, SessionError> {
        let key = SessionKey::generate()?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let current = match options.open(path) {
            Ok(mut file) => {
                let written = file.write_all(&key.0[..]).and_then(|()| file.sync_all());
                if let Err(source) = written {
                    // Leave no short key file behind to be refused on the next start.
                    let _ = std::fs::remove_file(path);
                    return Err(key_file_io(path, source));
                }
                key
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => read_key_file(path)?,
            Err(source) => return Err(key_file_io(path, source)),
        };
        Ok(SessionKeys::new(current, Vec::new()))
    }

    /// Adds the keys in `paths` as previous keys, which open cookies but do not seal them:
    /// cookies sealed before a key rotation still open. The files must exist, and are
    /// checked like [`load_or_create`](Self::load_or_create)'s.
    ///
    /// # Errors
    ///
    /// As [`load_or_create`](Self::load_or_create), and [`SessionError::KeyFileIo`] if a
    /// file does not exist.
    pub fn with_previous(mut self, paths: &[PathBuf]) -> Result<SessionKeys, SessionError> {
        for path in paths {
            self.previous.push(read_key_file(path)?);
        }
        Ok(self)
    }

    /// How many keys open cookies: the current one and the previous ones.
    pub fn len(&self) -> usize {
        1 + self.previous.len()
    }

    /// Always `false`: there is always a current key.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub(super) fn all(&self) -> impl Iterator<Item = &SessionKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

fn key_file_io(path: &Path, source: io::Error) -> SessionError {
    SessionError::KeyFileIo {
        path: path.to_owned(),
        source,
    }
}

/// Reads and checks an existing key file.
fn read_key_file(path: &Path) -> Result<SessionKey, SessionError> {
    let mut file = File::open(path).map_err(|e| key_file_io(path, e))?;
    let metadata = file.metadata().map_err(|e| key_file_io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SessionError::KeyFilePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let wrong_length = |len| SessionError::KeyFileLength {
        path: path.to_owned(),
        len,
    };
    if metadata.len() != KEY_LEN as u64 {
        return Err(wrong_length(metadata.len()));
    }
    let mut key = SessionKey(Box::new([0; KEY_LEN]));
    file.read_exact(&mut key.0[..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => wrong_length(0),
            _ => key_file_io(path, e),
        })?;
    // The file may have grown since its length was read.
    let mut more = [0; 1];
    match file.read(&mut more) {
        Ok(0) => Ok(key),
        Ok(_) => Err(wrong_length(KEY_LEN as u64 + 1)),
        Err(e) => Err(key_file_io(path, e)),
    }
}
