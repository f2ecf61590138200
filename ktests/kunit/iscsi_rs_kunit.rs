//! iscsi_rs_kunit: the KUnit test module. It compiles the protocol core and the
//! `src/sys` wrappers from the same sources as iscsi_rs.ko (with the kernel's own
//! flags and allocator) and runs `cases.rs` through the C glue's suite when it is
//! loaded. The shipped iscsi_rs.ko contains none of this (ktests/check-module.sh).
//!
//! Built by the same Kbuild when the kernel has CONFIG_KUNIT; `--cfg iscsi_rs_kunit`
//! (set for this object only) turns on the test hooks inside `src/sys`.

use kernel::prelude::*;

#[path = "../../src/proto/mod.rs"]
pub mod proto;

// Only the pieces the cases exercise are used here; the rest of the wrappers is
// compiled (so it is type-checked with this crate's cfg too) but unused.
#[allow(dead_code)]
#[path = "../../src/sys/mod.rs"]
mod sys;

#[path = "cases.rs"]
mod kunit_tests;

module! {
    type: IscsiRsKunit,
    name: "iscsi_rs_kunit",
    author: "iscsi-rs developers",
    description: "KUnit tests of iscsi_rs (not for production kernels)",
    license: "GPL",
}

struct IscsiRsKunit;

impl kernel::Module for IscsiRsKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The suite itself runs from the module's .kunit_test_suites section,
        // which KUnit executes when the module is loaded.
        Ok(IscsiRsKunit)
    }
}
