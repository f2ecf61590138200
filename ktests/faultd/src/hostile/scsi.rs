//! The hostile target's SCSI side while it behaves: LUNs backed by RAM disks of
//! 512-byte blocks, answering just what the Linux SCSI scan, sd and a `dd` need
//! (INQUIRY with VPD 0x00/0x80/0x83, REPORT LUNS, TEST UNIT READY, READ CAPACITY
//! 10/16, MODE SENSE 6/10, READ/WRITE 10/16, SYNCHRONIZE CACHE); anything else is
//! CHECK CONDITION, ILLEGAL REQUEST. CDB layouts are SBC-3/SPC-4's.
//!
//! [`Luns`] routes a command by its LUN field: either one disk that answers
//! whatever LUN field a command carries (REPORT LUNS says LUN 0), or
//! (`flat-luns`) one disk per flat-space-addressed LUN (SAM-5 §4.7.7, address
//! method 01b), with the peripheral-addressed LUN 0 reporting "no device" and
//! every other LUN field refused as LOGICAL UNIT NOT SUPPORTED.

use std::sync::{Mutex, MutexGuard};

/// Logical block size.
pub const BLOCK: u64 = 512;

/// SCSI status GOOD.
pub const GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub const CHECK_CONDITION: u8 = 0x02;

/// Sense key, additional sense code and qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key (5 = ILLEGAL REQUEST).
    pub key: u8,
    /// ASC.
    pub asc: u8,
    /// ASCQ.
    pub ascq: u8,
}

impl Sense {
    /// INVALID COMMAND OPERATION CODE.
    pub const BAD_OPCODE: Sense = Sense::illegal(0x20);
    /// INVALID FIELD IN CDB.
    pub const BAD_FIELD: Sense = Sense::illegal(0x24);
    /// LOGICAL BLOCK ADDRESS OUT OF RANGE.
    pub const LBA_RANGE: Sense = Sense::illegal(0x21);
    /// LOGICAL UNIT NOT SUPPORTED (SPC-4 §4.6.4: a command to a LUN the target
    /// does not have).
    pub const LUN_NOT_SUPPORTED: Sense = Sense::illegal(0x25);
    /// MEDIUM ERROR, UNRECOVERED READ ERROR (used by the sense-overflow scenario).
    pub const MEDIUM: Sense = Sense {
        key: 0x03,
        asc: 0x11,
        ascq: 0,
    };

    const fn illegal(asc: u8) -> Sense {
        Sense {
            key: 0x05,
            asc,
            ascq: 0,
        }
    }

    /// Fixed-format sense data (SPC-4 §4.5.3), current error.
    pub fn fixed(&self) -> [u8; 18] {
        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = self.key;
        s[7] = 10; // additional sense length: bytes 8..18
        s[12] = self.asc;
        s[13] = self.ascq;
        s
    }
}

/// What a command leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GOOD with this Data-In (already cut to the allocation length).
    Read(Vec<u8>),
    /// GOOD without data.
    Good,
    /// A write of `len` bytes at byte offset `offset`: collect the data first.
    Write {
        /// Byte offset on the disk.
        offset: u64,
        /// Bytes the CDB asks to write.
        len: u64,
    },
    /// CHECK CONDITION.
    Check(Sense),
}

/// A READ or WRITE (10/16) as the trigger sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rw {
    /// WRITE rather than READ.
    pub write: bool,
    /// First logical block.
    pub lba: u64,
    /// Number of blocks.
    pub blocks: u64,
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Decodes READ(10/16) and WRITE(10/16).
pub fn rw(cdb: &[u8; 16]) -> Option<Rw> {
    let (write, lba, blocks) = match cdb[0] {
        0x28 => (false, be(&cdb[2..6]), be(&cdb[7..9])),
        0x2a => (true, be(&cdb[2..6]), be(&cdb[7..9])),
        0x88 => (false, be(&cdb[2..10]), be(&cdb[10..14])),
        0x8a => (true, be(&cdb[2..10]), be(&cdb[10..14])),
        _ => return None,
    };
    Some(Rw { write, lba, blocks })
}

/// A RAM disk, shared by every connection so data survives a reconnect.
pub struct Disk {
    data: Mutex<Vec<u8>>,
    blocks: u64,
    /// LUN number, in the unit serial number and the device identifier (VPD
    /// 0x80, 0x83), so each disk of a target is a different device to udev.
    number: u16,
}

impl Disk {
    /// A zeroed disk of `mb` MiB.
    pub fn new(mb: u64) -> Disk {
        Disk::numbered(mb, 0)
    }

    /// A zeroed disk of `mb` MiB for LUN `number`.
    pub fn numbered(mb: u64, number: u16) -> Disk {
        let bytes = mb.max(1) * 1024 * 1024;
        Disk {
            data: Mutex::new(vec![0u8; bytes as usize]),
            blocks: bytes / BLOCK,
            number,
        }
    }

    /// Size in blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies `len` bytes at `offset` (range already checked by `execute`).
    pub fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        let d = self.lock();
        d.get(offset as usize..(offset + len) as usize)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }

    /// Stores `bytes` at `offset`, clipped to the disk.
    pub fn write(&self, offset: u64, bytes: &[u8]) {
        let mut d = self.lock();
        let start = (offset as usize).min(d.len());
        let end = start.saturating_add(bytes.len()).min(d.len());
        if let (Some(dst), Some(src)) = (d.get_mut(start..end), bytes.get(..end - start)) {
            dst.copy_from_slice(src);
        }
    }

    /// Runs one CDB.
    pub fn execute(&self, cdb: &[u8; 16]) -> Outcome {
        if let Some(r) = rw(cdb) {
            return match r.lba.checked_add(r.blocks) {
                Some(end) if end <= self.blocks => {
                    let (offset, len) = (r.lba * BLOCK, r.blocks * BLOCK);
                    if r.write {
                        Outcome::Write { offset, len }
                    } else {
                        Outcome::Read(self.read(offset, len))
                    }
                }
                _ => Outcome::Check(Sense::LBA_RANGE),
            };
        }
        let alloc = |range: std::ops::Range<usize>, data: Vec<u8>| {
            let n = be(&cdb[range]) as usize;
            let mut data = data;
            data.truncate(n);
            Outcome::Read(data)
        };
        match cdb[0] {
            0x00 => Outcome::Good,        // TEST UNIT READY
            0x35 | 0x91 => Outcome::Good, // SYNCHRONIZE CACHE 10/16
            0x12 => match self.inquiry(cdb) {
                // INQUIRY
                Some(d) => alloc(3..5, d),
                None => Outcome::Check(Sense::BAD_FIELD),
            },
            0xa0 => report_luns(cdb, &[0]),
            0x25 => {
                // READ CAPACITY(10): last LBA, block length.
                let last = u32::try_from(self.blocks - 1).unwrap_or(u32::MAX);
                let mut d = last.to_be_bytes().to_vec();
                d.extend_from_slice(&(BLOCK as u32).to_be_bytes());
                Outcome::Read(d)
            }
            0x9e if cdb[1] & 0x1f == 0x10 => {
                // READ CAPACITY(16).
                let mut d = vec![0u8; 32];
                d[..8].copy_from_slice(&(self.blocks - 1).to_be_bytes());
                d[8..12].copy_from_slice(&(BLOCK as u32).to_be_bytes());
                alloc(10..14, d)
            }
            0x1a => match mode_pages(cdb[2] & 0x3f) {
                // MODE SENSE(6): 4-byte header, no block descriptors.
                Some(pages) => {
                    let mut d = vec![(3 + pages.len()) as u8, 0, 0, 0];
                    d.extend(pages);
                    alloc(4..5, d)
                }
                None => Outcome::Check(Sense::BAD_FIELD),
            },
            0x5a => match mode_pages(cdb[2] & 0x3f) {
                // MODE SENSE(10): 8-byte header.
                Some(pages) => {
                    let len = (6 + pages.len()) as u16;
                    let mut d = len.to_be_bytes().to_vec();
                    d.extend_from_slice(&[0; 6]);
                    d.extend(pages);
                    alloc(7..9, d)
                }
                None => Outcome::Check(Sense::BAD_FIELD),
            },
            _ => Outcome::Check(Sense::BAD_OPCODE),
        }
    }

    fn inquiry(&self, cdb: &[u8; 16]) -> Option<Vec<u8>> {
        let evpd = cdb[1] & 1 != 0;
        if !evpd {
            return (cdb[2] == 0).then(|| standard_inquiry(DIRECT_ACCESS));
        }
        let page = |code: u8, body: &[u8]| {
            let mut d = vec![0, code];
            d.extend_from_slice(&(body.len() as u16).to_be_bytes());
            d.extend_from_slice(body);
            d
        };
        match cdb[2] {
            0x00 => Some(page(0x00, &[0x00, 0x80, 0x83])),
            0x80 => Some(page(
                0x80,
                format!("HOSTILE{:05}", u32::from(self.number) + 1).as_bytes(),
            )),
            0x83 => {
                // One designator: T10 vendor ID (type 1), ASCII, LUN-associated.
                let id = format!("ISCSIRS hostile-lun{}", self.number);
                let mut desig = vec![0x02, 0x01, 0x00, id.len() as u8];
                desig.extend_from_slice(id.as_bytes());
                Some(page(0x83, &desig))
            }
            _ => None,
        }
    }
}

/// INQUIRY byte 0 of a direct-access block device that is there: peripheral
/// qualifier 000b, device type 00h.
const DIRECT_ACCESS: u8 = 0x00;
/// INQUIRY byte 0 for "a device could be here but is not" (SPC-4 §6.6.2:
/// peripheral qualifier 001b, device type 1Fh unknown/none). Linux's scan adds
/// no device for it but goes on to REPORT LUNS (NetApp targets answer so).
pub const PQ_NOT_CONNECTED: u8 = 0x3f;
/// INQUIRY byte 0 for a LUN the target cannot have (peripheral qualifier
/// 011b, device type 1Fh): SPC-4 §4.6.4 wants INQUIRY to an unsupported LUN
/// answered so rather than refused.
pub const PQ_NOT_CAPABLE: u8 = 0x7f;

/// Standard INQUIRY data (36 bytes) with byte 0 `periph`: SPC-4, CmdQue.
fn standard_inquiry(periph: u8) -> Vec<u8> {
    let mut d = vec![0u8; 36];
    d[0] = periph;
    d[2] = 0x06;
    d[3] = 0x02;
    d[4] = 31;
    d[7] = 0x02;
    d[8..16].copy_from_slice(b"ISCSIRS ");
    d[16..32].copy_from_slice(b"HOSTILE TARGET  ");
    d[32..36].copy_from_slice(b"0001");
    d
}

/// REPORT LUNS parameter data (SPC-4 §6.33) listing `luns` (8-byte LUN
/// fields), cut to the allocation length (CDB bytes 6..10).
fn report_luns(cdb: &[u8; 16], luns: &[u64]) -> Outcome {
    let list_len = (luns.len() * 8) as u32;
    let mut d = list_len.to_be_bytes().to_vec();
    d.extend_from_slice(&[0; 4]);
    for l in luns {
        d.extend_from_slice(&l.to_be_bytes());
    }
    d.truncate(be(&cdb[6..10]) as usize);
    Outcome::Read(d)
}

/// The LUN field (BHS bytes 8..16 as a big-endian u64) of flat-space LUN `n`:
/// address method 01b in byte 0's top bits, the 14-bit LUN in the rest of
/// bytes 0..2 (SAM-5 §4.7.7): byte 0 = 0x40 | n >> 8, byte 1 = n & 0xff.
pub const fn flat_lun(n: u16) -> u64 {
    let b0 = 0x40 | ((n >> 8) as u64 & 0x3f);
    let b1 = (n & 0xff) as u64;
    (b0 << 56) | (b1 << 48)
}

/// The target's logical units.
pub struct Luns {
    /// `None`: one disk for every LUN field. `Some`: LUN field -> disk.
    flat: Option<Vec<(u64, Disk)>>,
    single: Option<Disk>,
}

impl Luns {
    /// One disk of `mb` MiB answering every LUN field; REPORT LUNS says LUN 0.
    pub fn single(mb: u64) -> Luns {
        Luns {
            flat: None,
            single: Some(Disk::new(mb)),
        }
    }

    /// One independent disk of `mb` MiB per flat-space LUN in `numbers`; the
    /// all-zero (peripheral) LUN 0 answers INQUIRY with "not connected" and
    /// REPORT LUNS; any other LUN field is LOGICAL UNIT NOT SUPPORTED.
    pub fn flat(mb: u64, numbers: &[u16]) -> Luns {
        Luns {
            flat: Some(
                numbers
                    .iter()
                    .map(|&n| (flat_lun(n), Disk::numbered(mb, n)))
                    .collect(),
            ),
            single: None,
        }
    }

    /// The disk a LUN field addresses.
    pub fn disk(&self, lun: u64) -> Option<&Disk> {
        match &self.flat {
            Some(luns) => luns.iter().find(|(l, _)| *l == lun).map(|(_, d)| d),
            None => self.single.as_ref(),
        }
    }

    /// Runs one CDB sent to LUN field `lun`.
    pub fn execute(&self, lun: u64, cdb: &[u8; 16]) -> Outcome {
        let Some(luns) = &self.flat else {
            return match &self.single {
                Some(d) => d.execute(cdb),
                None => Outcome::Check(Sense::LUN_NOT_SUPPORTED),
            };
        };
        if cdb[0] == 0xa0 {
            // Answered whatever LUN it is sent to (SPC-4 §6.33 wants it on
            // LUN 0, which has no disk here).
            let fields: Vec<u64> = luns.iter().map(|(l, _)| *l).collect();
            return report_luns(cdb, &fields);
        }
        if let Some(d) = self.disk(lun) {
            return d.execute(cdb);
        }
        // INQUIRY standard data is answered for a LUN without a device
        // (SPC-4 §4.6.4); everything else is refused.
        if cdb[0] == 0x12 && cdb[1] & 1 == 0 && cdb[2] == 0 {
            let periph = if lun == 0 {
                PQ_NOT_CONNECTED
            } else {
                PQ_NOT_CAPABLE
            };
            let mut d = standard_inquiry(periph);
            d.truncate(be(&cdb[3..5]) as usize);
            return Outcome::Read(d);
        }
        Outcome::Check(Sense::LUN_NOT_SUPPORTED)
    }
}

/// The caching page (0x08, write cache enabled so sd sends SYNCHRONIZE CACHE)
/// for page code 0x08 or 0x3f (all pages); `None` for others.
fn mode_pages(code: u8) -> Option<Vec<u8>> {
    match code {
        0x08 | 0x3f => {
            let mut p = vec![0u8; 20];
            p[0] = 0x08;
            p[1] = 18;
            p[2] = 0x04; // WCE
            Some(p)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdb(bytes: &[u8]) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..bytes.len()].copy_from_slice(bytes);
        c
    }

    #[test]
    fn capacity_inquiry_and_io() {
        let d = Disk::new(1);
        assert_eq!(
            d.execute(&cdb(&[0x25])),
            Outcome::Read(vec![0, 0, 0x07, 0xff, 0, 0, 2, 0])
        );
        let Outcome::Read(inq) = d.execute(&cdb(&[0x12, 0, 0, 0, 96])) else {
            panic!()
        };
        assert_eq!(inq.len(), 36);
        let Outcome::Read(vpd) = d.execute(&cdb(&[0x12, 1, 0, 0, 255])) else {
            panic!()
        };
        assert_eq!(vpd, vec![0, 0, 0, 3, 0, 0x80, 0x83]);
        assert_eq!(
            d.execute(&cdb(&[0x12, 1, 0xb0, 0, 255])),
            Outcome::Check(Sense::BAD_FIELD)
        );
        assert_eq!(
            d.execute(&cdb(&[0x2a, 0, 0, 0, 0, 2, 0, 0, 1])),
            Outcome::Write {
                offset: 1024,
                len: 512
            }
        );
        d.write(1024, &[7; 512]);
        assert_eq!(
            d.execute(&cdb(&[0x28, 0, 0, 0, 0, 2, 0, 0, 1])),
            Outcome::Read(vec![7; 512])
        );
        assert_eq!(
            d.execute(&cdb(&[0x28, 0, 0, 0, 0x08, 0, 0, 0, 1])),
            Outcome::Check(Sense::LBA_RANGE)
        );
        assert_eq!(d.execute(&cdb(&[0x4d])), Outcome::Check(Sense::BAD_OPCODE));
        assert_eq!(
            rw(&cdb(&[0x88, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 8])),
            Some(Rw {
                write: false,
                lba: 1000,
                blocks: 8
            })
        );
    }

    #[test]
    fn flat_lun_fields() {
        assert_eq!(flat_lun(0).to_be_bytes(), [0x40, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(flat_lun(1).to_be_bytes(), [0x40, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(flat_lun(300).to_be_bytes(), [0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
        // proto's LUN codec agrees.
        use iscsi_proto::pdu::lun::Lun;
        for n in [0u16, 1, 300, 0x3fff] {
            assert_eq!(Lun::Flat(n).to_u64(), flat_lun(n), "{n}");
        }
    }

    fn inquiry0(luns: &Luns, lun: u64) -> u8 {
        match luns.execute(lun, &cdb(&[0x12, 0, 0, 0, 96])) {
            Outcome::Read(d) => {
                assert_eq!(d.len(), 36);
                d[0]
            }
            other => panic!("INQUIRY to {lun:#x}: {other:?}"),
        }
    }

    #[test]
    fn flat_luns_are_independent_and_others_refused() {
        let luns = Luns::flat(1, &[0, 1, 300]);
        let fields = [flat_lun(0), flat_lun(1), flat_lun(300)];
        // REPORT LUNS, from the peripheral LUN 0 or any other: the three.
        for lun in [0, flat_lun(1), 0x0005_0000_0000_0000] {
            let Outcome::Read(d) = luns.execute(lun, &cdb(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0]))
            else {
                panic!()
            };
            assert_eq!(d[..8], [0, 0, 0, 24, 0, 0, 0, 0]);
            assert_eq!(d[8..16], flat_lun(0).to_be_bytes());
            assert_eq!(d[16..24], flat_lun(1).to_be_bytes());
            assert_eq!(d[24..32], flat_lun(300).to_be_bytes());
            assert_eq!(d.len(), 32);
        }
        // Allocation length 16: the header and the first entry.
        let Outcome::Read(d) = luns.execute(0, &cdb(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16])) else {
            panic!()
        };
        assert_eq!(d.len(), 16);

        // Peripheral LUN 0: not connected (PQ 001b, type 1Fh); a LUN never
        // reported: not capable (PQ 011b); the flat ones: disks.
        assert_eq!(inquiry0(&luns, 0), PQ_NOT_CONNECTED);
        assert_eq!(PQ_NOT_CONNECTED >> 5, 0b001);
        assert_eq!(inquiry0(&luns, 0x0001_0000_0000_0000), PQ_NOT_CAPABLE);
        assert_eq!(inquiry0(&luns, flat_lun(2)), PQ_NOT_CAPABLE);
        for f in fields {
            assert_eq!(inquiry0(&luns, f), 0x00);
        }
        // Anything else to an unreported LUN: ILLEGAL REQUEST, 25h/00h.
        for (lun, c) in [
            (0, cdb(&[0x00])),
            (0, cdb(&[0x25])),
            (0x0001_0000_0000_0000, cdb(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1])),
            (flat_lun(2), cdb(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1])),
            (0, cdb(&[0x12, 1, 0x83, 0, 255])),
        ] {
            assert_eq!(
                luns.execute(lun, &c),
                Outcome::Check(Sense::LUN_NOT_SUPPORTED),
                "{lun:#x} {:#x}",
                c[0]
            );
        }
        assert_eq!(
            Sense::LUN_NOT_SUPPORTED.fixed()[..14],
            [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0]
        );

        // Each disk has its own data and identity.
        let read0 = cdb(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1]);
        for (i, f) in fields.iter().enumerate() {
            assert_eq!(
                luns.execute(*f, &cdb(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1])),
                Outcome::Write {
                    offset: 0,
                    len: 512
                }
            );
            luns.disk(*f).unwrap().write(0, &[i as u8 + 1; 512]);
        }
        for (i, f) in fields.iter().enumerate() {
            assert_eq!(
                luns.execute(*f, &read0),
                Outcome::Read(vec![i as u8 + 1; 512])
            );
        }
        let ids: Vec<Outcome> = fields
            .iter()
            .map(|f| luns.execute(*f, &cdb(&[0x12, 1, 0x83, 0, 255])))
            .collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert!(luns.disk(0).is_none());
    }

    #[test]
    fn a_single_disk_answers_every_lun_field() {
        let luns = Luns::single(1);
        let Outcome::Read(d) = luns.execute(0, &cdb(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0])) else {
            panic!()
        };
        assert_eq!(d, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(inquiry0(&luns, 0), 0x00);
        assert_eq!(inquiry0(&luns, flat_lun(7)), 0x00);
        assert!(luns.disk(0x1234).is_some());
    }
}
