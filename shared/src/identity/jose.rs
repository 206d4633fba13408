//! The JOSE forms of what a signing key yields: its public key as a JWK named by
//! its RFC 7638 thumbprint (from a PEM private key, or from the X.509
//! SubjectPublicKeyInfo DER that KMS hands out), and an ECDSA signature in the
//! raw `r || s` form JWS wants (RFC 7518 §3.4) instead of DER.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};

/// The public half of a signing key as an issuer publishes it.
#[derive(Debug, Clone)]
pub(crate) struct PublicJwk {
    pub algorithm: Algorithm,
    /// The RFC 7638 SHA-256 thumbprint of the key.
    pub kid: String,
    /// The key with `kid`, `alg` and `use: sig`; never a private part.
    pub jwk: Jwk,
}

/// A P-256 SubjectPublicKeyInfo is this fixed header (SEQUENCE, AlgorithmIdentifier
/// id-ecPublicKey with prime256v1, BIT STRING of 66 bytes), then the uncompressed point.
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The size of a P-256 coordinate, and so of each half of an ES256 signature.
pub(crate) const P256_COORDINATE: usize = 32;
/// The smallest RSA modulus RS256 verifiers accept.
const MIN_RSA_BITS: usize = 2048;

impl PublicJwk {
    /// Names `jwk` by its thumbprint and marks it for signatures with `algorithm`.
    pub fn new(mut jwk: Jwk, algorithm: Algorithm) -> Result<Self, String> {
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("cannot compute the key's thumbprint: {e}"))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.key_algorithm = Some(algorithm.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(PublicJwk {
            algorithm,
            kid,
            jwk,
        })
    }

    /// An RSA (RS256) or P-256 (ES256) public key in X.509 SubjectPublicKeyInfo DER.
    pub fn from_spki(der: &[u8]) -> Result<Self, String> {
        if let Ok(rsa) = aws_lc_rs::rsa::PublicKey::from_der(der) {
            let bits = rsa.modulus_len() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "the RSA key has {bits} bits; RS256 needs at least {MIN_RSA_BITS}"
                ));
            }
            let params = AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(rsa.modulus().big_endian_without_leading_zero()),
                e: b64(rsa.exponent().big_endian_without_leading_zero()),
            });
            return Self::new(jwk(params), Algorithm::RS256);
        }
        let point = der
            .strip_prefix(&P256_SPKI_HEADER)
            .filter(|p| p.len() == 1 + 2 * P256_COORDINATE && p[0] == 0x04)
            .filter(|_| ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, der).is_ok())
            .ok_or(
                "the public key is neither an RSA nor a P-256 EC key in SubjectPublicKeyInfo form",
            )?;
        let (x, y) = point[1..].split_at(P256_COORDINATE);
        let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: b64(x),
            y: b64(y),
        });
        Self::new(jwk(params), Algorithm::ES256)
    }
}

fn jwk(algorithm: AlgorithmParameters) -> Jwk {
    Jwk {
        common: CommonParameters::default(),
        algorithm,
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A DER ECDSA signature (`SEQUENCE { r INTEGER, s INTEGER }`) as JWS has it:
/// `r || s`, each left-padded to `size` bytes (RFC 7518 §3.4).
pub(crate) fn ecdsa_der_to_jws(der: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let malformed = || "the ECDSA signature is not a DER SEQUENCE of two INTEGERs".to_string();
    let (body, rest) = der_element(der, 0x30).ok_or_else(malformed)?;
    let (r, body) = der_element(body, 0x02).ok_or_else(malformed)?;
    let (s, body) = der_element(body, 0x02).ok_or_else(malformed)?;
    if !rest.is_empty() || !body.is_empty() {
        return Err(malformed());
    }
    let mut raw = vec![0; 2 * size];
    for (integer, half) in [r, s].into_iter().zip(raw.chunks_mut(size)) {
        if integer.first().is_none_or(|b| b & 0x80 != 0) {
            return Err("the ECDSA signature holds an empty or negative INTEGER".into());
        }
        let magnitude = &integer[integer.iter().take_while(|b| **b == 0).count()..];
        if magnitude.len() > size {
            return Err(format!(
                "the ECDSA signature holds an INTEGER longer than {size} bytes"
            ));
        }
        half[size - magnitude.len()..].copy_from_slice(magnitude);
    }
    Ok(raw)
}

/// One DER element of `tag` at the start of `input`: its contents and what follows.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, input) = input.split_first()?;
    let (&len, input) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (len, input) = match len {
        0..=0x7f => (usize::from(len), input),
        // ECDSA signatures over curves up to P-521 need at most one length byte.
        0x81 => {
            let (&len, input) = input.split_first()?;
            (len >= 0x80).then_some((usize::from(len), input))?
        }
        _ => return None,
    };
    (input.len() >= len).then(|| input.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use jsonwebtoken::DecodingKey;

    const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJmZWRzeW5jOnRlc3QifQ";

    /// Whether the JWK verifies `signature` (JWS form) over `MESSAGE`.
    fn verifies(public: &PublicJwk, signature: &[u8]) -> bool {
        let key = DecodingKey::from_jwk(&public.jwk).unwrap();
        jsonwebtoken::crypto::verify(&b64(signature), MESSAGE, &key, public.algorithm).unwrap()
    }

    #[test]
    fn an_rsa_spki_becomes_a_jwk_that_verifies_the_keys_signatures() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let public = PublicJwk::from_spki(spki.as_ref()).unwrap();
        assert_eq!(public.algorithm, Algorithm::RS256);
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            MESSAGE,
            &mut signature,
        )
        .unwrap();
        assert!(verifies(&public, &signature));
        signature[0] ^= 1;
        assert!(!verifies(&public, &signature), "a forged signature fails");
        let json = serde_json::to_value(&public.jwk).unwrap();
        assert_eq!(json["kty"], "RSA");
        assert_eq!(json["alg"], "RS256");
        assert_eq!(json["use"], "sig");
        assert_eq!(json["kid"], public.kid.as_str());
        assert!(json.get("d").is_none());
    }

    #[test]
    fn a_p256_spki_and_a_der_signature_verify_as_es256() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let public = PublicJwk::from_spki(spki.as_ref()).unwrap();
        assert_eq!(public.algorithm, Algorithm::ES256);
        let json = serde_json::to_value(&public.jwk).unwrap();
        assert_eq!(
            (&json["kty"], &json["crv"]),
            (&"EC".into(), &"P-256".into())
        );
        // Many signatures, so that short r and s (leading zero bytes) come up too.
        for _ in 0..64 {
            let der = pair.sign(&SystemRandom::new(), MESSAGE).unwrap();
            let raw = ecdsa_der_to_jws(der.as_ref(), P256_COORDINATE).unwrap();
            assert_eq!(raw.len(), 64);
            assert!(verifies(&public, &raw));
        }
    }

    #[test]
    fn the_kid_is_the_same_as_the_pem_forms() {
        for algorithm in [Algorithm::RS256, Algorithm::ES256] {
            let pem = super::super::signing_key::tests::generated_pem(algorithm);
            let key = match algorithm {
                Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()),
                _ => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()),
            }
            .unwrap();
            let from_pem =
                PublicJwk::new(Jwk::from_encoding_key(&key, algorithm).unwrap(), algorithm)
                    .unwrap();
            let pkcs8 = pem_body(&pem);
            let der = match algorithm {
                Algorithm::RS256 => aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8)
                    .unwrap()
                    .public_key()
                    .as_der()
                    .unwrap(),
                _ => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
                    .unwrap()
                    .public_key()
                    .as_der()
                    .unwrap(),
            };
            let from_spki = PublicJwk::from_spki(der.as_ref()).unwrap();
            assert_eq!(from_spki.kid, from_pem.kid, "{algorithm:?}");
            assert_eq!(
                serde_json::to_value(&from_spki.jwk).unwrap(),
                serde_json::to_value(&from_pem.jwk).unwrap()
            );
        }
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    #[test]
    fn other_keys_are_refused() {
        let p384 =
            EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        let spki = p384.public_key().as_der().unwrap();
        let err = PublicJwk::from_spki(spki.as_ref()).unwrap_err();
        assert!(err.contains("neither an RSA nor a P-256"), "{err}");
        assert!(PublicJwk::from_spki(b"\x30\x03\x02\x01\x01").is_err());
        // The bare point without its SubjectPublicKeyInfo header is not taken either.
        let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        assert!(PublicJwk::from_spki(p256.public_key().as_ref()).is_err());
    }

    #[test]
    fn der_signatures_convert_exactly() {
        // r = 1 (padded to 32 bytes), s = 0x8080…80 (DER puts a zero byte before
        // it to keep it positive; JWS does not).
        let mut der = vec![0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00];
        der.extend([0x80; 32]);
        let raw = ecdsa_der_to_jws(&der, 32).unwrap();
        assert_eq!(raw[..31], [0; 31]);
        assert_eq!(raw[31], 1);
        assert_eq!(raw[32..], [0x80; 32]);

        let refused = [
            &[][..],
            &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01], // not a SEQUENCE
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00], // trailing byte
            &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00], // junk inside
            &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01], // negative r
            &[0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01],       // empty r
            &[0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x04, 0x01], // truncated
            &[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01], // long form for a short length
        ];
        for der in refused {
            assert!(ecdsa_der_to_jws(der, 32).is_err(), "{der:02x?}");
        }
        let mut long = vec![0x30, 0x26, 0x02, 0x21, 0x01];
        long.extend([0x01; 32]);
        long.extend([0x02, 0x01, 0x01]);
        let err = ecdsa_der_to_jws(&long, 32).unwrap_err();
        assert!(err.contains("longer than 32 bytes"), "{err}");
    }
}
