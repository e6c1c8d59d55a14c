//! TLS channel bindings of type `tls-server-end-point` (RFC 5929 §4).
//!
//! When Negotiate runs over HTTPS, a client and a server can tie the Kerberos exchange to the TLS
//! connection it travels on, so that a token captured on one connection is useless on another
//! (Windows calls this Extended Protection for Authentication). Both sides hand GSSAPI the same
//! application data: the ASCII prefix `tls-server-end-point:` followed by a hash of the server's
//! certificate, exactly as it was sent in the TLS handshake. Windows/IIS, curl and Apache's
//! mod_auth_gssapi compute it this way.
//!
//! Which hash is used depends on the certificate (RFC 5929 §4.1): the one its `signatureAlgorithm`
//! names, except that MD5 and SHA-1 are replaced by SHA-256. Algorithms that use no single hash,
//! such as Ed25519 and Ed448, have no `tls-server-end-point` binding, and are reported as
//! [`BindingError::UnsupportedSignatureAlgorithm`].
//!
//! This module only reads the certificate; checking that it is valid and trusted is the TLS
//! stack's job, done before the binding is computed.
//!
//! ```
//! use kerbside_proto::channel_binding::{end_point_hash, tls_server_end_point, EndPointHash};
//!
//! // A certificate signed with RSASSA-PSS over SHA-384, in DER.
//! let cert = include_bytes!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/testdata/certs/rsa-pss-sha384.der"
//! ));
//! assert_eq!(end_point_hash(cert)?, EndPointHash::Sha384);
//! let bindings = tls_server_end_point(cert)?;
//! assert!(bindings.starts_with(b"tls-server-end-point:"));
//! assert_eq!(bindings.len(), "tls-server-end-point:".len() + 48);
//! # Ok::<(), kerbside_proto::channel_binding::BindingError>(())
//! ```

use pkcs1::RsaPssParamsOwned;
use sha2::Digest;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::Certificate;

/// The prefix of `tls-server-end-point` channel bindings (RFC 5929 §4.2), before the hash.
pub const TLS_SERVER_END_POINT_PREFIX: &[u8] = b"tls-server-end-point:";

/// Why no `tls-server-end-point` channel bindings can be computed for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The bytes are not one DER-encoded X.509 certificate (RFC 5280 §4.1) and nothing else.
    #[error("not a DER-encoded X.509 certificate: {detail}")]
    NotACertificate {
        /// What the DER decoder stopped at.
        detail: String,
    },
    /// The certificate's `signatureAlgorithm` uses no single hash function we know (Ed25519,
    /// Ed448, SHA-3, an unknown OID), so RFC 5929 §4.1 defines no channel bindings for it.
    #[error(
        "the certificate's signature algorithm {oid} has no single hash function, \
         so RFC 5929 defines no tls-server-end-point channel bindings for it"
    )]
    UnsupportedSignatureAlgorithm {
        /// The `signatureAlgorithm` OID, dotted.
        oid: String,
    },
    /// The certificate is signed with RSASSA-PSS, but its `signatureAlgorithm` carries no
    /// RSASSA-PSS-params (RFC 4055 §3.1 requires them), or they do not decode.
    #[error(
        "the certificate's RSASSA-PSS signature parameters are missing or malformed: {detail}"
    )]
    MalformedPssParameters {
        /// What is wrong with them.
        detail: String,
    },
    /// The certificate is signed with RSASSA-PSS over a hash function we do not know or cannot
    /// compute (e.g. SHA-3, SHA-512/256).
    #[error("the certificate's RSASSA-PSS signature uses the unsupported hash function {oid}")]
    UnsupportedPssHash {
        /// The `hashAlgorithm` OID of the RSASSA-PSS-params, dotted.
        oid: String,
    },
}

/// The hash function that `tls-server-end-point` channel bindings use for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndPointHash {
    /// SHA-224 (FIPS 180-4), for certificates signed with a SHA-224 algorithm.
    Sha224,
    /// SHA-256 (FIPS 180-4), also used in place of MD5 and SHA-1.
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
}

impl EndPointHash {
    /// The hash function's usual name, such as `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha224 => "SHA-224",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// The length of a digest, in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Which hash RFC 5929 §4.1 picks for a certificate: the hash of its signatureAlgorithm, with MD5
/// and SHA-1 replaced by SHA-256.
///
/// `cert_der` is the DER encoding of one X.509 certificate, as a TLS stack hands over the server's
/// end-entity certificate (for instance rustls's `peer_certificates()[0]`). The outer
/// `signatureAlgorithm` decides; for RSASSA-PSS it is the `hashAlgorithm` of its parameters.
///
/// # Errors
/// [`BindingError::NotACertificate`] if the bytes do not decode as one certificate;
/// [`BindingError::UnsupportedSignatureAlgorithm`] if its signature algorithm has no single hash
/// function we can compute (Ed25519, Ed448, ...); [`BindingError::MalformedPssParameters`] and
/// [`BindingError::UnsupportedPssHash`] for RSASSA-PSS certificates whose parameters we cannot use.
pub fn end_point_hash(cert_der: &[u8]) -> Result<EndPointHash, BindingError> {
    let cert = Certificate::from_der(cert_der).map_err(|e| BindingError::NotACertificate {
        detail: e.to_string(),
    })?;
    let algorithm = cert.signature_algorithm();
    let signature_hash = if algorithm.oid == oid::RSASSA_PSS {
        pss_hash(algorithm.parameters.as_ref())?
    } else {
        SIGNATURE_HASHES
            .iter()
            .find(|(oid, _)| *oid == algorithm.oid)
            .map(|(_, hash)| *hash)
            .ok_or_else(|| BindingError::UnsupportedSignatureAlgorithm {
                oid: algorithm.oid.to_string(),
            })?
    };
    Ok(signature_hash.end_point_hash())
}

/// `"tls-server-end-point:" || hash(cert)` — the application data GSSAPI gets as channel
/// bindings (as Windows/IIS, curl and mod_auth_gssapi use it), RFC 5929 §4.
///
/// `cert_der` is the DER encoding of the server's end-entity certificate, exactly as received
/// in the TLS handshake: the hash covers those bytes, not a re-encoding. The hash is chosen by
/// [`end_point_hash`].
///
/// # Errors
/// As [`end_point_hash`].
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, BindingError> {
    let hash = end_point_hash(cert_der)?;
    let mut bindings = Vec::with_capacity(TLS_SERVER_END_POINT_PREFIX.len() + hash.output_len());
    bindings.extend_from_slice(TLS_SERVER_END_POINT_PREFIX);
    bindings.extend_from_slice(&hash.digest(cert_der));
    Ok(bindings)
}

/// The hash function inside a signature algorithm, before RFC 5929's substitution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureHash {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl SignatureHash {
    /// RFC 5929 §4.1: "if the certificate's signatureAlgorithm uses a single hash function and
    /// that hash function is either MD5 or SHA-1, then use SHA-256".
    fn end_point_hash(self) -> EndPointHash {
        match self {
            Self::Md5 | Self::Sha1 | Self::Sha256 => EndPointHash::Sha256,
            Self::Sha224 => EndPointHash::Sha224,
            Self::Sha384 => EndPointHash::Sha384,
            Self::Sha512 => EndPointHash::Sha512,
        }
    }
}

/// Signature algorithms that use a single hash function (RSASSA-PSS aside: its hash is in its
/// parameters).
const SIGNATURE_HASHES: &[(ObjectIdentifier, SignatureHash)] = &[
    (oid::MD5_WITH_RSA, SignatureHash::Md5),
    (oid::SHA1_WITH_RSA, SignatureHash::Sha1),
    (oid::SHA1_WITH_RSA_OIW, SignatureHash::Sha1),
    (oid::SHA224_WITH_RSA, SignatureHash::Sha224),
    (oid::SHA256_WITH_RSA, SignatureHash::Sha256),
    (oid::SHA384_WITH_RSA, SignatureHash::Sha384),
    (oid::SHA512_WITH_RSA, SignatureHash::Sha512),
    (oid::ECDSA_WITH_SHA1, SignatureHash::Sha1),
    (oid::ECDSA_WITH_SHA224, SignatureHash::Sha224),
    (oid::ECDSA_WITH_SHA256, SignatureHash::Sha256),
    (oid::ECDSA_WITH_SHA384, SignatureHash::Sha384),
    (oid::ECDSA_WITH_SHA512, SignatureHash::Sha512),
    (oid::DSA_WITH_SHA1, SignatureHash::Sha1),
    (oid::DSA_WITH_SHA224, SignatureHash::Sha224),
    (oid::DSA_WITH_SHA256, SignatureHash::Sha256),
];

/// Hash functions as RSASSA-PSS-params name them (RFC 8017 Appendix A.2.3).
const HASHES: &[(ObjectIdentifier, SignatureHash)] = &[
    (oid::MD5, SignatureHash::Md5),
    (oid::SHA1, SignatureHash::Sha1),
    (oid::SHA224, SignatureHash::Sha224),
    (oid::SHA256, SignatureHash::Sha256),
    (oid::SHA384, SignatureHash::Sha384),
    (oid::SHA512, SignatureHash::Sha512),
];

/// The hash of an RSASSA-PSS signature: the `hashAlgorithm` of its parameters, SHA-1 when that is
/// left out (its DEFAULT). The mask generation function's hash is not looked at; it is the same
/// one in practice, and OpenSSL (hence curl and mod_auth_gssapi) also goes by `hashAlgorithm`.
fn pss_hash(parameters: Option<&x509_cert::der::Any>) -> Result<SignatureHash, BindingError> {
    let parameters = parameters.ok_or_else(|| BindingError::MalformedPssParameters {
        detail: "no parameters".to_owned(),
    })?;
    let parameters = parameters.decode_as::<RsaPssParamsOwned>().map_err(|e| {
        BindingError::MalformedPssParameters {
            detail: e.to_string(),
        }
    })?;
    let hash_oid = parameters.hash.oid;
    HASHES
        .iter()
        .find(|(oid, _)| *oid == hash_oid)
        .map(|(_, hash)| *hash)
        .ok_or_else(|| BindingError::UnsupportedPssHash {
            oid: hash_oid.to_string(),
        })
}

/// Object identifiers of the signature and hash algorithms above.
mod oid {
    use x509_cert::der::asn1::ObjectIdentifier;

    const fn oid(dotted: &str) -> ObjectIdentifier {
        // Evaluated at compile time: a typo fails the build, never a run.
        ObjectIdentifier::new_unwrap(dotted)
    }

    // RFC 8017 Appendix C (PKCS #1), RFC 4055 §5
    pub(super) const MD5_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.4");
    pub(super) const SHA1_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.5");
    pub(super) const RSASSA_PSS: ObjectIdentifier = oid("1.2.840.113549.1.1.10");
    pub(super) const SHA256_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.11");
    pub(super) const SHA384_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.12");
    pub(super) const SHA512_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.13");
    pub(super) const SHA224_WITH_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.14");
    // sha-1WithRSAEncryption of the OIW, still found in old Microsoft certificates
    pub(super) const SHA1_WITH_RSA_OIW: ObjectIdentifier = oid("1.3.14.3.2.29");

    // RFC 3279 §2.2.3, RFC 5758 §3.2
    pub(super) const ECDSA_WITH_SHA1: ObjectIdentifier = oid("1.2.840.10045.4.1");
    pub(super) const ECDSA_WITH_SHA224: ObjectIdentifier = oid("1.2.840.10045.4.3.1");
    pub(super) const ECDSA_WITH_SHA256: ObjectIdentifier = oid("1.2.840.10045.4.3.2");
    pub(super) const ECDSA_WITH_SHA384: ObjectIdentifier = oid("1.2.840.10045.4.3.3");
    pub(super) const ECDSA_WITH_SHA512: ObjectIdentifier = oid("1.2.840.10045.4.3.4");

    // RFC 3279 §2.2.2, RFC 5758 §3.1
    pub(super) const DSA_WITH_SHA1: ObjectIdentifier = oid("1.2.840.10040.4.3");
    pub(super) const DSA_WITH_SHA224: ObjectIdentifier = oid("2.16.840.1.101.3.4.3.1");
    pub(super) const DSA_WITH_SHA256: ObjectIdentifier = oid("2.16.840.1.101.3.4.3.2");

    // RFC 3279 §2.1, RFC 5754 §2
    pub(super) const MD5: ObjectIdentifier = oid("1.2.840.113549.2.5");
    pub(super) const SHA1: ObjectIdentifier = oid("1.3.14.3.2.26");
    pub(super) const SHA256: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.1");
    pub(super) const SHA384: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.2");
    pub(super) const SHA512: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.3");
    pub(super) const SHA224: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.4");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;
    use x509_cert::der::asn1::Any;
    use x509_cert::der::{Encode, Header, Length, Tag};
    use x509_cert::spki::AlgorithmIdentifierOwned;

    fn certs_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/certs")
    }

    fn read_cert(name: &str) -> Vec<u8> {
        std::fs::read(certs_dir().join(name)).unwrap()
    }

    /// One line of `testdata/certs/end-point-hashes.txt`.
    struct OpensslAnswer {
        /// The certificate's file name.
        file: String,
        /// The hash RFC 5929 picks and `openssl dgst` of the file, or `None` where there is no
        /// binding.
        binding: Option<(EndPointHash, Vec<u8>)>,
    }

    fn openssl_answers() -> Vec<OpensslAnswer> {
        let text = std::fs::read_to_string(certs_dir().join("end-point-hashes.txt")).unwrap();
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let hash = match fields[1] {
                    "none" => None,
                    "sha256" => Some(EndPointHash::Sha256),
                    "sha384" => Some(EndPointHash::Sha384),
                    "sha512" => Some(EndPointHash::Sha512),
                    other => panic!("{other}"),
                };
                OpensslAnswer {
                    file: fields[0].to_owned(),
                    binding: hash.map(|hash| (hash, from_hex(fields[2]))),
                }
            })
            .collect()
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Checks one checked-in certificate against the hash and digest openssl gave for it.
    fn assert_openssl_cert(name: &str, hash: EndPointHash) {
        let answers = openssl_answers();
        let answer = answers.iter().find(|a| a.file == name).unwrap();
        let Some((expected_hash, digest)) = &answer.binding else {
            panic!("{name} has no binding in end-point-hashes.txt");
        };
        assert_eq!(*expected_hash, hash, "{name}");
        let cert = read_cert(name);
        assert_eq!(end_point_hash(&cert), Ok(hash), "{name}");
        let mut bindings = b"tls-server-end-point:".to_vec();
        bindings.extend_from_slice(digest);
        assert_eq!(tls_server_end_point(&cert), Ok(bindings), "{name}");
    }

    #[test]
    fn rsa_sha256_uses_sha256() {
        assert_openssl_cert("rsa-sha256.der", EndPointHash::Sha256);
    }

    #[test]
    fn rsa_sha512_uses_sha512() {
        assert_openssl_cert("rsa-sha512.der", EndPointHash::Sha512);
    }

    #[test]
    fn rsa_sha1_uses_sha256() {
        assert_openssl_cert("rsa-sha1.der", EndPointHash::Sha256);
    }

    #[test]
    fn rsa_md5_uses_sha256() {
        assert_openssl_cert("rsa-md5.der", EndPointHash::Sha256);
    }

    #[test]
    fn rsa_pss_uses_the_hash_in_its_parameters() {
        assert_openssl_cert("rsa-pss-sha384.der", EndPointHash::Sha384);
    }

    #[test]
    fn rsa_pss_with_default_parameters_is_sha1_so_uses_sha256() {
        // Its RSASSA-PSS-params is an empty SEQUENCE: every field at its DEFAULT.
        assert_openssl_cert("rsa-pss-sha1.der", EndPointHash::Sha256);
    }

    #[test]
    fn ecdsa_sha384_uses_sha384() {
        assert_openssl_cert("ecdsa-p384-sha384.der", EndPointHash::Sha384);
    }

    #[test]
    fn ecdsa_sha512_uses_sha512() {
        assert_openssl_cert("ecdsa-p521-sha512.der", EndPointHash::Sha512);
    }

    #[test]
    fn ecdsa_sha1_uses_sha256() {
        assert_openssl_cert("ecdsa-p256-sha1.der", EndPointHash::Sha256);
    }

    #[test]
    fn dsa_sha256_uses_sha256() {
        assert_openssl_cert("dsa-sha256.der", EndPointHash::Sha256);
    }

    #[test]
    fn eddsa_has_no_binding() {
        for (name, oid) in [("ed25519.der", "1.3.101.112"), ("ed448.der", "1.3.101.113")] {
            let cert = read_cert(name);
            let error = BindingError::UnsupportedSignatureAlgorithm {
                oid: oid.to_owned(),
            };
            assert_eq!(end_point_hash(&cert), Err(error.clone()), "{name}");
            assert_eq!(tls_server_end_point(&cert), Err(error), "{name}");
        }
    }

    #[test]
    fn every_checked_in_certificate_matches_openssl() {
        let answers = openssl_answers();
        assert_eq!(answers.len(), 12);
        for OpensslAnswer {
            file: name,
            binding,
        } in answers
        {
            let cert = read_cert(&name);
            match binding {
                Some((hash, digest)) => {
                    assert_eq!(end_point_hash(&cert), Ok(hash), "{name}");
                    let bindings = tls_server_end_point(&cert).unwrap();
                    assert_eq!(&bindings[..21], b"tls-server-end-point:", "{name}");
                    assert_eq!(bindings[21..], digest, "{name}");
                }
                None => assert!(
                    matches!(
                        end_point_hash(&cert),
                        Err(BindingError::UnsupportedSignatureAlgorithm { .. })
                    ),
                    "{name}"
                ),
            }
        }
    }

    fn rcgen_cert(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["www.kerbside.test".to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn rcgen_ecdsa_certificates() {
        for (alg, hash) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, EndPointHash::Sha256),
            (&rcgen::PKCS_ECDSA_P384_SHA384, EndPointHash::Sha384),
        ] {
            let cert = rcgen_cert(alg);
            assert_eq!(end_point_hash(&cert), Ok(hash));
            let mut bindings = b"tls-server-end-point:".to_vec();
            bindings.extend_from_slice(&hash.digest(&cert));
            assert_eq!(tls_server_end_point(&cert), Ok(bindings));
        }
    }

    #[test]
    fn rcgen_ed25519_certificate_has_no_binding() {
        let cert = rcgen_cert(&rcgen::PKCS_ED25519);
        assert_eq!(
            tls_server_end_point(&cert),
            Err(BindingError::UnsupportedSignatureAlgorithm {
                oid: "1.3.101.112".to_owned()
            })
        );
    }

    #[test]
    fn digests_are_the_known_answers() {
        // FIPS 180-4 examples for "abc".
        let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(EndPointHash::Sha224.digest(b"abc")),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
        );
        assert_eq!(
            hex(EndPointHash::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hex(EndPointHash::Sha384.digest(b"abc")).starts_with("cb00753f45a35e8bb5a03d69"));
        assert!(hex(EndPointHash::Sha512.digest(b"abc")).starts_with("ddaf35a193617abacc417349"));
        for hash in [
            EndPointHash::Sha224,
            EndPointHash::Sha256,
            EndPointHash::Sha384,
            EndPointHash::Sha512,
        ] {
            assert_eq!(
                hash.digest(b"").len(),
                hash.output_len(),
                "{}",
                hash.as_str()
            );
        }
    }

    /// `cert` with its outer `signatureAlgorithm` replaced (the signature no longer verifies,
    /// which does not matter here).
    fn with_signature_algorithm(cert: &[u8], algorithm: AlgorithmIdentifierOwned) -> Vec<u8> {
        let cert = Certificate::from_der(cert).unwrap();
        let mut content = cert.tbs_certificate().to_der().unwrap();
        content.extend(algorithm.to_der().unwrap());
        content.extend(cert.signature().to_der().unwrap());
        let length = Length::try_from(content.len()).unwrap();
        let mut der = Header::new(Tag::Sequence, length).to_der().unwrap();
        der.extend(content);
        der
    }

    fn algorithm(dotted: &str, parameters: Option<Any>) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new(dotted).unwrap(),
            parameters,
        }
    }

    fn null() -> Option<Any> {
        Some(Any::from(x509_cert::der::asn1::Null))
    }

    #[test]
    fn every_signature_algorithm_maps_to_its_hash() {
        let base = read_cert("rsa-sha256.der");
        // Written out again here, apart from the table in the code, so a typo in one shows.
        let cases = [
            ("1.2.840.113549.1.1.4", Some(EndPointHash::Sha256)), // md5WithRSAEncryption
            ("1.2.840.113549.1.1.5", Some(EndPointHash::Sha256)), // sha1WithRSAEncryption
            ("1.3.14.3.2.29", Some(EndPointHash::Sha256)),        // sha-1WithRSAEncryption (OIW)
            ("1.2.840.113549.1.1.14", Some(EndPointHash::Sha224)), // sha224WithRSAEncryption
            ("1.2.840.113549.1.1.11", Some(EndPointHash::Sha256)), // sha256WithRSAEncryption
            ("1.2.840.113549.1.1.12", Some(EndPointHash::Sha384)), // sha384WithRSAEncryption
            ("1.2.840.113549.1.1.13", Some(EndPointHash::Sha512)), // sha512WithRSAEncryption
            ("1.2.840.10045.4.1", Some(EndPointHash::Sha256)),    // ecdsa-with-SHA1
            ("1.2.840.10045.4.3.1", Some(EndPointHash::Sha224)),  // ecdsa-with-SHA224
            ("1.2.840.10045.4.3.2", Some(EndPointHash::Sha256)),  // ecdsa-with-SHA256
            ("1.2.840.10045.4.3.3", Some(EndPointHash::Sha384)),  // ecdsa-with-SHA384
            ("1.2.840.10045.4.3.4", Some(EndPointHash::Sha512)),  // ecdsa-with-SHA512
            ("1.2.840.10040.4.3", Some(EndPointHash::Sha256)),    // id-dsa-with-sha1
            ("2.16.840.1.101.3.4.3.1", Some(EndPointHash::Sha224)), // id-dsa-with-sha224
            ("2.16.840.1.101.3.4.3.2", Some(EndPointHash::Sha256)), // id-dsa-with-sha256
            ("1.3.101.112", None),                                // Ed25519
            ("1.3.101.113", None),                                // Ed448
            ("2.16.840.1.101.3.4.3.14", None), // id-rsassa-pkcs1-v1_5-with-sha3-256
            ("1.2.840.113549.1.1.15", None),   // sha512-224WithRSAEncryption
            ("1.2.840.113549.1.1.1", None),    // rsaEncryption: a key, not a signature
            ("1.2.3.4", None),
        ];
        for (dotted, expected) in cases {
            for parameters in [None, null()] {
                let cert = with_signature_algorithm(&base, algorithm(dotted, parameters));
                let expected =
                    expected.ok_or_else(|| BindingError::UnsupportedSignatureAlgorithm {
                        oid: dotted.to_owned(),
                    });
                assert_eq!(end_point_hash(&cert), expected, "{dotted}");
            }
        }
    }

    /// RSASSA-PSS-params whose `hashAlgorithm` is `hash` (other fields at their DEFAULT, which
    /// is not what a real certificate would carry, but only the hash matters here).
    fn pss_params(hash: &str) -> Option<Any> {
        let hash = algorithm(hash, null());
        let mut content = vec![0xa0]; // [0] EXPLICIT
        let hash_der = hash.to_der().unwrap();
        content.push(u8::try_from(hash_der.len()).unwrap());
        content.extend(hash_der);
        Some(Any::new(Tag::Sequence, content).unwrap())
    }

    #[test]
    fn rsa_pss_hash_comes_from_the_parameters() {
        let base = read_cert("rsa-pss-sha384.der");
        let pss = "1.2.840.113549.1.1.10";
        for (hash, expected) in [
            ("1.2.840.113549.2.5", EndPointHash::Sha256), // MD5
            ("1.3.14.3.2.26", EndPointHash::Sha256),      // SHA-1
            ("2.16.840.1.101.3.4.2.4", EndPointHash::Sha224),
            ("2.16.840.1.101.3.4.2.1", EndPointHash::Sha256),
            ("2.16.840.1.101.3.4.2.2", EndPointHash::Sha384),
            ("2.16.840.1.101.3.4.2.3", EndPointHash::Sha512),
        ] {
            let cert = with_signature_algorithm(&base, algorithm(pss, pss_params(hash)));
            assert_eq!(end_point_hash(&cert), Ok(expected), "{hash}");
        }
        let sha3_256 = "2.16.840.1.101.3.4.2.8";
        let cert = with_signature_algorithm(&base, algorithm(pss, pss_params(sha3_256)));
        assert_eq!(
            end_point_hash(&cert),
            Err(BindingError::UnsupportedPssHash {
                oid: sha3_256.to_owned()
            })
        );
    }

    #[test]
    fn rsa_pss_without_usable_parameters_is_an_error() {
        let base = read_cert("rsa-pss-sha384.der");
        let pss = "1.2.840.113549.1.1.10";
        let garbage = Some(Any::new(Tag::Sequence, vec![0xa0, 0x02, 0x05, 0x00]).unwrap());
        for parameters in [None, null(), garbage] {
            let cert = with_signature_algorithm(&base, algorithm(pss, parameters.clone()));
            let result = end_point_hash(&cert);
            assert!(
                matches!(result, Err(BindingError::MalformedPssParameters { .. })),
                "{parameters:?}: {result:?}"
            );
        }
    }

    #[test]
    fn anything_but_one_der_certificate_is_not_a_certificate() {
        let cert = read_cert("rsa-sha256.der");
        let mut trailing = cert.clone();
        trailing.push(0);
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec();
        let mut bad_signature_bits = cert.clone();
        // The outer BIT STRING's unused-bits octet must be 0..=7.
        let len = cert.len();
        bad_signature_bits[len - 257] = 8;
        for input in [
            Vec::new(),
            trailing,
            pem,
            bad_signature_bits,
            vec![0x30, 0x00],
        ] {
            let result = tls_server_end_point(&input);
            assert!(
                matches!(result, Err(BindingError::NotACertificate { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for OpensslAnswer { file: name, .. } in openssl_answers() {
            let cert = read_cert(&name);
            for len in 0..cert.len() {
                let result = end_point_hash(&cert[..len]);
                assert!(
                    matches!(result, Err(BindingError::NotACertificate { .. })),
                    "{name}[..{len}]: {result:?}"
                );
            }
        }
    }

    #[test]
    fn errors_read_well() {
        let error = end_point_hash(&read_cert("ed25519.der")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the certificate's signature algorithm 1.3.101.112 has no single hash function, \
             so RFC 5929 defines no tls-server-end-point channel bindings for it"
        );
        let error = end_point_hash(b"").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("not a DER-encoded X.509 certificate: "),
            "{error}"
        );
    }

    /// What `fuzzing::cert_binding` checks: the two entry points agree, and the bindings are the
    /// prefix and the digest of the input.
    fn assert_consistent(data: &[u8]) {
        match (end_point_hash(data), tls_server_end_point(data)) {
            (Ok(hash), Ok(bindings)) => {
                let (prefix, digest) = bindings.split_at(TLS_SERVER_END_POINT_PREFIX.len());
                assert_eq!(prefix, TLS_SERVER_END_POINT_PREFIX);
                assert_eq!(digest, hash.digest(data));
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (hash, bindings) => panic!("{hash:?} but {bindings:?}"),
        }
    }

    fn checked_in_certs() -> Vec<Vec<u8>> {
        openssl_answers()
            .iter()
            .map(|answer| read_cert(&answer.file))
            .collect()
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            assert_consistent(&data);
        }

        #[test]
        fn truncated_certificates_are_errors(which in 0usize..12, cut in any::<prop::sample::Index>()) {
            let certs = checked_in_certs();
            let cert = &certs[which];
            let len = cut.index(cert.len());
            let result = tls_server_end_point(&cert[..len]);
            prop_assert!(matches!(result, Err(BindingError::NotACertificate { .. })), "{:?}", result);
        }

        #[test]
        fn corrupted_certificates_never_panic(
            which in 0usize..12,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut cert = checked_in_certs().swap_remove(which);
            for (at, byte) in flips {
                let at = at.index(cert.len());
                cert[at] ^= byte;
            }
            assert_consistent(&cert);
        }
    }
}
