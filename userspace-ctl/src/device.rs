//! The kernel module's control device, `/dev/iscsi_rs`: its path, and the check
//! that turns a missing device into "module not loaded" before any ioctl is tried
//! (the ioctls themselves are in `handoff.rs`).

use std::path::Path;

use crate::exit::Error;

/// Misc device registered by iscsi_rs.ko.
pub const DEVICE_PATH: &str = "/dev/iscsi_rs";

/// `Err(ModuleNotLoaded)` when `dev` does not exist. Any other stat failure is
/// left for the later open() to report with its real cause.
pub fn require_module(dev: &Path) -> Result<(), Error> {
    match dev.try_exists() {
        Ok(false) => Err(Error::ModuleNotLoaded),
        Ok(true) | Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_means_module_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("iscsi_rs");
        let e = require_module(&dev).unwrap_err();
        assert!(matches!(e, Error::ModuleNotLoaded));
        assert!(e.to_string().contains("insmod iscsi_rs.ko"));
        std::fs::write(&dev, b"").unwrap();
        assert!(require_module(&dev).is_ok());
    }
}
