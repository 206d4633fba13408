//! What a token says of itself, for a person checking trust: its header's
//! algorithm, key id and type, and every claim, read without verifying the
//! signature (the issuer check does that). Never the token nor its signature.

use super::IdentityToken;
use crate::report::{Failure, FailureClass};
use serde_json::{Map, Value};

/// A token's header fields and claims.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInspection {
    /// The signing algorithm the header names (`RS256`, `ES256`, ...).
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// Every claim, as the token carries it.
    pub claims: Map<String, Value>,
}

impl TokenInspection {
    /// A string claim (`iss`, `sub`).
    pub fn text(&self, claim: &str) -> Option<&str> {
        self.claims.get(claim).and_then(Value::as_str)
    }

    /// The audiences: `aud` as one string or a list of them.
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A NumericDate claim (`exp`, `iat`, `nbf`) in seconds since the epoch.
    pub fn time(&self, claim: &str) -> Option<i64> {
        let value = self.claims.get(claim)?;
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f.floor() as i64))
    }
}

impl IdentityToken {
    /// The token's header and claims, read without verifying anything.
    pub fn inspect(&self) -> Result<TokenInspection, Failure> {
        let unreadable = |what: &str| {
            Failure::new(
                FailureClass::BadInput,
                format!("the token's {what} cannot be read as a JWT's"),
            )
        };
        let header =
            jsonwebtoken::decode_header(self.expose()).map_err(|_| unreadable("header"))?;
        let claims: Map<String, Value> =
            jsonwebtoken::dangerous::insecure_decode_claims(self.expose())
                .map_err(|_| unreadable("claims"))?;
        Ok(TokenInspection {
            alg: format!("{:?}", header.alg),
            kid: header.kid,
            typ: header.typ,
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(header: &Value, claims: &Value) -> IdentityToken {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        IdentityToken::new(format!("{}.{}.c2lnbmF0dXJl", part(header), part(claims)))
    }

    #[test]
    fn header_and_every_claim_are_read_and_the_kid_reaches_the_claims() {
        let t = token(
            &serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}),
            &serde_json::json!({"iss": "https://i", "sub": "s", "aud": ["a", "b"], "exp": 20, "iat": 10.5, "repo": "acme/app"}),
        );
        let seen = t.inspect().unwrap();
        assert_eq!(
            (seen.alg.as_str(), seen.kid.as_deref(), seen.typ.as_deref()),
            ("ES256", Some("k1"), Some("JWT"))
        );
        assert_eq!(seen.audiences(), vec!["a", "b"]);
        assert_eq!((seen.time("exp"), seen.time("iat")), (Some(20), Some(10)));
        assert_eq!(seen.text("repo"), Some("acme/app"));
        assert_eq!(t.claims.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn something_that_is_not_a_jwt_is_refused_without_quoting_it() {
        let f = IdentityToken::new("not.a.jwt".into())
            .inspect()
            .unwrap_err();
        assert!(!f.message.contains("not.a.jwt"), "{f}");
    }
}
