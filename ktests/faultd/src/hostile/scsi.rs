//! The hostile target's SCSI side while it behaves: one LUN backed by a RAM disk
//! of 512-byte blocks, answering just what the Linux SCSI scan, sd and a `dd`
//! need (INQUIRY with VPD 0x00/0x80/0x83, REPORT LUNS, TEST UNIT READY, READ
//! CAPACITY 10/16, MODE SENSE 6/10, READ/WRITE 10/16, SYNCHRONIZE CACHE); anything
//! else is CHECK CONDITION, ILLEGAL REQUEST. CDB layouts are SBC-3/SPC-4's.

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

/// The RAM disk, shared by every connection so data survives a reconnect.
pub struct Disk {
    data: Mutex<Vec<u8>>,
    blocks: u64,
}

impl Disk {
    /// A zeroed disk of `mb` MiB.
    pub fn new(mb: u64) -> Disk {
        let bytes = mb.max(1) * 1024 * 1024;
        Disk {
            data: Mutex::new(vec![0u8; bytes as usize]),
            blocks: bytes / BLOCK,
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
            0xa0 => {
                // REPORT LUNS: one 8-byte entry, LUN 0.
                let mut d = vec![0u8; 16];
                d[3] = 8;
                alloc(6..10, d)
            }
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
            if cdb[2] != 0 {
                return None;
            }
            // Standard data: direct-access block device, SPC-4, CmdQue.
            let mut d = vec![0u8; 36];
            d[2] = 0x06;
            d[3] = 0x02;
            d[4] = 31;
            d[7] = 0x02;
            d[8..16].copy_from_slice(b"ISCSIRS ");
            d[16..32].copy_from_slice(b"HOSTILE TARGET  ");
            d[32..36].copy_from_slice(b"0001");
            return Some(d);
        }
        let page = |code: u8, body: &[u8]| {
            let mut d = vec![0, code];
            d.extend_from_slice(&(body.len() as u16).to_be_bytes());
            d.extend_from_slice(body);
            d
        };
        match cdb[2] {
            0x00 => Some(page(0x00, &[0x00, 0x80, 0x83])),
            0x80 => Some(page(0x80, b"HOSTILE00001")),
            0x83 => {
                // One designator: T10 vendor ID (type 1), ASCII, LUN-associated.
                let id = b"ISCSIRS hostile-lun0";
                let mut desig = vec![0x02, 0x01, 0x00, id.len() as u8];
                desig.extend_from_slice(id);
                Some(page(0x83, &desig))
            }
            _ => None,
        }
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
}
