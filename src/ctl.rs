//! The `/dev/iscsi_rs` ioctls: iscsictl's entry into the kernel. Session
//! creation and socket handoff arrive with the data path; until then every
//! command is unknown.

use kernel::error::{code, Result};

use crate::sys::chardev::ControlOps;

/// Handler of the control device's ioctls.
pub(crate) struct Control;

impl ControlOps for Control {
    fn ioctl(&self, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(code::ENOTTY)
    }
}
