//! Portals: `HOST`, `HOST:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6 address
//! (RFC 7143 §13.8 TargetAddress syntax, RFC 2732 brackets), default port 3260.
//!
//! A bare IPv6 address never carries a port: `fe80::1:3260` is an address, so a
//! port needs brackets. This is what every iSCSI tool does and the error says so.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The IANA iSCSI port (RFC 7143 §13.8).
pub const DEFAULT_PORT: u16 = 3260;

/// The host part of a portal; names are resolved at connect time, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::V4(a) => a.fmt(f),
            Host::V6(a) => a.fmt(f),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A host and a port: where to open the TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    pub host: Host,
    pub port: u16,
}

impl Portal {
    /// Parses `HOST[:PORT]`, `[IPv6][:PORT]` or a bare IPv6 address.
    pub fn parse(s: &str) -> Result<Portal, PortalError> {
        let (host, port) = parse_host_port(s)?;
        Ok(Portal {
            host,
            port: port.unwrap_or(DEFAULT_PORT),
        })
    }
}

impl FromStr for Portal {
    type Err = PortalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Portal::parse(s)
    }
}

/// `host:port`, with IPv6 in brackets so the output parses back.
impl fmt::Display for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::V6(a) => write!(f, "[{a}]:{}", self.port),
            h => write!(f, "{h}:{}", self.port),
        }
    }
}

/// A config-file TargetAddress: `host[:port][,portal-group-tag]` (iscontrol form).
/// The port stays optional so a `port =` setting can fill it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAddress {
    pub host: Host,
    pub port: Option<u16>,
    pub portal_group_tag: Option<u16>,
}

impl TargetAddress {
    /// Parses `host[:port][,tag]`.
    pub fn parse(s: &str) -> Result<TargetAddress, PortalError> {
        let (addr, tag) = match s.split_once(',') {
            Some((a, t)) => {
                let tag = parse_number(t).ok_or_else(|| PortalError {
                    input: s.to_owned(),
                    reason: format!("portal group tag {t:?} is not a number 0..65535"),
                })?;
                (a, Some(tag))
            }
            None => (s, None),
        };
        let (host, port) = parse_host_port(addr).map_err(|e| PortalError {
            input: s.to_owned(),
            reason: e.reason,
        })?;
        Ok(TargetAddress {
            host,
            port,
            portal_group_tag: tag,
        })
    }
}

/// Why a portal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid portal {input:?}: {reason}")]
pub struct PortalError {
    pub input: String,
    pub reason: String,
}

/// Splits a portal into host and optional port, validating both.
pub fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), PortalError> {
    let err = |reason: String| PortalError {
        input: s.to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(err("the portal is empty".into()));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("it contains whitespace".into()));
    }
    if let Some(bracketed) = s.strip_prefix('[') {
        let Some((addr, rest)) = bracketed.split_once(']') else {
            return Err(err("missing ']' after the IPv6 address".into()));
        };
        let addr = parse_v6(addr).map_err(err)?;
        let port = match rest {
            "" => None,
            _ => match rest.strip_prefix(':') {
                Some(p) => Some(parse_port(p).map_err(err)?),
                None => {
                    return Err(err(format!(
                        "unexpected {rest:?} after ']' (expected :PORT)"
                    )))
                }
            },
        };
        return Ok((Host::V6(addr), port));
    }
    if s.matches(':').count() >= 2 {
        // Only an IPv6 address has two colons; it cannot carry a port unbracketed.
        return match s.parse::<Ipv6Addr>() {
            Ok(a) => Ok((Host::V6(a), None)),
            Err(_) if s.contains('%') => Err(err(
                "IPv6 zone ids (%iface) are not supported; use a global address".into(),
            )),
            Err(_) => Err(err(
                "this is neither HOST:PORT nor an IPv6 address (write IPv6 with a port as \
                 [ADDR]:PORT)"
                    .into(),
            )),
        };
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(parse_port(p).map_err(err)?)),
        None => (s, None),
    };
    Ok((parse_host(host).map_err(err)?, port))
}

fn parse_v6(addr: &str) -> Result<Ipv6Addr, String> {
    if addr.contains('%') {
        return Err("IPv6 zone ids (%iface) are not supported; use a global address".into());
    }
    addr.parse()
        .map_err(|_| format!("{addr:?} is not a valid IPv6 address"))
}

fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err("the port after ':' is missing".into());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {p:?} is not a number"));
    }
    // All digits, so a parse failure can only be overflow.
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {p} is out of range 1..65535")),
        Ok(n) => Ok(n),
    }
}

/// Decimal digits only: `str::parse` would also take a leading '+'.
fn parse_number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An IPv4 address or a DNS name (RFC 1123 labels; '_' tolerated as resolvers do).
fn parse_host(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("the host before ':' is missing".into());
    }
    if let Ok(a) = h.parse::<Ipv4Addr>() {
        return Ok(Host::V4(a));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{h:?} is not a valid IPv4 address"));
    }
    if h.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in name.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "{h:?} is not a valid host name (labels of 1-63 letters, digits and '-', \
                 separated by dots)"
            ));
        }
    }
    Ok(Host::Name(h.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (Host, u16) {
        let p = Portal::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (p.host, p.port)
    }

    fn reason(s: &str) -> String {
        Portal::parse(s)
            .map(|p| panic!("{s:?} should fail, got {p}"))
            .unwrap_err()
            .reason
    }

    #[test]
    fn accepted_forms() {
        let v4 = Host::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ok("192.0.2.1"), (v4.clone(), 3260));
        assert_eq!(ok("192.0.2.1:3261"), (v4, 3261));
        let name = |n: &str| Host::Name(n.to_owned());
        assert_eq!(ok("iscsi1"), (name("iscsi1"), 3260));
        assert_eq!(
            ok("san-01.example.com:860"),
            (name("san-01.example.com"), 860)
        );
        assert_eq!(ok("example.com."), (name("example.com."), 3260));
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ok("2001:db8::1"), (Host::V6(v6), 3260));
        assert_eq!(ok("[2001:db8::1]"), (Host::V6(v6), 3260));
        assert_eq!(ok("[2001:db8::1]:3261"), (Host::V6(v6), 3261));
        assert_eq!(ok("::1"), (Host::V6(Ipv6Addr::LOCALHOST), 3260));
        assert_eq!(ok("[::1]:65535"), (Host::V6(Ipv6Addr::LOCALHOST), 65535));
        // Ambiguous-looking but an address: the last group is not a port.
        let a: Ipv6Addr = "fe80::1:3260".parse().unwrap();
        assert_eq!(ok("fe80::1:3260"), (Host::V6(a), 3260));
    }

    #[test]
    fn display_round_trips() {
        for s in ["192.0.2.1:3260", "[2001:db8::1]:3261", "iscsi1:3333"] {
            let p = Portal::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(Portal::parse(&p.to_string()).unwrap(), p);
        }
        assert_eq!(Portal::parse("::1").unwrap().to_string(), "[::1]:3260");
    }

    #[test]
    fn rejected_forms() {
        assert!(reason("").contains("empty"));
        assert!(reason("host:").contains("port after ':' is missing"));
        assert!(reason(":3260").contains("host before ':' is missing"));
        assert!(reason("host:0").contains("out of range"));
        assert!(reason("host:65536").contains("out of range"));
        assert!(reason("host:+80").contains("not a number"));
        assert!(reason("host:abc").contains("not a number"));
        assert!(reason("[2001:db8::1").contains("missing ']'"));
        assert!(reason("[2001:db8::1]3260").contains("after ']'"));
        assert!(reason("[2001:db8::1]:").contains("port after ':' is missing"));
        assert!(reason("[192.0.2.1]:3260").contains("not a valid IPv6"));
        assert!(reason("[fe80::1%eth0]:3260").contains("zone"));
        assert!(reason("fe80::1%eth0").contains("zone"));
        assert!(reason("2001:db8::zz:3260").contains("[ADDR]:PORT"));
        assert!(reason("192.0.2.256").contains("not a valid IPv4"));
        assert!(reason("10.0.0").contains("not a valid IPv4"));
        assert!(reason("bad host").contains("whitespace"));
        assert!(reason("-bad.example").contains("not a valid host name"));
        assert!(reason("a..b").contains("not a valid host name"));
        assert!(reason("a/b").contains("not a valid host name"));
        let long = format!("{}.com", "a".repeat(64));
        assert!(reason(&long).contains("not a valid host name"));
    }

    #[test]
    fn error_message_shape() {
        let e = Portal::parse("host:0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid portal \"host:0\": port 0 is out of range 1..65535"
        );
    }

    #[test]
    fn target_address_with_tag() {
        let t = TargetAddress::parse("iscsi1").unwrap();
        assert_eq!((t.port, t.portal_group_tag), (None, None));
        let t = TargetAddress::parse("[2001:db8::1]:3261,2").unwrap();
        assert_eq!((t.port, t.portal_group_tag), (Some(3261), Some(2)));
        let t = TargetAddress::parse("10.0.0.1,1").unwrap();
        assert_eq!((t.port, t.portal_group_tag), (None, Some(1)));
        let e = TargetAddress::parse("10.0.0.1,x").unwrap_err();
        assert!(e.reason.contains("portal group tag"), "{e}");
        let e = TargetAddress::parse("10.0.0.1:0,1").unwrap_err();
        assert_eq!(e.input, "10.0.0.1:0,1");
    }
}
