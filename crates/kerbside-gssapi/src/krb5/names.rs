//! Encryption type numbers (RFC 3961 and successors, IANA "Kerberos Encryption Type
//! Numbers") in the words `klist -e` uses, and which are too weak to trust.

/// The name of an encryption type, as `klist -e` shows it.
pub fn enctype_name(enctype: i32) -> String {
    let name = match enctype {
        1 => "des-cbc-crc",
        2 => "des-cbc-md4",
        3 => "des-cbc-md5",
        16 => "des3-cbc-sha1",
        17 => "aes128-cts-hmac-sha1-96",
        18 => "aes256-cts-hmac-sha1-96",
        19 => "aes128-cts-hmac-sha256-128",
        20 => "aes256-cts-hmac-sha384-192",
        23 => "rc4-hmac",
        24 => "rc4-hmac-exp",
        25 => "camellia128-cts-cmac",
        26 => "camellia256-cts-cmac",
        _ => return format!("enctype {enctype}"),
    };
    name.to_owned()
}

/// True for DES, 3DES and RC4 (RFC 6649, RFC 8429): a ticket under such a key can
/// be cracked offline, and current MIT and Windows releases refuse them by default.
pub fn enctype_is_weak(enctype: i32) -> bool {
    matches!(enctype, 1..=3 | 16 | 23 | 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_weakness() {
        assert_eq!(enctype_name(18), "aes256-cts-hmac-sha1-96");
        assert_eq!(enctype_name(99), "enctype 99");
        assert!(enctype_is_weak(23));
        assert!(!enctype_is_weak(17));
    }
}
