//! What iscsictl prints on success: the negotiated parameters of a login (one
//! `Key = value` per line, RFC key names, so scripts can grep them) and the
//! targets a discovery found, as text or JSON.

use iscsi_proto::discovery;
use iscsi_proto::login::LoginOutcome;
use iscsi_proto::negotiate::{AuthMethod, Digest};
use serde_json::json;

use crate::offer::algorithm_name;

/// The negotiated parameters of `o`, in RFC 7143 §13 order after the identity.
pub fn negotiated(o: &LoginOutcome, target: Option<&str>, portal: &str) -> Vec<(String, String)> {
    let p = &o.params;
    let mut v: Vec<(&str, String)> = Vec::new();
    if let Some(t) = target {
        v.push(("TargetName", t.to_owned()));
    }
    if let Some(a) = &o.target_alias {
        v.push(("TargetAlias", a.as_str().to_owned()));
    }
    v.push(("Portal", portal.to_owned()));
    if let Some(tag) = o.target_portal_group_tag {
        v.push(("TargetPortalGroupTag", tag.to_string()));
    }
    v.push(("SessionType", p.session_type.as_str().to_owned()));
    v.push(("ISID", o.isid.iter().map(|b| format!("{b:02x}")).collect()));
    v.push(("TSIH", format!("{:#06x}", o.tsih)));
    v.push((
        "AuthMethod",
        match p.auth_method {
            AuthMethod::None => "None",
            AuthMethod::Chap => "CHAP",
        }
        .to_owned(),
    ));
    if let Some(a) = o.chap_algorithm {
        v.push(("CHAP_A", format!("{} ({})", a.code(), algorithm_name(a))));
    }
    v.push(("HeaderDigest", digest(p.header_digest)));
    v.push(("DataDigest", digest(p.data_digest)));
    v.push(("MaxConnections", p.max_connections.to_string()));
    v.push(("InitialR2T", yes_no(p.initial_r2t)));
    v.push(("ImmediateData", yes_no(p.immediate_data)));
    v.push((
        "MaxRecvDataSegmentLength",
        p.max_recv_data_segment_len.to_string(),
    ));
    // The target's declaration for the other direction; open-iscsi's name for it.
    v.push((
        "MaxXmitDataSegmentLength",
        p.max_xmit_data_segment_len.to_string(),
    ));
    v.push(("MaxBurstLength", p.max_burst_len.to_string()));
    v.push(("FirstBurstLength", p.first_burst_len.to_string()));
    v.push(("DefaultTime2Wait", p.default_time2wait.to_string()));
    v.push(("DefaultTime2Retain", p.default_time2retain.to_string()));
    v.push(("MaxOutstandingR2T", p.max_outstanding_r2t.to_string()));
    v.push(("DataPDUInOrder", yes_no(p.data_pdu_in_order)));
    v.push(("DataSequenceInOrder", yes_no(p.data_sequence_in_order)));
    v.push(("ErrorRecoveryLevel", p.error_recovery_level.to_string()));
    if p.protocol_level != 0 {
        v.push(("iSCSIProtocolLevel", p.protocol_level.to_string()));
    }
    v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `Key = value` lines.
pub fn lines(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

fn digest(d: Digest) -> String {
    match d {
        Digest::None => "None",
        Digest::Crc32c => "CRC32C",
    }
    .to_owned()
}

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.to_owned()
}

/// One discovered portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPortal {
    /// Host as the target wrote it (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub tag: Option<u16>,
    /// `host:port` or `[v6]:port`, ready for `-p`.
    pub address: String,
}

/// One discovered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTarget {
    pub name: String,
    pub portals: Vec<FoundPortal>,
}

/// Reads a SendTargets answer. A target without `TargetAddress` is reachable
/// where we asked (RFC 7143 §13.3), so it gets the discovery portal.
pub fn targets(text: &[u8], asked: &FoundPortal) -> Vec<FoundTarget> {
    discovery::targets(text)
        .map(|t| {
            let mut portals: Vec<FoundPortal> = t
                .addresses()
                .map(|p| {
                    let mut found = FoundPortal {
                        host: p.host.to_owned(),
                        port: p.port,
                        tag: p.tag,
                        address: p.to_string(),
                    };
                    with_asked_zone(&mut found, asked);
                    found
                })
                .collect();
            if portals.is_empty() {
                portals.push(asked.clone());
            }
            FoundTarget {
                name: t.name.to_owned(),
                portals,
            }
        })
        .collect()
}

/// A target cannot know our interface names, so a link-local address it lists
/// comes without a zone; it is reached over the link we asked it on, so it takes
/// the zone of the portal asked (`fe80::5` asked at `[fe80::1%eth0]` is
/// `[fe80::5%eth0]`), which makes the printed address usable with `login -p`.
fn with_asked_zone(p: &mut FoundPortal, asked: &FoundPortal) {
    let Some((_, zone)) = asked.host.split_once('%') else {
        return;
    };
    let link_local = p
        .host
        .parse::<std::net::Ipv6Addr>()
        .is_ok_and(|a| crate::portal::is_link_local(&a));
    if link_local {
        p.host = format!("{}%{zone}", p.host);
        p.address = format!("[{}]:{}", p.host, p.port);
    }
}

/// Text form: the target name, then one indented `address,tag` line per portal
/// (`,tag` left out when the target gave none).
pub fn targets_text(found: &[FoundTarget]) -> String {
    let mut s = String::new();
    for t in found {
        s.push_str(&t.name);
        s.push('\n');
        for p in &t.portals {
            match p.tag {
                Some(tag) => s.push_str(&format!("    {},{tag}\n", p.address)),
                None => s.push_str(&format!("    {}\n", p.address)),
            }
        }
    }
    s
}

/// JSON form: `{"targets":[{"name":…,"portals":[{"address":…,"host":…,"port":…,
/// "portal_group_tag":…|null}]}]}`.
pub fn targets_json(found: &[FoundTarget]) -> String {
    let targets: Vec<_> = found
        .iter()
        .map(|t| {
            let portals: Vec<_> = t
                .portals
                .iter()
                .map(|p| {
                    json!({
                        "address": p.address,
                        "host": p.host,
                        "port": p.port,
                        "portal_group_tag": p.tag,
                    })
                })
                .collect();
            json!({ "name": t.name, "portals": portals })
        })
        .collect();
    let doc = json!({ "targets": targets });
    format!("{doc:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] = b"TargetName=iqn.2001-04.com.example:a\0\
TargetAddress=192.0.2.10:3260,1\0\
TargetAddress=[2001:db8::10]:3261,1\0\
TargetName=iqn.2001-04.com.example:b\0";

    fn asked() -> FoundPortal {
        FoundPortal {
            host: "192.0.2.1".into(),
            port: 3260,
            tag: None,
            address: "192.0.2.1:3260".into(),
        }
    }

    #[test]
    fn text_lists_targets_with_portals_and_tags() {
        let found = targets(ANSWER, &asked());
        assert_eq!(
            targets_text(&found),
            "iqn.2001-04.com.example:a\n    192.0.2.10:3260,1\n    [2001:db8::10]:3261,1\n\
             iqn.2001-04.com.example:b\n    192.0.2.1:3260\n"
        );
    }

    #[test]
    fn link_local_portals_take_the_asked_zone() {
        let answer = b"TargetName=iqn.2001-04.com.example:a\0\
TargetAddress=[fe80::5]:3260,1\0\
TargetAddress=[2001:db8::10]:3261,1\0";
        let asked = FoundPortal {
            host: "fe80::1%eth0".into(),
            port: 3260,
            tag: None,
            address: "[fe80::1%eth0]:3260".into(),
        };
        let found = targets(answer, &asked);
        let p = &found[0].portals;
        assert_eq!(p[0].address, "[fe80::5%eth0]:3260");
        assert_eq!(p[1].address, "[2001:db8::10]:3261");
        // The printed address is a portal login accepts.
        assert!(crate::portal::Portal::parse(&p[0].address).is_ok());
        // Asked without a zone: nothing to add.
        let found = targets(answer, &super::tests::asked());
        assert_eq!(found[0].portals[0].address, "[fe80::5]:3260");
    }

    #[test]
    fn json_round_trips() {
        let found = targets(ANSWER, &asked());
        let v: serde_json::Value = serde_json::from_str(&targets_json(&found)).unwrap();
        let t = &v["targets"];
        assert_eq!(t[0]["name"], "iqn.2001-04.com.example:a");
        assert_eq!(t[0]["portals"][1]["address"], "[2001:db8::10]:3261");
        assert_eq!(t[0]["portals"][1]["host"], "2001:db8::10");
        assert_eq!(t[0]["portals"][1]["port"], 3261);
        assert_eq!(t[0]["portals"][1]["portal_group_tag"], 1);
        assert!(t[1]["portals"][0]["portal_group_tag"].is_null());
    }

    #[test]
    fn negotiated_lines() {
        use iscsi_proto::negotiate::SessionParams;
        let mut params = SessionParams::DEFAULT;
        params.header_digest = Digest::Crc32c;
        params.auth_method = AuthMethod::Chap;
        let o = LoginOutcome {
            params,
            isid: [0x80, 1, 2, 3, 0, 9],
            tsih: 0x12,
            cid: 0,
            stat_sn: 1,
            exp_stat_sn: 2,
            cmd_sn: 1,
            exp_cmd_sn: 1,
            max_cmd_sn: 2,
            target_portal_group_tag: Some(1),
            target_alias: None,
            chap_algorithm: Some(iscsi_proto::chap::ChapAlgorithm::Md5),
        };
        let text = lines(&negotiated(&o, Some("iqn.x:t"), "h:3260"));
        for want in [
            "TargetName = iqn.x:t\n",
            "Portal = h:3260\n",
            "TargetPortalGroupTag = 1\n",
            "ISID = 800102030009\n",
            "TSIH = 0x0012\n",
            "AuthMethod = CHAP\n",
            "CHAP_A = 5 (md5)\n",
            "HeaderDigest = CRC32C\n",
            "DataDigest = None\n",
            "InitialR2T = Yes\n",
            "MaxRecvDataSegmentLength = 8192\n",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert!(!text.contains("iSCSIProtocolLevel"));
    }
}
