//! iscsi_rs: an iSCSI initiator (RFC 7143) for Linux, in Rust. Crate root: the
//! module declaration, the list of modules, and load/unload. Nothing else.

use kernel::c_str;
use kernel::prelude::*;

pub mod proto;

mod conn;
mod ctl;
mod host;
mod recovery;
mod session;
mod sys;

module! {
    type: IscsiRs,
    name: "iscsi_rs",
    author: "iscsi-rs developers",
    description: "iSCSI initiator (RFC 7143) in Rust",
    license: "GPL",
}

struct IscsiRs {
    control: Pin<KBox<sys::chardev::MiscDevice<ctl::Control>>>,
}

impl kernel::Module for IscsiRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let ops = ctl::Control::new(module)?;
        let control = sys::chardev::MiscDevice::register(c_str!("iscsi_rs"), module, ops)?;
        pr_info!("loaded, control device /dev/iscsi_rs\n");
        Ok(IscsiRs { control })
    }
}

impl Drop for IscsiRs {
    fn drop(&mut self) {
        // No ioctl can run: an open file pins the module. Log every session out
        // before the device, template and workqueue go.
        self.control.ops().shutdown();
        pr_info!("unloaded\n");
    }
}
