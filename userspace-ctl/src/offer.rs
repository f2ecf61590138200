//! Translates a planned [`LoginRequest`] into iscsi-proto's types: the
//! [`Proposal`] (names, digests, `--param` values) and the [`ChapConfig`]. Only
//! wishes are set here; ranges, cross-key rules and the negotiation itself stay
//! in iscsi-proto (`Login::new` refuses an invalid proposal).

use iscsi_proto::chap::{self, ChapAlgorithm, ChapConfig};
use iscsi_proto::negotiate::{DigestOffer, Key, Proposal};
use iscsi_proto::text;

use crate::exit::Error;
use crate::params::{ChapAlg, ChapAlgs, Digest, Param, SessionType};
use crate::plan::{ChapCredentials, LoginRequest};

/// MaxRecvDataSegmentLength we declare for normal sessions (`--param` overrides).
pub const NORMAL_MAX_RECV_DATA_SEGMENT_LEN: u32 = 262_144;

/// The Proposal for `r`. Digests asked for are required (a target that will not
/// digest fails the login rather than silently running without).
pub fn proposal(r: &LoginRequest) -> Result<Proposal<'_>, Error> {
    let initiator = r.initiator_name.as_str();
    let mut p = match (r.session_type, &r.target_name) {
        (SessionType::Normal, Some(t)) => Proposal::normal(initiator, t.as_str()),
        (SessionType::Normal, None) => {
            return Err(Error::Usage(
                "a Normal session needs a target name (TargetName or -t)".into(),
            ))
        }
        (SessionType::Discovery, _) => Proposal::discovery(initiator),
    };
    if r.session_type == SessionType::Normal {
        // What the kernel receives per Data-In: open-iscsi's default, far above the
        // RFC's 8192, so reads of 256 KiB need one PDU instead of 32.
        p.max_recv_data_segment_len = NORMAL_MAX_RECV_DATA_SEGMENT_LEN;
    }
    p.header_digest = digest_offer(r.header_digest);
    p.data_digest = digest_offer(r.data_digest);
    // More than one connection (asked for, or the default of one per CPU)
    // needs the target to agree to as many; one offers nothing new, as before
    // MC/S. A `--param MaxConnections` (applied below) wins.
    let n = r.connections.count();
    if n > 1 {
        p.max_connections = n;
    }
    for param in &r.params {
        apply_param(&mut p, param)?;
    }
    Ok(p)
}

fn digest_offer(d: Digest) -> DigestOffer {
    match d {
        Digest::None => DigestOffer::None,
        Digest::Crc32c => DigestOffer::Crc32c,
    }
}

/// Sets the Proposal field behind `--param Key=Value`. The value is parsed with
/// iscsi-proto's text rules (decimal, 0x hex; Yes/No); its range is checked when
/// the login starts.
pub fn apply_param<'a>(p: &mut Proposal<'a>, param: &'a Param) -> Result<(), Error> {
    let bad = |why: String| Error::Usage(format!("--param {param}: {why}"));
    let number = |max: u64| -> Result<u64, Error> {
        let v = text::parse_number(&param.value).map_err(|e| bad(e.to_string()))?;
        if v > max {
            return Err(bad(format!("{v} is out of range (max {max})")));
        }
        Ok(v)
    };
    let boolean = || text::parse_bool(&param.value).map_err(|_| bad("expected Yes or No".into()));
    // The bounds here only make the narrowing safe; iscsi-proto checks the RFC range.
    let u16v = || number(u16::MAX.into()).map(|v| u16::try_from(v).unwrap_or(u16::MAX));
    let u32v = || number(u32::MAX.into()).map(|v| u32::try_from(v).unwrap_or(u32::MAX));
    let u8v = || number(u8::MAX.into()).map(|v| u8::try_from(v).unwrap_or(u8::MAX));
    if param.key == "InitiatorAlias" {
        p.initiator_alias = Some(param.value.as_str());
        return Ok(());
    }
    let Some(key) = Key::from_name(&param.key) else {
        return Err(bad(format!(
            "unknown key {:?} (keys are case-sensitive, e.g. MaxBurstLength)",
            param.key
        )));
    };
    match key {
        Key::MaxConnections => p.max_connections = u16v()?,
        Key::InitialR2T => p.initial_r2t = boolean()?,
        Key::ImmediateData => p.immediate_data = boolean()?,
        Key::MaxRecvDataSegmentLength => p.max_recv_data_segment_len = u32v()?,
        Key::MaxBurstLength => p.max_burst_len = u32v()?,
        Key::FirstBurstLength => p.first_burst_len = u32v()?,
        Key::DefaultTime2Wait => p.default_time2wait = u16v()?,
        Key::DefaultTime2Retain => p.default_time2retain = u16v()?,
        Key::MaxOutstandingR2T => p.max_outstanding_r2t = u16v()?,
        Key::DataPduInOrder => p.data_pdu_in_order = boolean()?,
        Key::DataSequenceInOrder => p.data_sequence_in_order = boolean()?,
        Key::ErrorRecoveryLevel => p.error_recovery_level = u8v()?,
        Key::ProtocolLevel => p.protocol_level = u8v()?,
        other => return Err(bad(format!("{other} cannot be proposed by the initiator"))),
    }
    Ok(())
}

/// The CHAP_A offer in iscsi-proto's terms, order kept.
pub fn algorithms(algs: &ChapAlgs) -> Vec<ChapAlgorithm> {
    algs.0
        .iter()
        .map(|a| match a {
            ChapAlg::Md5 => ChapAlgorithm::Md5,
            ChapAlg::Sha1 => ChapAlgorithm::Sha1,
            ChapAlg::Sha256 => ChapAlgorithm::Sha256,
            ChapAlg::Sha3_256 => ChapAlgorithm::Sha3_256,
        })
        .collect()
}

/// The user-facing name of an algorithm, as `--chap-algs` spells it.
pub fn algorithm_name(a: ChapAlgorithm) -> &'static str {
    match a {
        ChapAlgorithm::Md5 => "md5",
        ChapAlgorithm::Sha1 => "sha1",
        ChapAlgorithm::Sha256 => "sha256",
        ChapAlgorithm::Sha3_256 => "sha3-256",
    }
}

/// The ChapConfig for `c`, offering `algorithms` (kept by the caller).
pub fn chap_config<'a>(c: &'a ChapCredentials, algorithms: &'a [ChapAlgorithm]) -> ChapConfig<'a> {
    ChapConfig {
        name: &c.name,
        secret: c.secret.expose(),
        algorithms,
        mutual: c.mutual.as_ref().map(|m| chap::MutualChap {
            target_name: Some(m.name.as_str()),
            target_secret: m.secret.expose(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Connections;
    use iscsi_proto::negotiate::SessionParams;

    fn param(s: &str) -> Param {
        Param::parse(s).unwrap()
    }

    #[test]
    fn params_land_in_their_fields() {
        let (a, b, c, d) = (
            param("MaxRecvDataSegmentLength=0x40000"),
            param("ImmediateData=No"),
            param("ErrorRecoveryLevel=1"),
            param("InitiatorAlias=box"),
        );
        let mut p = Proposal::normal("iqn.2001-04.com.example:i", "iqn.2001-04.com.example:t");
        for x in [&a, &b, &c, &d] {
            apply_param(&mut p, x).unwrap();
        }
        assert_eq!(p.max_recv_data_segment_len, 262_144);
        assert!(!p.immediate_data);
        assert_eq!(p.error_recovery_level, 1);
        assert_eq!(p.initiator_alias, Some("box"));
        assert_eq!(p.max_burst_len, SessionParams::DEFAULT.max_burst_len);
    }

    #[test]
    fn connections_offer_max_connections_unless_a_param_says() {
        let text = b"RecipeVersion=1\0TargetName=iqn.2001-04.com.example:t\0\
InitiatorName=iqn.2001-04.com.example:i\0Portal=127.0.0.1:3260\0AuthMethod=None\0\
HeaderDigest=None\0DataDigest=None\0ConnectTimeout=5\0LoginTimeout=5\0";
        let rc = crate::recipe::Recipe::decode(text).unwrap();
        let mut r = rc.request(rc.portal.clone(), None);
        // A recipe without Connections: one, offered as before MC/S.
        assert_eq!(r.connections, Connections::Asked(1));
        assert_eq!(proposal(&r).unwrap().max_connections, 1);
        r.connections = Connections::Asked(4);
        assert_eq!(proposal(&r).unwrap().max_connections, 4);
        // The default (one per CPU) is offered like a count asked for.
        r.connections = Connections::Default(2);
        assert_eq!(proposal(&r).unwrap().max_connections, 2);
        r.connections = Connections::Default(1);
        assert_eq!(proposal(&r).unwrap().max_connections, 1);
        r.connections = Connections::Asked(4);
        r.params = vec![param("MaxConnections=2")];
        assert_eq!(proposal(&r).unwrap().max_connections, 2);
        r.connections = Connections::Default(16);
        assert_eq!(proposal(&r).unwrap().max_connections, 2);
        r.params = vec![param("MaxConnections=1")];
        assert_eq!(proposal(&r).unwrap().max_connections, 1);
    }

    #[test]
    fn bad_params_are_usage_errors() {
        for (s, why) in [
            ("ImmediateData=yes", "expected Yes or No"),
            ("MaxBurstLength=lots", "--param MaxBurstLength=lots"),
            ("MaxConnections=70000", "out of range"),
            ("maxburstlength=4096", "case-sensitive"),
            ("IFMarker=No", "cannot be proposed"),
        ] {
            let x = param(s);
            let mut p = Proposal::discovery("iqn.2001-04.com.example:i");
            let e = apply_param(&mut p, &x).unwrap_err();
            assert_eq!(e.exit_code(), crate::exit::USAGE);
            assert!(e.to_string().contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn algorithm_order_is_kept() {
        let algs = ChapAlgs::parse("md5,sha256").unwrap();
        assert_eq!(
            algorithms(&algs),
            [ChapAlgorithm::Md5, ChapAlgorithm::Sha256]
        );
        assert_eq!(algorithm_name(ChapAlgorithm::Sha3_256), "sha3-256");
    }
}
