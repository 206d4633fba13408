//! The `file` identity: a token file the platform keeps fresh (Kubernetes projected
//! service-account tokens, `AWS_WEB_IDENTITY_TOKEN_FILE`, `AZURE_FEDERATED_TOKEN_FILE`),
//! re-read at every refresh because the platform rotates it.

use super::{IdentityToken, TokenSource};
use crate::reference::Reference;
use crate::report::{Failure, FailureClass};

/// Reads the token from a file; `path` is a literal path or `env:NAME`.
#[derive(Debug, Clone)]
pub struct FileToken {
    path: String,
}

impl FileToken {
    pub fn new(path: &str) -> Self {
        FileToken {
            path: path.to_string(),
        }
    }

    fn resolve_path(&self) -> Result<String, Failure> {
        match self.path.strip_prefix("env:") {
            Some(_) => Reference::parse(&self.path)
                .and_then(|r| r.read())
                .map_err(|e| Failure::new(FailureClass::BadInput, format!("token file path: {e}"))),
            None => Ok(self.path.clone()),
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for FileToken {
    async fn token(&self, _audience: &str) -> Result<IdentityToken, Failure> {
        let path = self.resolve_path()?;
        let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
            Failure::new(
                FailureClass::Auth,
                format!("cannot read the identity token file {path}: {e}"),
            )
        })?;
        let jwt = text.trim();
        if jwt.split('.').count() != 3 {
            return Err(Failure::new(
                FailureClass::Auth,
                format!("the identity token file {path} does not hold a JWT"),
            ));
        }
        Ok(IdentityToken::new(jwt.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rereads_the_file_at_every_call() {
        let dir = std::env::temp_dir().join(format!("fedsync-file-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let jwt = |sub: &str| {
            let enc = |v: serde_json::Value| {
                use jsonwebtoken::{EncodingKey, Header, encode};
                encode(&Header::default(), &v, &EncodingKey::from_secret(b"k")).unwrap()
            };
            enc(serde_json::json!({"iss": "https://i", "sub": sub, "aud": "a"}))
        };
        std::fs::write(&path, jwt("first") + "\n").unwrap();
        let source = FileToken::new(path.to_str().unwrap());
        assert_eq!(
            source.token("x").await.unwrap().claims.sub.as_deref(),
            Some("first")
        );
        std::fs::write(&path, jwt("second")).unwrap();
        assert_eq!(
            source.token("x").await.unwrap().claims.sub.as_deref(),
            Some("second")
        );
        std::fs::write(&path, "not a token").unwrap();
        assert!(
            source
                .token("x")
                .await
                .unwrap_err()
                .message
                .contains("does not hold a JWT")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
