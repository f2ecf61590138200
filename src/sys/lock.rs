//! Locks the 6.12 kernel crate lacks:
//! - [`SpinLockBh`]: a spinlock that also disables softirqs on this CPU while
//!   held (`spin_lock_bh`), for state shared between process context and the
//!   socket callbacks, which run in softirq. The kernel crate offers only the
//!   plain spinlock, which would deadlock against a softirq taking the same
//!   lock on the same CPU. It is a backend of the kernel's `Lock`, so
//!   `CondVar` waits work on its guards (the lock is dropped, and softirqs
//!   enabled, while asleep).
//! - [`TryMutex`]: a mutex that can also be tried (`mutex_trylock`), for a
//!   submitter that must not wait behind the current sender.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use kernel::ffi::c_char;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::lock::{Backend, Lock};
use kernel::sync::LockClassKey;
use kernel::types::Opaque;

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

/// A sleeping mutex with `try_lock`. Not for softirq or hard-IRQ context.
#[pin_data]
pub(crate) struct TryMutex<T> {
    #[pin]
    mutex: Opaque<kernel::bindings::mutex>,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands `data` to one holder at a time, so the value may
// move to and be used from any thread that takes it: `T: Send` suffices.
unsafe impl<T: Send> Send for TryMutex<T> {}
// SAFETY: as above; shared references only reach `data` through a guard.
unsafe impl<T: Send> Sync for TryMutex<T> {}

/// Creates a [`TryMutex`] with a lockdep class of its own for this call site.
macro_rules! new_try_mutex {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::sys::lock::TryMutex::new(
            $inner,
            ::kernel::c_str!($name),
            ::kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_try_mutex;

impl<T> TryMutex<T> {
    /// A mutex holding `t`, of lockdep class `key`.
    pub(crate) fn new(t: T, name: &'static CStr, key: &'static LockClassKey) -> impl PinInit<Self> {
        // `LockClassKey` is a transparent wrapper of an opaque
        // `lock_class_key`, and its `as_ptr` is private to the kernel crate.
        let key = core::ptr::from_ref(key)
            .cast::<kernel::bindings::lock_class_key>()
            .cast_mut();
        pin_init!(Self {
            data: UnsafeCell::new(t),
            // SAFETY: `slot` is valid for writes while the closure runs; `name`
            // and `key` are static, as lockdep requires.
            mutex <- Opaque::ffi_init(|slot| unsafe {
                kernel::bindings::__mutex_init(slot, name.as_char_ptr(), key)
            }),
        })
    }

    /// Takes the mutex, sleeping while another task holds it.
    pub(crate) fn lock(&self) -> TryMutexGuard<'_, T> {
        // SAFETY: the mutex was initialised by `new` (the object exists only
        // once pinned and initialised) and is never moved.
        unsafe { kernel::bindings::mutex_lock(self.mutex.get()) };
        TryMutexGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the mutex if nobody holds it; never sleeps.
    pub(crate) fn try_lock(&self) -> Option<TryMutexGuard<'_, T>> {
        // SAFETY: as in `lock`.
        if unsafe { kernel::bindings::mutex_trylock(self.mutex.get()) } == 0 {
            return None;
        }
        Some(TryMutexGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}

/// A held [`TryMutex`]; unlocks when dropped, in the task that locked it.
pub(crate) struct TryMutexGuard<'a, T> {
    lock: &'a TryMutex<T>,
    /// A mutex must be released by the task that took it.
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for TryMutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard's existence means this task holds the mutex, so
        // nobody else reaches `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for TryMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only
        // reference through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for TryMutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task took the mutex when it made the guard and has
        // not released it since.
        unsafe { kernel::bindings::mutex_unlock(self.lock.mutex.get()) };
    }
}

/// KUnit: a held [`TryMutex`] cannot be tried, a free one can, and what was
/// written under one holder is seen by the next.
#[cfg(iscsi_rs_kunit)]
pub(crate) fn kunit_try_mutex() -> core::result::Result<(), &'static str> {
    use kernel::sync::Arc;

    let check = |c: bool, m: &'static str| if c { Ok(()) } else { Err(m) };
    let m = Arc::pin_init(
        crate::sys::lock::new_try_mutex!(1u32, "kunit::try_mutex"),
        GFP_KERNEL,
    )
    .map_err(|_| "no memory")?;
    {
        let mut g = m.lock();
        check(*g == 1, "initial value lost")?;
        *g = 2;
        check(m.try_lock().is_none(), "try_lock took a held mutex")?;
    }
    {
        let Some(mut g) = m.try_lock() else {
            return Err("try_lock failed on a free mutex");
        };
        check(*g == 2, "write under the first holder lost")?;
        *g = 3;
        check(m.try_lock().is_none(), "try_lock took a tried mutex")?;
    }
    check(*m.lock() == 3, "write under the tried holder lost")?;
    Ok(())
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
