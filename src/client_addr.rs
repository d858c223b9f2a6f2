//! Who the client is: the peer address, or, when the peer is a proxy named in
//! `TRUSTED_PROXIES`, the first untrusted address of `X-Forwarded-For`
//! counted from the right (each proxy appends the address it saw, so entries
//! left of the last trusted hop are whatever the client chose to send).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::HttpRequest;

/// An address with a prefix length: `10.0.0.0/8`, or one host (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// `address` or `address/prefix`; host bits past the prefix are ignored.
    pub fn parse(raw: &str) -> Option<Self> {
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let address: IpAddr = address.trim().parse().ok()?;
        let address = address.to_canonical();
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
        };
        Some(Self { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDR networks; empty trusts no one. The
    /// error says which entry is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNetwork::parse(entry).ok_or_else(|| {
                    format!("{entry:?} is not an IP address or a network like 10.0.0.0/8")
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` entries in the
    /// order they arrived. Walking from the right, trusted hops are skipped;
    /// the first untrusted address is the client. An entry that is not an
    /// address stops the walk at the last hop known (a trusted proxy wrote
    /// it, so nothing further left can be believed).
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in forwarded_for.rev() {
            let Some(hop) = parse_forwarded_address(entry) else {
                return client;
            };
            client = hop;
            if !self.contains(hop) {
                return hop;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port or brackets.
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<IpAddr>()
                .ok()
        })
        .map(|ip| ip.to_canonical())
}

/// The client address of a request, as [`TrustedProxies::client_address`]
/// decides it with the proxies registered in the app (none if absent).
pub fn client_address(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip());
    let Some(proxies) = req.app_data::<actix_web::web::Data<TrustedProxies>>() else {
        return peer.to_canonical();
    };
    if proxies.is_empty() {
        return peer.to_canonical();
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .collect();
    proxies.client_address(peer, entries.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(raw: &str) -> TrustedProxies {
        TrustedProxies::parse(raw).unwrap()
    }

    fn client(proxies: &TrustedProxies, peer: &str, forwarded_for: &str) -> IpAddr {
        proxies.client_address(ip(peer), forwarded_for.split(','))
    }

    #[test]
    fn networks_match_by_prefix_and_family() {
        let network = IpNetwork::parse("10.0.0.0/8").unwrap();
        assert!(network.contains(ip("10.255.1.2")));
        assert!(!network.contains(ip("11.0.0.1")));
        assert!(network.contains(ip("::ffff:10.1.1.1")));
        assert!(
            IpNetwork::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(!IpNetwork::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        let v6 = IpNetwork::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(
            IpNetwork::parse("127.0.0.1")
                .unwrap()
                .contains(ip("127.0.0.1"))
        );
        assert!(
            !IpNetwork::parse("127.0.0.1")
                .unwrap()
                .contains(ip("127.0.0.2"))
        );
    }

    #[test]
    fn bad_entries_are_named_in_the_error() {
        for bad in ["10.0.0.0/33", "proxy.example.com", "10.0.0.1/x", "::/129"] {
            let error = TrustedProxies::parse(bad).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::default();
        assert_eq!(client(&none, "127.0.0.1", "203.0.113.9"), ip("127.0.0.1"));
        let other = proxies("10.0.0.1");
        assert_eq!(client(&other, "127.0.0.1", "203.0.113.9"), ip("127.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_address_from_the_right_is_the_client() {
        let trusted = proxies("127.0.0.1, 10.0.0.0/8");
        // The client's own entries (left) are not believed.
        assert_eq!(
            client(&trusted, "127.0.0.1", "1.1.1.1, 198.51.100.7"),
            ip("198.51.100.7")
        );
        assert_eq!(
            client(&trusted, "127.0.0.1", "198.51.100.7, 10.1.2.3"),
            ip("198.51.100.7")
        );
        assert_eq!(
            client(&trusted, "127.0.0.1", "198.51.100.7:4711"),
            ip("198.51.100.7")
        );
        assert_eq!(
            client(&trusted, "127.0.0.1", "[2001:db8::1]"),
            ip("2001:db8::1")
        );
        // Every hop trusted: the farthest one known.
        assert_eq!(client(&trusted, "127.0.0.1", "10.0.0.5"), ip("10.0.0.5"));
        // Garbage stops the walk at the last hop a trusted proxy named.
        assert_eq!(
            client(&trusted, "127.0.0.1", "198.51.100.7, unknown, 10.0.0.9"),
            ip("10.0.0.9")
        );
        assert_eq!(client(&trusted, "127.0.0.1", ""), ip("127.0.0.1"));
    }
}
