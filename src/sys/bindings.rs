//! Output of the module's own bindgen pass (see `Kbuild`): the SCSI, misc-device
//! and helper items that `kernel::bindings` of 6.12 lacks.
#![allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    unreachable_pub,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

use kernel::ffi;

include!("bindings_generated.rs");
