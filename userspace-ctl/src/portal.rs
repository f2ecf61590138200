//! Portals: `HOST`, `HOST:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6 address
//! (RFC 7143 §13.8 TargetAddress syntax, RFC 2732 brackets), default port 3260.
//!
//! A bare IPv6 address never carries a port: `fe80::1:3260` is an address, so a
//! port needs brackets. This is what every iSCSI tool does and the error says so.
//!
//! An IPv6 address may carry a zone (RFC 4007 §11: `fe80::1%eth0`, or a numeric
//! interface index `fe80::1%2`): a link-local address means nothing without the
//! link, so one without a zone is refused with a message saying how to add it.
//! The zone stays a name here; it becomes a scope id (`if_nametoindex`) only at
//! connect time, in the network namespace the connection is made in.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The IANA iSCSI port (RFC 7143 §13.8).
pub const DEFAULT_PORT: u16 = 3260;

/// The host part of a portal; names are resolved at connect time, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    V4(Ipv4Addr),
    /// An IPv6 address and its zone (interface name or index), if any.
    V6(Ipv6Addr, Option<Zone>),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::V4(a) => a.fmt(f),
            Host::V6(a, None) => a.fmt(f),
            Host::V6(a, Some(z)) => write!(f, "{a}%{z}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// An IPv6 zone: an interface name (as `ip link` shows it) or a decimal
/// interface index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone(String);

/// IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;

impl Zone {
    /// Checks the interface-name rules of Linux (`dev_valid_name`): 1-15 bytes,
    /// no '/', ':' or whitespace, not "." or "..". Brackets, '%' and ',' are
    /// refused too, as they would not survive a portal string.
    pub fn parse(s: &str) -> Result<Zone, String> {
        if s.is_empty() {
            return Err("the zone after '%' is empty (write %IFACE, e.g. %eth0)".into());
        }
        if s.len() > MAX_IFNAME {
            return Err(format!(
                "zone {s:?} is longer than an interface name ({MAX_IFNAME} bytes)"
            ));
        }
        let bad = |c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '/' | ':' | '%' | '[' | ']' | ',')
        };
        if s.chars().any(bad) || s == "." || s == ".." {
            return Err(format!("zone {s:?} is not a valid interface name"));
        }
        Ok(Zone(s.to_owned()))
    }

    /// The zone as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A numeric zone: the interface index itself.
    pub fn index(&self) -> Option<u32> {
        if self.0.bytes().all(|b| b.is_ascii_digit()) {
            self.0.parse().ok()
        } else {
            None
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// fe80::/10: only meaningful together with an interface.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
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
            h @ Host::V6(..) => write!(f, "[{h}]:{}", self.port),
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

/// Login's `-p`: a portal, optionally with the `,TAG` that `discover` prints
/// after it (the TargetPortalGroupTag the login must then reach).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedPortal {
    pub portal: Portal,
    pub tag: Option<u16>,
}

impl TaggedPortal {
    /// Parses `HOST[:PORT][,TAG]`.
    pub fn parse(s: &str) -> Result<TaggedPortal, PortalError> {
        let t = TargetAddress::parse(s)?;
        Ok(TaggedPortal {
            portal: Portal {
                host: t.host,
                port: t.port.unwrap_or(DEFAULT_PORT),
            },
            tag: t.portal_group_tag,
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
        let (addr, zone) = parse_v6(addr).map_err(err)?;
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
        return Ok((Host::V6(addr, zone), port));
    }
    if s.matches(':').count() >= 2 {
        // Only an IPv6 address has two colons; it cannot carry a port unbracketed.
        let (addr, _) = s.split_once('%').unwrap_or((s, ""));
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(err(
                "this is neither HOST:PORT nor an IPv6 address (write IPv6 with a port as \
                 [ADDR]:PORT)"
                    .into(),
            ));
        }
        let (addr, zone) = parse_v6(s).map_err(err)?;
        return Ok((Host::V6(addr, zone), None));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(parse_port(p).map_err(err)?)),
        None => (s, None),
    };
    Ok((parse_host(host).map_err(err)?, port))
}

/// `ADDR` or `ADDR%ZONE`; a link-local address needs its zone.
fn parse_v6(s: &str) -> Result<(Ipv6Addr, Option<Zone>), String> {
    let (addr, zone) = match s.split_once('%') {
        Some((a, z)) => (a, Some(Zone::parse(z)?)),
        None => (s, None),
    };
    let a: Ipv6Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not a valid IPv6 address"))?;
    if zone.is_none() && is_link_local(&a) {
        return Err(format!(
            "{a} is link-local: name the interface it is reached on, e.g. [{a}%eth0]"
        ));
    }
    Ok((a, zone))
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
        assert_eq!(ok("2001:db8::1"), (Host::V6(v6, None), 3260));
        assert_eq!(ok("[2001:db8::1]"), (Host::V6(v6, None), 3260));
        assert_eq!(ok("[2001:db8::1]:3261"), (Host::V6(v6, None), 3261));
        assert_eq!(ok("::1"), (Host::V6(Ipv6Addr::LOCALHOST, None), 3260));
        assert_eq!(
            ok("[::1]:65535"),
            (Host::V6(Ipv6Addr::LOCALHOST, None), 65535)
        );
        // Ambiguous-looking but an address: the last group is not a port.
        let a: Ipv6Addr = "2001:db8::1:3260".parse().unwrap();
        assert_eq!(ok("2001:db8::1:3260"), (Host::V6(a, None), 3260));
    }

    #[test]
    fn zones() {
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let eth0 = Some(Zone::parse("eth0").unwrap());
        assert_eq!(
            ok("[fe80::1%eth0]:3260"),
            (Host::V6(ll, eth0.clone()), 3260)
        );
        assert_eq!(ok("[fe80::1%eth0]"), (Host::V6(ll, eth0.clone()), 3260));
        assert_eq!(ok("fe80::1%eth0"), (Host::V6(ll, eth0), 3260));
        let (h, _) = ok("[fe80::1%2]:3261");
        let Host::V6(_, Some(z)) = &h else { panic!() };
        assert_eq!(z.index(), Some(2));
        assert_eq!(Zone::parse("eth0").unwrap().index(), None);
        // A zone on a global address is allowed (Linux ignores it there).
        assert!(matches!(ok("[2001:db8::1%lo]").0, Host::V6(_, Some(_))));
        assert!(reason("[fe80::1]:3260").contains("link-local"));
        assert!(reason("fe80::1").contains("e.g. [fe80::1%eth0]"));
        assert!(reason("[fe80::1%]:3260").contains("zone after '%' is empty"));
        assert!(reason("[fe80::1%a/b]:3260").contains("not a valid interface name"));
        assert!(reason("[fe80::1%abcdefghijklmnop]").contains("longer than"));
        assert!(reason("[zz%eth0]").contains("not a valid IPv6"));
        let p = Portal::parse("[fe80::1%eth0]:3261").unwrap();
        assert_eq!(p.to_string(), "[fe80::1%eth0]:3261");
        assert_eq!(Portal::parse(&p.to_string()).unwrap(), p);
        let t = TargetAddress::parse("[fe80::1%eth0]:3261,3").unwrap();
        assert_eq!((t.port, t.portal_group_tag), (Some(3261), Some(3)));
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
