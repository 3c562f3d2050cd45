//! The outbound allow-list, `GATEHOUSE_OUTBOUND_ALLOW`: which addresses the host may call
//! when it reaches an environment's or a webhook's URL. Unset, every address may be called.
//!
//! Set, it is a comma-separated list of entries:
//! - a CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare IP address (a /32 or /128) allows every
//!   address inside it;
//! - a host name (`envs.example.com`) allows that exact name, compared without case,
//!   whatever it resolves to. Wildcards such as `*.example.com` are not supported: list
//!   each name.
//!
//! The check is made at connect time, on the address actually connected to: a name that is
//! not listed is resolved here and only its allowed addresses are tried, so a name that
//! resolves to a forbidden address is refused (no DNS rebinding around the list). IP
//! literals, which reqwest never resolves, are checked before each request and each
//! redirect hop. A restricted client ignores `HTTP(S)_PROXY`, since a proxy would connect
//! on our behalf to addresses we never see.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{RequestBuilder, Response, Url};

/// The variable the list is read from.
pub const OUTBOUND_ALLOW_VAR: &str = "GATEHOUSE_OUTBOUND_ALLOW";

/// The parsed allow-list; the default allows everything.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// `None` when unrestricted.
    entries: Option<Arc<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    nets: Vec<IpNet>,
    /// Lower case, without a trailing dot.
    names: Vec<String>,
}

/// An entry of the variable that is neither a CIDR, an IP address nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error(
        "{OUTBOUND_ALLOW_VAR}: {entry:?} is not a CIDR (10.0.0.0/8), an IP address or a host \
         name: {why}"
    )]
    Entry { entry: String, why: &'static str },
    #[error(
        "{OUTBOUND_ALLOW_VAR} has no entries: list CIDRs and host names separated by commas, or \
         unset it to allow every address"
    )]
    Empty,
}

/// A connection the allow-list forbade; its text says which address or name, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by {OUTBOUND_ALLOW_VAR}: {0}")]
pub struct OutboundRefused(String);

/// Why a request got no answer: the allow-list refused it, or it failed on the way.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Refused(OutboundRefused),
    #[error(transparent)]
    Failed(reqwest::Error),
}

impl FromStr for AllowList {
    type Err = AllowListError;

    /// Blank means unrestricted; blank entries between commas are skipped.
    fn from_str(value: &str) -> Result<AllowList, AllowListError> {
        if value.trim().is_empty() {
            return Ok(AllowList::default());
        }
        let mut entries = Entries::default();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why| AllowListError::Entry {
                entry: entry.to_owned(),
                why,
            };
            if entry.contains("://") {
                return Err(bad(WITHOUT_SCHEME_OR_PORT));
            } else if entry.contains('/') {
                let net = IpNet::from_str(entry)
                    .map_err(|_| bad("a CIDR is an address, a slash and a prefix length"))?;
                entries.nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                entries.nets.push(IpNet::from(ip.to_canonical()));
            } else {
                entries.names.push(host_name(entry).map_err(bad)?);
            }
        }
        if entries.nets.is_empty() && entries.names.is_empty() {
            return Err(AllowListError::Empty);
        }
        Ok(AllowList {
            entries: Some(Arc::new(entries)),
        })
    }
}

const WITHOUT_SCHEME_OR_PORT: &str = "give a bare host name or address, without a scheme or a port";

/// A host-name entry, lower case and without its trailing dot, or why it is not one.
fn host_name(entry: &str) -> Result<String, &'static str> {
    if entry.contains('*') {
        return Err("wildcards are not supported; list each host name");
    }
    if entry.contains(':') {
        return Err(WITHOUT_SCHEME_OR_PORT);
    }
    let name = entry
        .strip_suffix('.')
        .unwrap_or(entry)
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(
            "a host name is ASCII letters, digits, `-` and `_` in dot-separated labels \
                    (an international name in its xn-- form)",
        );
    }
    // URLs read a host whose last label is a number as an IPv4 address, never as this name.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("it looks like an incomplete IPv4 address");
    }
    Ok(name)
}

impl Entries {
    fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl AllowList {
    /// Whether the list restricts anything (the variable was set).
    pub fn is_restricted(&self) -> bool {
        self.entries.is_some()
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.entries.as_ref().is_none_or(|e| e.allows_ip(ip))
    }

    /// Whether `name` is listed, so that every address it resolves to is allowed.
    pub fn allows_name(&self, name: &str) -> bool {
        self.entries.as_ref().is_none_or(|e| e.allows_name(name))
    }

    /// Refuses a URL whose host is an IP literal outside the list. Names are checked when
    /// they resolve, by the client of [`AllowList::client_builder`].
    pub fn check_url(&self, url: &Url) -> Result<(), OutboundRefused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        if self.allows_ip(ip) {
            Ok(())
        } else {
            Err(OutboundRefused(format!("{ip} is not in the allowed list")))
        }
    }

    /// A client builder that connects only where the list allows: it resolves names
    /// itself, checks each redirect hop (following up to 10, as reqwest does) and uses no
    /// proxy. A caller may replace its redirect policy only with `Policy::none()`.
    /// Unrestricted, it is reqwest's own builder.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        let Some(entries) = &self.entries else {
            return builder;
        };
        let hops = self.clone();
        let follow = reqwest::redirect::Policy::default();
        builder
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(entries.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| match hops
                .check_url(attempt.url())
            {
                Ok(()) => follow.redirect(attempt),
                Err(refused) => attempt.error(refused),
            }))
    }

    /// Sends `request`, built from a client of [`AllowList::client_builder`], after checking
    /// its URL; a refusal met while connecting or redirecting comes back as
    /// [`SendError::Refused`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, SendError> {
        let (client, request) = request.build_split();
        let request = request.map_err(SendError::Failed)?;
        self.check_url(request.url()).map_err(SendError::Refused)?;
        client.execute(request).await.map_err(|error| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(inner) = cause {
                if let Some(refused) = inner.downcast_ref::<OutboundRefused>() {
                    return SendError::Refused(refused.clone());
                }
                cause = inner.source();
            }
            SendError::Failed(error)
        })
    }
}

/// Resolves a name and keeps only the addresses the list allows (all of them for a listed
/// name); a name left with none is refused.
struct CheckedResolver(Arc<Entries>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let entries = self.0.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if entries.allows_name(&name) {
                return Ok(Box::new(resolved.into_iter()) as Addrs);
            }
            let (allowed, refused): (Vec<_>, Vec<_>) = resolved
                .into_iter()
                .partition(|addr| entries.allows_ip(addr.ip()));
            if allowed.is_empty() && !refused.is_empty() {
                let ips: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                let refusal = OutboundRefused(format!(
                    "{name} resolves to {}, not in the allowed list",
                    ips.join(", ")
                ));
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
