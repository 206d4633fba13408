//! The egress guard: where fedsync may send a request. Every outbound URL must be
//! `https://`, except plain `http://` to a loopback address (emulators, tests);
//! link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata services
//! (169.254.169.254, fd00:ec2::254, 100.100.100.200, `metadata.google.internal`)
//! are never called, except the one metadata server fedsync is configured to ask
//! for its own tokens (the `gcp-metadata` identity, Google sources without
//! federation). The same rule checks configured URLs at load and every request
//! at the moment it is sent, so a URL learned from a remote document (an
//! issuer's `jwks_uri`) gets no further than one that was configured.
//!
//! Names are checked as written; the [`Resolver`] also drops link-local and
//! metadata addresses that a name resolves to, so a public-looking name pointing
//! at 169.254.169.254 is refused too. Requests sent through a proxy are resolved
//! by the proxy, so that part of the check does not apply to them.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use url::{Host, Url};

/// Names of cloud metadata services.
const METADATA_NAMES: &[&str] = &["metadata.google.internal"];
/// Metadata addresses outside the link-local ranges (Alibaba Cloud).
const METADATA_V4: &[Ipv4Addr] = &[Ipv4Addr::new(100, 100, 100, 200)];
/// AWS's instance metadata service over IPv6.
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];
/// Google's metadata server by address, which a configured metadata host may name.
const GOOGLE_METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A scheme other than `https`/`http`.
    Scheme(String),
    NoHost,
    PlainHttp,
    LinkLocal,
    Metadata,
    Unspecified,
    /// A configured metadata host that is not a metadata server.
    NotAMetadataServer,
    /// A metadata-server request for another host than the configured one.
    NotTheMetadataServer(String),
    /// A name whose every address is link-local or a metadata service.
    ResolvesOnlyToForbidden,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Scheme(s) => write!(f, "scheme {s}:// is not supported; use https://"),
            Reason::NoHost => f.write_str("the URL names no host"),
            Reason::PlainHttp => {
                f.write_str("plain http:// is only allowed to a loopback address; use https://")
            }
            Reason::LinkLocal => f.write_str(
                "link-local addresses are never called (cloud metadata services answer there)",
            ),
            Reason::Metadata => f.write_str(
                "cloud metadata services are only called as the configured metadata server",
            ),
            Reason::Unspecified => f.write_str("the unspecified address is not a destination"),
            Reason::NotAMetadataServer => f.write_str(
                "this is not a metadata server: use metadata.google.internal, 169.254.169.254, or a loopback address",
            ),
            Reason::NotTheMetadataServer(server) => {
                write!(f, "the configured metadata server is {server}, not this host")
            }
            Reason::ResolvesOnlyToForbidden => f.write_str(
                "the name resolves only to link-local or cloud metadata addresses, which are never called",
            ),
        }
    }
}

/// A destination the guard refused: the host, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused to call {host}: {reason}")]
pub struct Refused {
    pub host: String,
    pub reason: Reason,
}

impl Refused {
    fn new(host: impl Into<String>, reason: Reason) -> Self {
        Refused {
            host: host.into(),
            reason,
        }
    }
}

/// Whether fedsync may send a request to `url` (any destination but the
/// configured metadata server).
pub fn check(url: &Url) -> Result<(), Refused> {
    let shown = url.host_str().unwrap_or_default();
    let scheme = url.scheme();
    if scheme != "https" && scheme != "http" {
        return Err(Refused::new(shown, Reason::Scheme(scheme.into())));
    }
    let host = url
        .host()
        .ok_or_else(|| Refused::new(url.as_str(), Reason::NoHost))?;
    if let Some(reason) = forbidden_host(&host) {
        return Err(Refused::new(shown, reason));
    }
    if scheme == "http" && !is_loopback(&host) {
        return Err(Refused::new(shown, Reason::PlainHttp));
    }
    Ok(())
}

/// Whether `server` (`host[:port]`, a configured metadata host or
/// `GCE_METADATA_HOST`) may be asked for tokens: Google's metadata server by
/// name or address, or a loopback address (emulators).
pub fn check_metadata_server(server: &str) -> Result<(), Refused> {
    let refused = || Refused::new(server, Reason::NotAMetadataServer);
    let url = Url::parse(&format!("http://{server}/")).map_err(|_| refused())?;
    let ok = match url.host() {
        Some(Host::Domain(d)) => {
            let d = normalized(d);
            METADATA_NAMES.contains(&d.as_str()) || d == "localhost"
        }
        Some(Host::Ipv4(ip)) => ip == GOOGLE_METADATA_V4 || ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    // `host:port` only: a path or a query would change where requests go.
    if !ok || url.path() != "/" || url.query().is_some() {
        return Err(refused());
    }
    Ok(())
}

/// Whether a request to `url` may go to the configured metadata server `server`:
/// the server must be one, and `url` must name exactly its host.
pub fn check_metadata_request(url: &Url, server: &str) -> Result<(), Refused> {
    check_metadata_server(server)?;
    let shown = url.host_str().unwrap_or_default();
    let expected = Url::parse(&format!("http://{server}/")).ok();
    let same = expected.is_some_and(|e| {
        e.host() == url.host() && e.port_or_known_default() == url.port_or_known_default()
    });
    if !same || !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::new(
            shown,
            Reason::NotTheMetadataServer(server.into()),
        ));
    }
    Ok(())
}

/// Why an address is never called, if it is not. IPv4 addresses are also
/// recognized inside IPv4-mapped and NAT64 (`64:ff9b::/96`) IPv6 addresses.
pub fn forbidden_address(ip: IpAddr) -> Option<Reason> {
    if let IpAddr::V6(v6) = ip
        && v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        let [.., a, b, c, d] = v6.octets();
        return forbidden_address(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
    }
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_unspecified() => Some(Reason::Unspecified),
        IpAddr::V4(v4) if v4.is_link_local() => Some(Reason::LinkLocal),
        IpAddr::V4(v4) if METADATA_V4.contains(&v4) => Some(Reason::Metadata),
        IpAddr::V6(v6) if v6.is_unspecified() => Some(Reason::Unspecified),
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(Reason::LinkLocal),
        IpAddr::V6(v6) if METADATA_V6.contains(&v6) => Some(Reason::Metadata),
        _ => None,
    }
}

/// The first [`Refused`] in an error's chain of causes: how a refusal is told
/// apart from a network failure once an HTTP stack or SDK has wrapped it.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<Refused>())
}

fn forbidden_host(host: &Host<&str>) -> Option<Reason> {
    match host {
        Host::Domain(d) => METADATA_NAMES
            .contains(&normalized(d).as_str())
            .then_some(Reason::Metadata),
        Host::Ipv4(ip) => forbidden_address(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => forbidden_address(IpAddr::V6(*ip)),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => normalized(d) == "localhost",
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.to_canonical().is_loopback(),
    }
}

/// A DNS name as compared: lower case, without the root's trailing dot.
fn normalized(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The addresses of `host` fedsync may connect to: all but link-local and
/// metadata ones; refused when none is left.
fn admitted(host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
    let any = !found.is_empty();
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| forbidden_address(a.ip()).is_none())
        .collect();
    if any && allowed.is_empty() {
        return Err(Refused::new(host, Reason::ResolvesOnlyToForbidden));
    }
    Ok(allowed)
}

type Lookup = fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// The HTTP client's DNS resolver: the system's resolver, minus the addresses
/// the guard never calls.
#[derive(Clone, Copy)]
pub struct Resolver {
    lookup: Lookup,
}

impl Resolver {
    /// Resolves with the operating system (`getaddrinfo`), as reqwest does by default.
    pub fn system() -> Self {
        Resolver {
            lookup: |host| {
                Box::pin(async move {
                    tokio::net::lookup_host((host.as_str(), 0))
                        .await
                        .map(Iterator::collect)
                })
            },
        }
    }

    /// Resolves with `lookup` (tests: names that resolve to forbidden addresses).
    #[cfg(test)]
    pub fn with(lookup: Lookup) -> Self {
        Resolver { lookup }
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let lookup = (self.lookup)(host.clone());
        Box::pin(async move {
            let allowed = admitted(&host, lookup.await?)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(url: &str) -> Result<(), Reason> {
        check(&Url::parse(url).unwrap()).map_err(|r| r.reason)
    }

    #[test]
    fn https_anywhere_and_plain_http_only_to_loopback() {
        for ok in [
            "https://sts.amazonaws.com/",
            "https://vault.internal:8200/v1/",
            "https://10.0.0.5/",
            "http://127.0.0.1:8080/x",
            "http://127.0.0.2/",
            "http://localhost:5000/",
            "http://LOCALHOST./",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(verdict(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            verdict("http://issuer.example.com/jwks"),
            Err(Reason::PlainHttp)
        );
        assert_eq!(verdict("http://10.0.0.5/"), Err(Reason::PlainHttp));
        assert_eq!(
            verdict("ftp://example.com/"),
            Err(Reason::Scheme("ftp".into()))
        );
        assert_eq!(
            verdict("file:///etc/passwd"),
            Err(Reason::Scheme("file".into()))
        );
    }

    #[test]
    fn link_local_and_metadata_addresses_are_refused_in_every_spelling() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/",
            "https://169.254.170.2/v2/credentials",
            "http://2852039166/",
            "http://0xA9FEA9FE/",
            "http://0251.0376.0251.0376/",
            "https://[fe80::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert_eq!(verdict(url), Err(Reason::LinkLocal), "{url}");
        }
        for url in [
            "http://metadata.google.internal/computeMetadata/v1/",
            "https://METADATA.google.internal./",
            "https://100.100.100.200/latest/meta-data/",
            "https://[fd00:ec2::254]/",
        ] {
            assert_eq!(verdict(url), Err(Reason::Metadata), "{url}");
        }
        assert_eq!(verdict("https://0.0.0.0/"), Err(Reason::Unspecified));
        assert_eq!(verdict("https://[::]/"), Err(Reason::Unspecified));
    }

    #[test]
    fn refusals_name_the_host_and_the_reason() {
        let refused = check(&Url::parse("https://169.254.169.254/jwks").unwrap()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refused to call 169.254.169.254: link-local addresses are never called (cloud metadata services answer there)"
        );
    }

    #[test]
    fn only_the_configured_metadata_server_is_reached_as_one() {
        let url = |u: &str| Url::parse(u).unwrap();
        let token = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
        assert_eq!(
            check_metadata_request(&url(token), "metadata.google.internal"),
            Ok(())
        );
        assert_eq!(
            check_metadata_request(&url("http://169.254.169.254/x"), "169.254.169.254"),
            Ok(())
        );
        assert_eq!(
            check_metadata_request(&url("http://127.0.0.1:8080/x"), "127.0.0.1:8080"),
            Ok(())
        );
        // Another port, another host, or a server that is not a metadata server.
        assert!(check_metadata_request(&url("http://127.0.0.1:9090/x"), "127.0.0.1:8080").is_err());
        assert!(check_metadata_request(&url(token), "169.254.169.254").is_err());
        assert_eq!(
            check_metadata_request(&url("http://evil.example.com/x"), "evil.example.com")
                .map_err(|r| r.reason),
            Err(Reason::NotAMetadataServer)
        );
        for bad in [
            "evil.example.com",
            "10.0.0.1",
            "metadata.google.internal/x",
            "",
        ] {
            assert!(check_metadata_server(bad).is_err(), "{bad}");
        }
        for good in [
            "metadata.google.internal",
            "169.254.169.254",
            "localhost:8080",
            "[::1]:80",
        ] {
            assert_eq!(check_metadata_server(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn resolved_addresses_lose_forbidden_ones_and_none_left_is_a_refusal() {
        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        assert_eq!(
            admitted(
                "mixed.example.com",
                vec![addr("169.254.169.254"), addr("203.0.113.7")]
            ),
            Ok(vec![addr("203.0.113.7")])
        );
        assert_eq!(
            admitted(
                "rebind.example.com",
                vec![addr("169.254.169.254"), addr("fe80::1")]
            )
            .map_err(|r| r.reason),
            Err(Reason::ResolvesOnlyToForbidden)
        );
        assert_eq!(admitted("nothing.example.com", vec![]), Ok(vec![]));
    }

    #[tokio::test]
    async fn the_resolver_answers_loopback_names() {
        use reqwest::dns::Resolve;
        let name = "localhost".parse().unwrap();
        let found: Vec<SocketAddr> = Resolver::system().resolve(name).await.unwrap().collect();
        assert!(
            !found.is_empty() && found.iter().all(|a| a.ip().is_loopback()),
            "{found:?}"
        );
    }

    #[test]
    fn a_refusal_is_found_behind_wrapping_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Wrapper(#[source] Refused);
        let wrapped = Wrapper(Refused::new("h", Reason::LinkLocal));
        assert_eq!(refusal_in(&wrapped).map(|r| r.host.as_str()), Some("h"));
        assert!(refusal_in(&io::Error::other("down")).is_none());
    }
}
