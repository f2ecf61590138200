//! Bridge from the KUnit C glue (`ktests/kunit/glue.c`) to the safe Rust test
//! functions in `ktests/kunit/`: 6.12 has no `#[kunit_tests]`, so C owns the suite
//! and one parameterised case, and asks Rust for the count, names and results.
//! Compiled only into the test module iscsi_rs_kunit.ko (`--cfg iscsi_rs_kunit`).

use kernel::ffi::c_char;

use crate::kunit_tests::CASES;

/// Number of Rust KUnit cases.
#[no_mangle]
extern "C" fn iscsi_rs_kunit_count() -> usize {
    CASES.len()
}

/// NUL-terminated name of case `index`, or NULL past the end.
#[no_mangle]
extern "C" fn iscsi_rs_kunit_name(index: usize) -> *const c_char {
    match CASES.get(index) {
        Some(case) => case.0.as_char_ptr(),
        None => core::ptr::null(),
    }
}

/// Runs case `index`; on failure copies a NUL-terminated message into `msg`
/// (capacity `len`) and returns false.
///
/// # Safety
///
/// `msg` points at `len` writable bytes (the C glue passes a stack buffer).
#[no_mangle]
unsafe extern "C" fn iscsi_rs_kunit_run(index: usize, msg: *mut u8, len: usize) -> bool {
    let Some(case) = CASES.get(index) else {
        return false;
    };
    match (case.1)() {
        Ok(()) => true,
        Err(text) => {
            if !msg.is_null() && len > 0 {
                // SAFETY: the caller guarantees `msg` is valid for `len` bytes.
                let out = unsafe { core::slice::from_raw_parts_mut(msg, len) };
                let n = text.len().min(len - 1);
                out[..n].copy_from_slice(&text.as_bytes()[..n]);
                out[n] = 0;
            }
            false
        }
    }
}
