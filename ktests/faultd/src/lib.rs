//! iscsi-faultd as a library: the modules behind the binary, public so the
//! integration tests can drive an iSCSI session with the same framing code.

pub mod control;
pub mod hostile;
pub mod log;
pub mod proxy;
pub mod wire;
