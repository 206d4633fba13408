//! `fedsync issuer`: the OpenID discovery document and JWKS of every
//! signing-key identity, printed as JSON or written as files to host at the
//! issuer URL (`/.well-known/openid-configuration`, `/.well-known/jwks.json`).

use fedsync::identity::issuer::documents;
use std::path::Path;
use std::process::ExitCode;

pub async fn issuer(config: Option<&Path>, out: Option<&Path>) -> Result<ExitCode, String> {
    let config = crate::load_config(config)?;
    let issuers = documents(&config).await.map_err(|f| f.to_string())?;
    if issuers.is_empty() {
        return Err("the configuration has no signing-key identity".into());
    }
    let Some(out) = out else {
        let all: Vec<_> = issuers
            .iter()
            .map(|d| serde_json::json!({"issuer": d.issuer, "openid-configuration": d.discovery, "jwks": d.jwks}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    };
    for d in &issuers {
        // https://issuer.example.com/fedsync -> OUT/issuer.example.com/fedsync/.well-known/
        let place = d
            .issuer
            .split_once("://")
            .map_or(d.issuer.as_str(), |(_, rest)| rest);
        let place: String = place
            .trim_end_matches('/')
            .chars()
            .map(|c| if c == ':' { '_' } else { c })
            .collect();
        let dir = out.join(place).join(".well-known");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (file, doc) in [
            ("openid-configuration", &d.discovery),
            ("jwks.json", &d.jwks),
        ] {
            let path = dir.join(file);
            let text = serde_json::to_string_pretty(doc).unwrap_or_default();
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
