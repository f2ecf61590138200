//! `iscsictl udev-path DEVICE`: the /dev/disk/by-path name of a disk on an
//! iscsi_rs session, in open-iscsi's form `ip-ADDR:PORT-iscsi-IQN-lun-N`.
//!
//! udev's path_id builtin makes that name only for hosts of the kernel's iSCSI
//! transport class (a `sessionN` device above the SCSI target, whose
//! `iscsi_connection` gives `persistent_address` and `persistent_port`); our
//! hosts are plain SCSI hosts, so the shipped rule (`pkg/71-iscsi-rs.rules`)
//! asks this helper instead. Everything comes from sysfs: the disk's
//! `H:C:T:L` SCSI device names host H and LUN L, and host H's attributes
//! (`proc_name`, `targetname`, `portal`) name the session. No ioctl, so the
//! rule needs no access to /dev/iscsi_rs.
//!
//! The pieces match what path_id prints for an open-iscsi session: the address
//! as the node record holds it (an IPv6 address bare, without brackets, as
//! open-iscsi stores it), the port in decimal, the target name, and the LUN as
//! path_id's `format_lun_number` writes it (`lun-N` below 256, else
//! `lun-0x` followed by the two low 16-bit halves of Linux's LUN number and
//! eight zeros).

use std::fs;
use std::path::{Path, PathBuf};

use crate::exit::Error;

/// Where sysfs is mounted.
pub const SYSFS: &str = "/sys";

/// The SCSI host's `proc_name` for iscsi_rs hosts.
const PROC_NAME: &str = "iscsi_rs";

/// `iscsictl udev-path DEVICE`: prints the name, or fails (exit 1) for a
/// device that is not an iscsi_rs disk, which the udev rule takes as "no link".
pub fn run(sys: &Path, device: &str, out: &mut dyn std::io::Write) -> Result<(), Error> {
    let name = by_path_name(sys, device)?;
    writeln!(out, "{name}").map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

/// The by-path name of `device`: a devpath as udev's `%p` gives it
/// (`/devices/…/block/sdc`), a sysfs path, `/dev/sdc` or `sdc`. A partition
/// gets its disk's name with `-partN`, as udev's rules name partition links.
pub fn by_path_name(sys: &Path, device: &str) -> Result<String, Error> {
    let dir = sysfs_dir(sys, device);
    let real = fs::canonicalize(&dir)
        .map_err(|e| Error::Failed(format!("{device}: no such device in sysfs ({e})")))?;
    let (host, lun) = scsi_address(&real).ok_or_else(|| {
        Error::Failed(format!(
            "{device} is not a SCSI disk (no H:C:T:L in {})",
            real.display()
        ))
    })?;
    let host_dir = sys.join(format!("class/scsi_host/host{host}"));
    let attr = |name: &str| -> Result<String, Error> {
        let p = host_dir.join(name);
        fs::read_to_string(&p)
            .map(|s| s.trim_end_matches('\n').to_owned())
            .map_err(|e| Error::Failed(format!("cannot read {}: {e}", p.display())))
    };
    let proc_name = attr("proc_name")?;
    if proc_name != PROC_NAME {
        return Err(Error::Failed(format!(
            "{device} is on SCSI host {host} of {proc_name}, not an iscsi_rs session"
        )));
    }
    let target = attr("targetname")?;
    let portal = attr("portal")?;
    let (addr, port) = split_portal(&portal).ok_or_else(|| {
        Error::Failed(format!("host{host}: portal {portal:?} is not ADDRESS:PORT"))
    })?;
    if target.is_empty() || target.contains('/') || addr.contains('/') {
        return Err(Error::Failed(format!(
            "host{host}: target {target:?} at {portal:?} cannot make a link name"
        )));
    }
    let mut name = format!("ip-{addr}:{port}-iscsi-{target}-{}", lun_name(lun));
    if let Ok(part) = fs::read_to_string(real.join("partition")) {
        name.push_str(&format!("-part{}", part.trim()));
    }
    Ok(name)
}

/// Where `device` lives in sysfs.
fn sysfs_dir(sys: &Path, device: &str) -> PathBuf {
    if let Some(name) = device.strip_prefix("/dev/") {
        return sys.join("class/block").join(name);
    }
    if let Some(rest) = device.strip_prefix("/sys/") {
        return sys.join(rest);
    }
    if let Some(rest) = device.strip_prefix('/') {
        return sys.join(rest); // a devpath: /devices/…
    }
    sys.join("class/block").join(device)
}

/// The host number and LUN of the last `H:C:T:L` component of a sysfs path.
fn scsi_address(path: &Path) -> Option<(u32, u64)> {
    path.components().rev().find_map(|c| {
        let s = c.as_os_str().to_str()?;
        let parts: Vec<&str> = s.split(':').collect();
        let [h, c, t, l] = parts.as_slice() else {
            return None;
        };
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !(digits(h) && digits(c) && digits(t) && digits(l)) {
            return None;
        }
        Some((h.parse().ok()?, l.parse().ok()?))
    })
}

/// path_id's LUN: `lun-N` below 256 (peripheral addressing), else the low two
/// 16-bit halves of the Linux LUN swapped back into SAM order, then 0000 0000.
pub fn lun_name(lun: u64) -> String {
    if lun < 256 {
        format!("lun-{lun}")
    } else {
        format!(
            "lun-0x{:04x}{:04x}00000000",
            lun & 0xffff,
            (lun >> 16) & 0xffff
        )
    }
}

/// Splits the host's `portal` attribute (`ADDR:PORT` or `[IPv6]:PORT`, as
/// iscsictl hands it to the kernel) into the address as open-iscsi's node
/// record would hold it (brackets dropped) and the port.
fn split_portal(portal: &str) -> Option<(&str, u16)> {
    let (addr, port) = match portal.strip_prefix('[') {
        Some(rest) => {
            let (a, p) = rest.split_once(']')?;
            (a, p.strip_prefix(':')?)
        }
        None => portal.rsplit_once(':')?,
    };
    if addr.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((addr, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn luns_as_path_id_writes_them() {
        assert_eq!(lun_name(0), "lun-0");
        assert_eq!(lun_name(1), "lun-1");
        assert_eq!(lun_name(255), "lun-255");
        // Flat space LUN 300 (0x412c on the wire): Linux numbers it 0x412c = 16684.
        assert_eq!(lun_name(0x412c), "lun-0x412c000000000000");
        assert_eq!(lun_name(0x0001_4001), "lun-0x4001000100000000");
    }

    #[test]
    fn portals() {
        assert_eq!(split_portal("192.0.2.1:3260"), Some(("192.0.2.1", 3260)));
        assert_eq!(
            split_portal("[2001:db8::1]:3261"),
            Some(("2001:db8::1", 3261))
        );
        assert_eq!(
            split_portal("[fe80::1%eth0]:3260"),
            Some(("fe80::1%eth0", 3260))
        );
        assert_eq!(
            split_portal("san.example:3260"),
            Some(("san.example", 3260))
        );
        for bad in ["", "h", "[::1]", "[::1]3260", ":3260", "h:x", "h:99999"] {
            assert_eq!(split_portal(bad), None, "{bad}");
        }
    }

    /// A fake sysfs: host 3 of iscsi_rs with LUNs 0 and 1 (sdc, sdd with
    /// sdd1), host 0 of another driver with sda.
    fn fake_sys(portal: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let s = t.path();
        let host = |n: u32, proc_name: &str| {
            let d = s.join(format!("devices/platform/host{n}/scsi_host/host{n}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("proc_name"), format!("{proc_name}\n")).unwrap();
            fs::create_dir_all(s.join("class/scsi_host")).unwrap();
            symlink(&d, s.join(format!("class/scsi_host/host{n}"))).unwrap();
            d
        };
        let disk = |h: u32, l: u32, name: &str| {
            let d = s.join(format!(
                "devices/platform/host{h}/target{h}:0:0/{h}:0:0:{l}/block/{name}"
            ));
            fs::create_dir_all(&d).unwrap();
            fs::create_dir_all(s.join("class/block")).unwrap();
            symlink(&d, s.join(format!("class/block/{name}"))).unwrap();
            d
        };
        let h3 = host(3, "iscsi_rs");
        fs::write(h3.join("targetname"), "iqn.2026-11.dev.iscsi-rs:t\n").unwrap();
        fs::write(h3.join("portal"), format!("{portal}\n")).unwrap();
        host(0, "ata_piix");
        disk(3, 0, "sdc");
        let sdd = disk(3, 1, "sdd");
        fs::create_dir_all(sdd.join("sdd1")).unwrap();
        fs::write(sdd.join("sdd1/partition"), "1\n").unwrap();
        symlink(sdd.join("sdd1"), s.join("class/block/sdd1")).unwrap();
        disk(0, 0, "sda");
        t
    }

    #[test]
    fn names_from_sysfs() {
        let t = fake_sys("127.0.0.1:3260");
        let s = t.path();
        let want0 = "ip-127.0.0.1:3260-iscsi-iqn.2026-11.dev.iscsi-rs:t-lun-0";
        for dev in [
            "/devices/platform/host3/target3:0:0/3:0:0:0/block/sdc",
            "/sys/devices/platform/host3/target3:0:0/3:0:0:0/block/sdc",
            "/dev/sdc",
            "sdc",
        ] {
            assert_eq!(by_path_name(s, dev).unwrap(), want0, "{dev}");
        }
        assert_eq!(
            by_path_name(s, "sdd").unwrap(),
            "ip-127.0.0.1:3260-iscsi-iqn.2026-11.dev.iscsi-rs:t-lun-1"
        );
        assert_eq!(
            by_path_name(s, "/dev/sdd1").unwrap(),
            "ip-127.0.0.1:3260-iscsi-iqn.2026-11.dev.iscsi-rs:t-lun-1-part1"
        );
        let e = by_path_name(s, "sda").unwrap_err().to_string();
        assert!(
            e.contains("SCSI host 0 of ata_piix, not an iscsi_rs session"),
            "{e}"
        );
        let e = by_path_name(s, "sdz").unwrap_err().to_string();
        assert!(e.contains("sdz: no such device"), "{e}");
        let e = by_path_name(s, "/devices/platform")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a SCSI disk"), "{e}");

        let t = fake_sys("[::1]:3261");
        assert_eq!(
            by_path_name(t.path(), "sdc").unwrap(),
            "ip-::1:3261-iscsi-iqn.2026-11.dev.iscsi-rs:t-lun-0"
        );
    }
}
