//! What iscsictl prints on success: the negotiated parameters of a login (one
//! `Key = value` per line, RFC key names, so scripts can grep them), the
//! targets a discovery found, and sessions (`login`, `list`, `list -v`), as
//! text or JSON.
//!
//! One JSON shape for all three verbs: a top-level object whose key says what
//! it holds, `{"targets": [...]}` (discover) or `{"sessions": [...]}` (login,
//! list); a portal is always the same object, `{"address", "host", "port",
//! "portal_group_tag"}`, and a session always the object of
//! [`session_json`], whichever verb printed it.

use iscsi_proto::discovery;
use iscsi_proto::login::LoginOutcome;
use iscsi_proto::negotiate::{AuthMethod, Digest};
use serde_json::{json, Value};

use crate::offer::algorithm_name;
use crate::portal::{Host, Portal};

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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
            let portals: Vec<_> = t.portals.iter().map(portal_json).collect();
            json!({ "name": t.name, "portals": portals })
        })
        .collect();
    let doc = json!({ "targets": targets });
    format!("{doc:#}\n")
}

/// The portal object every JSON output uses.
pub fn portal_json(p: &FoundPortal) -> Value {
    json!({
        "address": p.address,
        "host": p.host,
        "port": p.port,
        "portal_group_tag": p.tag,
    })
}

/// A portal as the JSON and the discovery listing show it.
pub fn found_portal(p: &Portal, tag: Option<u16>) -> FoundPortal {
    let host = match &p.host {
        Host::V4(a) => a.to_string(),
        Host::V6(a, None) => a.to_string(),
        Host::V6(a, Some(z)) => format!("{a}%{z}"),
        Host::Name(n) => n.clone(),
    };
    FoundPortal {
        host,
        port: p.port,
        tag,
        address: p.to_string(),
    }
}

/// A portal string from the kernel (`host:port` as iscsictl gave it); one that
/// does not parse is shown as it is, with port 0.
pub fn found_portal_str(s: &str, tag: Option<u16>) -> FoundPortal {
    match Portal::parse(s) {
        Ok(p) => found_portal(&p, tag),
        Err(_) => FoundPortal {
            host: s.to_owned(),
            port: 0,
            tag,
            address: s.to_owned(),
        },
    }
}

/// A logical unit of a session's SCSI host, from sysfs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lun {
    /// `H:C:T:L`, the sysfs device name.
    pub hctl: String,
    pub lun: u64,
    /// The block device (`sdb`), when the LUN is a disk and has one.
    pub disk: Option<String>,
    pub vendor: String,
    pub model: String,
    /// The SCSI device state (`running`, `offline`, `blocked` …).
    pub state: String,
}

/// A session, from the kernel's LIST (plus sysfs and the ISID store) or from
/// a dry-run login: what `list -v` and the JSON show.
#[derive(Debug, Clone, Default)]
pub struct SessionView {
    /// SCSI host number; none for a dry run.
    pub host: Option<u32>,
    pub target: String,
    pub initiator: String,
    pub portal: FoundPortal,
    pub isid: [u8; 6],
    pub tsih: u16,
    pub state: String,
    pub recoveries: Option<u32>,
    /// `(name, seconds)`: replacement_timeout, noop_out_interval, noop_out_timeout.
    pub timeouts: Vec<(&'static str, u32)>,
    /// RFC 7143 key names and values, as negotiated.
    pub params: Vec<(String, String)>,
    /// `(name, value)`: CmdSN window, queue depth, commands in flight.
    pub counters: Vec<(&'static str, u64)>,
    pub luns: Vec<Lun>,
    /// One per lane, from LIST_CONNECTIONS; `None` when the module has no
    /// such call (then `list` shows nothing about connections).
    pub connections: Option<Vec<ConnView>>,
}

/// One connection (lane) of a session, as LIST_CONNECTIONS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnView {
    pub lane: u16,
    pub cid: u16,
    /// "up", "closing" (lost; the target has not closed its end yet) or "absent".
    pub state: &'static str,
    pub exp_stat_sn: u32,
    pub header_digest: &'static str,
    pub data_digest: &'static str,
    pub max_recv_data_segment_len: u32,
    pub max_xmit_data_segment_len: u32,
    pub local_port: u16,
    pub in_flight: u32,
    pub tx_stalled: u64,
}

fn conn_json(c: &ConnView) -> Value {
    json!({
        "lane": c.lane,
        "cid": c.cid,
        "state": c.state,
        "exp_stat_sn": c.exp_stat_sn,
        "HeaderDigest": c.header_digest,
        "DataDigest": c.data_digest,
        "MaxRecvDataSegmentLength": c.max_recv_data_segment_len,
        "MaxXmitDataSegmentLength": c.max_xmit_data_segment_len,
        "local_port": c.local_port,
        "in_flight": c.in_flight,
        "tx_stalled": c.tx_stalled,
    })
}

/// The session object of every JSON output.
pub fn session_json(s: &SessionView) -> Value {
    let params: serde_json::Map<String, Value> = s
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let timeouts: serde_json::Map<String, Value> = s
        .timeouts
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let counters: serde_json::Map<String, Value> = s
        .counters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let luns: Vec<Value> = s
        .luns
        .iter()
        .map(|l| {
            json!({
                "lun": l.lun,
                "hctl": l.hctl,
                "disk": l.disk,
                "vendor": l.vendor,
                "model": l.model,
                "state": l.state,
            })
        })
        .collect();
    let disks: Vec<&String> = s.luns.iter().filter_map(|l| l.disk.as_ref()).collect();
    let mut v = json!({
        "host": s.host,
        "target": s.target,
        "initiator": s.initiator,
        "portal": portal_json(&s.portal),
        "isid": crate::identity::isid_hex(&s.isid),
        "tsih": s.tsih,
        "state": s.state,
        "recoveries": s.recoveries,
        "timeouts": timeouts,
        "params": params,
        "counters": counters,
        "luns": luns,
        "disks": disks,
    });
    if let (Some(conns), Some(obj)) = (&s.connections, v.as_object_mut()) {
        let conns: Vec<Value> = conns.iter().map(conn_json).collect();
        obj.insert("connections".into(), Value::Array(conns));
    }
    v
}

/// `{"sessions": [...]}` with a final newline.
pub fn sessions_json(sessions: &[Value]) -> String {
    format!("{:#}\n", json!({ "sessions": sessions }))
}

/// `list -v`: what `iscsiadm -m session -P 3` shows, as far as the kernel's
/// LIST, sysfs and the ISID store know it.
pub fn session_verbose(s: &SessionView) -> String {
    let mut t = format!("Target: {}\n", s.target);
    let portal = match s.portal.tag {
        Some(tag) => format!("{},{tag}", s.portal.address),
        None => s.portal.address.clone(),
    };
    t.push_str(&format!("    Portal: {portal}\n"));
    t.push_str(&format!("    Initiator: {}\n", s.initiator));
    t.push_str(&format!(
        "    ISID: {}    TSIH: {:#06x}\n",
        crate::identity::isid_hex(&s.isid),
        s.tsih
    ));
    if let Some(h) = s.host {
        t.push_str(&format!("    SCSI host: {h}\n"));
    }
    t.push_str(&format!("    Session state: {}\n", s.state));
    if let Some(r) = s.recoveries {
        t.push_str(&format!("    Recoveries: {r}\n"));
    }
    if !s.timeouts.is_empty() {
        t.push_str("    Timeouts (seconds):\n");
        for (k, v) in &s.timeouts {
            t.push_str(&format!("        {k}: {v}\n"));
        }
    }
    t.push_str("    Negotiated parameters:\n");
    for (k, v) in &s.params {
        t.push_str(&format!("        {k}: {v}\n"));
    }
    if !s.counters.is_empty() {
        t.push_str("    Command window:\n");
        for (k, v) in &s.counters {
            t.push_str(&format!("        {k}: {v}\n"));
        }
    }
    if let Some(conns) = &s.connections {
        t.push_str("    Connections:\n");
        for c in conns {
            t.push_str(&format!(
                "        CID {} lane {}: {} ExpStatSN={} HeaderDigest={} DataDigest={} \
                 MaxRecvDataSegmentLength={} MaxXmitDataSegmentLength={} local-port={} \
                 in_flight={} tx_stalled={}\n",
                c.cid,
                c.lane,
                c.state,
                c.exp_stat_sn,
                c.header_digest,
                c.data_digest,
                c.max_recv_data_segment_len,
                c.max_xmit_data_segment_len,
                c.local_port,
                c.in_flight,
                c.tx_stalled
            ));
        }
    }
    t.push_str("    LUNs:\n");
    if s.luns.is_empty() {
        t.push_str("        none\n");
    }
    for l in &s.luns {
        let what = format!("{} {}", l.vendor, l.model);
        let what = what.trim();
        t.push_str(&format!(
            "        {} (LUN {}): {} [{}]{}\n",
            l.hctl,
            l.lun,
            l.disk
                .as_deref()
                .map(|d| format!("/dev/{d}"))
                .unwrap_or_else(|| "no disk".into()),
            l.state,
            if what.is_empty() {
                String::new()
            } else {
                format!(" {what}")
            }
        ));
    }
    t
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
