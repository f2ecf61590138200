//! User memory for ioctl arguments, good and bad: a mapped read-write area
//! followed by a PROT_NONE guard page (for arguments that straddle into it), a
//! read-only area (readable by copy_from_user, not writable by copy_to_user),
//! and the addresses that are never valid (NULL, below mmap_min_addr, kernel,
//! non-canonical, past the end of user space).

use std::ptr;

/// Where an argument (or a nested buffer) is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ptr {
    /// Mapped read-write, 8-aligned.
    Valid,
    /// Mapped read-write, at an odd offset (1..=7): the ABI does not require
    /// alignment, so this must behave like `Valid`.
    Misaligned(u8),
    /// Mapped read-only: reading works, writing back faults.
    ReadOnly,
    /// Address 0.
    Null,
    /// A small address below `vm.mmap_min_addr`, never mapped.
    Low(u64),
    /// The PROT_NONE guard page.
    Guard,
    /// Starts mapped, but the last `n` bytes (n >= 1) lie in the guard page.
    Straddle(u32),
    /// A kernel address.
    Kernel(u64),
    /// A non-canonical address (neither user nor kernel).
    NonCanonical(u64),
    /// The last page below TASK_SIZE (a guard the kernel never maps).
    TaskEnd,
    /// Starts below the end of user space and ends above it.
    CrossTaskEnd,
}

/// Kernel addresses of x86-64 and arm64 (direct map, text, fixmap, the
/// vsyscall page, the very top).
pub const KERNEL_ADDRS: [u64; 6] = [
    0xffff_8880_0000_0000,
    0xffff_ffff_8100_0000,
    0xffff_ffff_ff60_0000,
    0xffff_0000_0800_0000,
    0xffff_ffff_ffff_f000,
    u64::MAX,
];
/// Non-canonical addresses on x86-64 (4- and 5-level paging) and arm64.
pub const NON_CANONICAL: [u64; 3] = [
    0x0000_8000_0000_0000,
    0x1234_5678_9abc_def0,
    0x8000_0000_0000_0000,
];
/// Unmapped low addresses.
pub const LOW_ADDRS: [u64; 4] = [1, 8, 0x1000, 0xfff0];
const TASK_END_PAGE: u64 = 0x7fff_ffff_f000;

impl Ptr {
    /// The kernel can read a struct placed here.
    pub fn readable(self) -> bool {
        matches!(self, Ptr::Valid | Ptr::Misaligned(_) | Ptr::ReadOnly)
    }

    /// The kernel can write a struct placed here.
    pub fn writable(self) -> bool {
        matches!(self, Ptr::Valid | Ptr::Misaligned(_))
    }

    /// Every class, with representative parameters (for exhaustive loops).
    pub fn all() -> Vec<Ptr> {
        let mut v = vec![
            Ptr::Valid,
            Ptr::Misaligned(1),
            Ptr::Misaligned(3),
            Ptr::ReadOnly,
            Ptr::Null,
            Ptr::Guard,
            Ptr::Straddle(1),
            Ptr::Straddle(8),
            Ptr::TaskEnd,
            Ptr::CrossTaskEnd,
        ];
        v.extend(LOW_ADDRS.iter().map(|&a| Ptr::Low(a)));
        v.extend(KERNEL_ADDRS.iter().map(|&a| Ptr::Kernel(a)));
        v.extend(NON_CANONICAL.iter().map(|&a| Ptr::NonCanonical(a)));
        v
    }

    /// Short text for the log.
    pub fn name(self) -> String {
        match self {
            Ptr::Valid => "valid".into(),
            Ptr::Misaligned(k) => format!("misaligned+{k}"),
            Ptr::ReadOnly => "read-only".into(),
            Ptr::Null => "NULL".into(),
            Ptr::Low(a) => format!("low {a:#x}"),
            Ptr::Guard => "guard page".into(),
            Ptr::Straddle(n) => format!("straddles guard by {n}"),
            Ptr::Kernel(a) => format!("kernel {a:#x}"),
            Ptr::NonCanonical(a) => format!("non-canonical {a:#x}"),
            Ptr::TaskEnd => "TASK_SIZE page".into(),
            Ptr::CrossTaskEnd => "crosses TASK_SIZE".into(),
        }
    }
}

const PAGE: usize = 4096;
const RW_PAGES: usize = 4;
const RO_PAGES: usize = 4;
/// Offset of `Valid` placements inside the read-write area.
const VALID_OFF: usize = 64;
/// Byte the read-write area is filled with before a placement, so what the
/// kernel wrote can be told from what it did not.
pub const CANARY: u8 = 0xa5;

/// One mapping: [rw: RW_PAGES][guard][ro: RO_PAGES][guard].
pub struct Region {
    base: *mut u8,
    len: usize,
}

// The region is only touched by the thread that owns it (moved, never shared).
unsafe impl Send for Region {}

impl Region {
    /// Maps a new region.
    pub fn new() -> std::io::Result<Region> {
        let len = (RW_PAGES + 1 + RO_PAGES + 1) * PAGE;
        // SAFETY: an anonymous private mapping we own.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let r = Region {
            base: base.cast(),
            len,
        };
        r.protect(r.guard(), PAGE, libc::PROT_NONE);
        r.protect(r.ro() + (RO_PAGES * PAGE) as u64, PAGE, libc::PROT_NONE);
        r.protect(r.ro(), RO_PAGES * PAGE, libc::PROT_READ);
        Ok(r)
    }

    fn protect(&self, addr: u64, len: usize, prot: libc::c_int) {
        // SAFETY: `addr..addr+len` lies inside our mapping.
        let rc = unsafe { libc::mprotect(addr as usize as *mut libc::c_void, len, prot) };
        assert_eq!(rc, 0, "mprotect");
    }

    fn rw(&self) -> u64 {
        self.base as u64
    }

    /// Address of the guard page after the read-write area.
    pub fn guard(&self) -> u64 {
        self.rw() + (RW_PAGES * PAGE) as u64
    }

    fn ro(&self) -> u64 {
        self.guard() + PAGE as u64
    }

    /// Largest buffer `place` accepts in the mapped classes.
    pub const fn capacity() -> usize {
        RW_PAGES * PAGE - VALID_OFF - 8
    }

    /// Fills the read-write area with [`CANARY`].
    pub fn poison(&mut self) {
        // SAFETY: the read-write area is mapped and ours.
        unsafe { ptr::write_bytes(self.base, CANARY, RW_PAGES * PAGE) };
    }

    /// Puts `bytes` where `p` says and returns the address to hand the kernel.
    /// The read-write area is poisoned first. For the unmapped classes nothing
    /// is written. `bytes` longer than [`Region::capacity`] are truncated.
    pub fn place(&mut self, p: Ptr, bytes: &[u8]) -> u64 {
        let bytes = &bytes[..bytes.len().min(Self::capacity())];
        let len = bytes.len() as u64;
        match p {
            Ptr::Valid | Ptr::Misaligned(_) => {
                self.poison();
                let off = VALID_OFF
                    + if let Ptr::Misaligned(k) = p {
                        usize::from(k)
                    } else {
                        0
                    };
                let at = self.rw() + off as u64;
                // SAFETY: `off + len` stays inside the read-write area (capacity).
                unsafe {
                    ptr::copy_nonoverlapping(bytes.as_ptr(), at as usize as *mut u8, bytes.len())
                };
                at
            }
            Ptr::ReadOnly => {
                self.protect(
                    self.ro(),
                    RO_PAGES * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                );
                // SAFETY: the read-only area is writable for this copy; fits.
                unsafe {
                    ptr::write_bytes(self.ro() as usize as *mut u8, CANARY, RO_PAGES * PAGE);
                    ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        self.ro() as usize as *mut u8,
                        bytes.len(),
                    )
                };
                self.protect(self.ro(), RO_PAGES * PAGE, libc::PROT_READ);
                self.ro()
            }
            Ptr::Straddle(n) => {
                self.poison();
                let n = u64::from(n).clamp(1, len.max(1));
                let at = self.guard() - len.saturating_sub(n);
                let mapped = (self.guard() - at) as usize;
                // SAFETY: the first `mapped` bytes lie in the read-write area.
                unsafe {
                    ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        at as usize as *mut u8,
                        mapped.min(bytes.len()),
                    )
                };
                at
            }
            Ptr::Null => 0,
            Ptr::Low(a) | Ptr::Kernel(a) | Ptr::NonCanonical(a) => a,
            Ptr::Guard => self.guard(),
            Ptr::TaskEnd => TASK_END_PAGE,
            Ptr::CrossTaskEnd => TASK_END_PAGE - (len / 2).max(1),
        }
    }

    /// The `len` bytes at `addr` if they lie wholly in the mapped areas.
    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let inside = |start: u64, size: usize| {
            addr >= start
                && addr
                    .checked_add(len as u64)
                    .is_some_and(|e| e <= start + size as u64)
        };
        let ok = inside(self.rw(), RW_PAGES * PAGE) || inside(self.ro(), RO_PAGES * PAGE);
        if !ok {
            return None;
        }
        let mut out = vec![0u8; len];
        // SAFETY: the range is mapped and readable (checked above).
        unsafe { ptr::copy_nonoverlapping(addr as usize as *const u8, out.as_mut_ptr(), len) };
        Some(out)
    }

    /// [`Region::read`] of a whole struct's `N` bytes.
    pub fn read_array<const N: usize>(&self, addr: u64) -> Option<[u8; N]> {
        self.read(addr, N)
            .map(|v| v.try_into().expect("read returns the length asked"))
    }

    /// Whether every byte of `[addr, end of the read-write area)` still holds
    /// the canary (the kernel wrote nothing beyond what it was allowed).
    pub fn canary_intact_from(&self, addr: u64) -> bool {
        let end = self.guard();
        if addr >= end || addr < self.rw() {
            return true;
        }
        self.read(addr, (end - addr) as usize)
            .is_some_and(|b| b.iter().all(|&x| x == CANARY))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: our mapping, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_land_where_promised() {
        let mut r = Region::new().unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        let a = r.place(Ptr::Valid, &data);
        assert_eq!(a % 8, 0);
        assert_eq!(r.read(a, 100).unwrap(), data);
        assert!(r.canary_intact_from(a + 100));
        let m = r.place(Ptr::Misaligned(3), &data);
        assert_eq!(m % 8, 3);
        assert_eq!(r.read(m, 100).unwrap(), data);
        let ro = r.place(Ptr::ReadOnly, &data);
        assert_eq!(r.read(ro, 100).unwrap(), data);
        let s = r.place(Ptr::Straddle(8), &data);
        assert_eq!(s + 100 - 8, r.guard());
        assert_eq!(r.read(s, 92).unwrap(), data[..92]);
        assert!(r.read(s, 100).is_none());
        assert_eq!(r.place(Ptr::Null, &data), 0);
        assert_eq!(r.place(Ptr::Guard, &data), r.guard());
        assert!(r.place(Ptr::CrossTaskEnd, &data) < TASK_END_PAGE);
    }

    #[test]
    fn bad_addresses_fault_in_the_kernel() {
        // A pipe write from each bad address must fail with EFAULT: the same
        // copy_from_user check the module relies on.
        let mut r = Region::new().unwrap();
        let (_rd, wr) = crate::sys::pipe().unwrap();
        use std::os::fd::AsRawFd;
        for p in Ptr::all() {
            let a = r.place(p, &[7u8; 64]);
            // SAFETY: write(2) with a raw address; the kernel checks it.
            let n = unsafe { libc::write(wr.as_raw_fd(), a as usize as *const libc::c_void, 64) };
            if p.readable() {
                assert_eq!(n, 64, "{}", p.name());
            } else if let Ptr::Straddle(k) = p {
                // write(2) may return the bytes before the fault.
                assert!(n == -1 || n == 64 - k as isize, "{}", p.name());
            } else {
                assert_eq!(n, -1, "{}", p.name());
                assert_eq!(crate::sys::last_errno(), libc::EFAULT, "{}", p.name());
            }
        }
    }
}
