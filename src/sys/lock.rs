//! [`SpinLockBh`]: a spinlock that also disables softirqs on this CPU while
//! held (`spin_lock_bh`), for state shared between process context and the
//! socket callbacks, which run in softirq. The kernel crate of 6.12 offers
//! only the plain spinlock, which would deadlock against a softirq taking the
//! same lock on the same CPU. It is a backend of the kernel's `Lock`, so
//! `CondVar` waits work on its guards (the lock is dropped, and softirqs
//! enabled, while asleep).

use kernel::ffi::c_char;
use kernel::sync::lock::{Backend, Lock};

use super::bindings;

/// A spinlock taken with softirqs disabled.
pub(crate) type SpinLockBh<T> = Lock<T, SpinLockBhBackend>;

/// Creates a [`SpinLockBh`] with a lockdep class of its own for this call site.
macro_rules! new_spinlock_bh {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::sys::lock::SpinLockBh::new(
            $inner,
            ::kernel::c_str!($name),
            ::kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_spinlock_bh;

/// The `spin_lock_bh` backend.
pub(crate) struct SpinLockBhBackend;

// SAFETY: `spinlock_t` gives mutual exclusion; `lock` and `unlock` pair
// `spin_lock_bh` with `spin_unlock_bh` on the same lock, and `relock` (the
// default) takes it the same way.
unsafe impl Backend for SpinLockBhBackend {
    type State = bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(ptr: *mut Self::State, name: *const c_char, key: *mut bindings::lock_class_key) {
        // SAFETY: the caller guarantees `ptr` is valid for writes and `name`
        // and `key` live forever.
        unsafe { bindings::iscsi_rs_spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller guarantees the lock was initialised.
        unsafe { bindings::iscsi_rs_spin_lock_bh(ptr) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: the caller owns the lock, taken by `lock` above.
        unsafe { bindings::iscsi_rs_spin_unlock_bh(ptr) }
    }
}

/// KUnit: the lock disables softirqs while held, also after a `CondVar`
/// wait on its guard gave it up and took it back, and excludes a second
/// taker (a `try`-free check: the value written under it is seen after).
#[cfg(iscsi_rs_kunit)]
pub(crate) fn kunit_spinlock_bh() -> core::result::Result<(), &'static str> {
    use kernel::prelude::*;
    use kernel::sync::{new_condvar, Arc, CondVar, CondVarTimeoutResult};

    #[pin_data]
    struct Shared {
        #[pin]
        lock: SpinLockBh<u32>,
        #[pin]
        cv: CondVar,
    }

    let check = |c: bool, m: &'static str| if c { Ok(()) } else { Err(m) };
    // SAFETY: reads this CPU's preempt count.
    let bh_off = || unsafe { bindings::iscsi_rs_kunit_bh_disabled() };
    let shared = Arc::pin_init(
        pin_init!(Shared {
            lock <- crate::sys::lock::new_spinlock_bh!(7u32, "kunit::spinlock_bh"),
            cv <- new_condvar!("kunit::spinlock_bh::cv"),
        }),
        GFP_KERNEL,
    )
    .map_err(|_| "no memory")?;
    check(!bh_off(), "softirqs off before locking")?;
    {
        let mut g = shared.lock.lock();
        check(bh_off(), "softirqs on while the lock is held")?;
        check(*g == 7, "initial value lost")?;
        *g = 8;
        let r = shared.cv.wait_interruptible_timeout(&mut g, 1);
        check(
            matches!(r, CondVarTimeoutResult::Timeout),
            "a wait nobody notifies did not time out",
        )?;
        check(bh_off(), "softirqs on after the wait took the lock back")?;
        *g += 1;
    }
    check(!bh_off(), "softirqs still off after unlocking")?;
    check(*shared.lock.lock() == 9, "writes under the lock lost")?;
    Ok(())
}
