//! The exported C functions: the crate's only `unsafe` code.
//!
//! Each function turns its pointers into references and slices with the
//! helpers of this file (a NULL or misaligned pointer is an error, never a
//! dereference), then calls the safe code of `handles.rs` inside
//! [`guard`], which catches panics and records the error message. The
//! caller's side of each contract (a pointer with a length points to that
//! many elements; a handle came from its `_new` and was not freed) is
//! stated in the header, on each function. This file holds the helpers and
//! the defaults; `head.rs` the head's calls, `step.rs` the workspace's and
//! the step's, `train.rs` the optimiser's and the trainer's.

mod head;
mod step;
mod train;

pub use head::*;
pub use step::*;
pub use train::*;

use crate::config::{
    ArcfaceAdaptiveMargins, ArcfaceEnrolment, ArcfaceHeadConfig, ArcfaceOptimizerConfig,
    ArcfaceTrainConfig,
};
use crate::handles::{
    ArcfaceEpochCallback, ArcfaceHead, ArcfaceOptimizer, ArcfaceTrainReport, ArcfaceTrainer,
    ArcfaceWorkspace,
};
use crate::status::{guard, last_error_ptr, ArcfaceStatus, Fail, Res};
use std::ffi::{c_char, c_void, CStr};

/// `len` elements at `p`, or an error if `p` is NULL or misaligned.
///
/// # Safety
/// A non-NULL `p` points to `len` initialised `T` that nothing writes to
/// during `'a`.
unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Res<&'a [T]> {
    if p.is_null() || !p.is_aligned() {
        return Err(Fail::null(what));
    }
    if len
        .checked_mul(size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(Fail::length(
            what,
            isize::MAX as usize / size_of::<T>(),
            len,
        ));
    }
    // SAFETY: non-NULL and aligned (checked), `len` elements within one
    // allocation and unwritten during 'a (the caller's contract), and the
    // size fits in isize (checked)
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// `len` writable elements at `p`, or an error if `p` is NULL or misaligned.
///
/// # Safety
/// A non-NULL `p` points to `len` initialised `T` that nothing else reads or
/// writes during `'a`.
unsafe fn slice_mut<'a, T>(p: *mut T, len: usize, what: &str) -> Res<&'a mut [T]> {
    // SAFETY: the caller's contract is `slice`'s, and more
    unsafe { slice(p, len, what) }?;
    // SAFETY: as in `slice`, and no other reference to the elements exists
    // during 'a (the caller's contract)
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// `None` for NULL, else the slice (optional outputs).
///
/// # Safety
/// As [`slice_mut`].
unsafe fn opt_slice_mut<'a, T>(p: *mut T, len: usize, what: &str) -> Res<Option<&'a mut [T]>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract
    unsafe { slice_mut(p, len, what) }.map(Some)
}

/// The object behind a handle or a struct pointer.
///
/// # Safety
/// A non-NULL `p` points to a live `T` that nothing writes to during `'a`.
unsafe fn get<'a, T>(p: *const T, what: &str) -> Res<&'a T> {
    if !p.is_aligned() {
        return Err(Fail::null(what));
    }
    // SAFETY: aligned (checked); `as_ref` maps NULL to None; live and
    // unwritten during 'a (the caller's contract)
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(what))
}

/// The object behind a handle, mutably.
///
/// # Safety
/// A non-NULL `p` points to a live `T` that nothing else uses during `'a`.
unsafe fn get_mut<'a, T>(p: *mut T, what: &str) -> Res<&'a mut T> {
    if !p.is_aligned() {
        return Err(Fail::null(what));
    }
    // SAFETY: aligned (checked); NULL gives None; no other reference during
    // 'a (the caller's contract)
    unsafe { p.as_mut() }.ok_or_else(|| Fail::null(what))
}

/// Writes `v` through an output pointer.
///
/// # Safety
/// A non-NULL `p` points to writable memory for one `T`.
unsafe fn put<T>(p: *mut T, v: T, what: &str) -> Res {
    if p.is_null() || !p.is_aligned() {
        return Err(Fail::null(what));
    }
    // SAFETY: non-NULL, aligned (checked) and writable (the caller's
    // contract); `write` does not read or drop the old value
    unsafe { p.write(v) };
    Ok(())
}

/// A NUL-terminated UTF-8 path.
///
/// # Safety
/// A non-NULL `p` points to a NUL-terminated string unchanged during `'a`.
unsafe fn c_path<'a>(p: *const c_char, what: &str) -> Res<&'a str> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: non-NULL (checked), NUL-terminated and unchanged (the caller's
    // contract)
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| {
        Fail::new(
            ArcfaceStatus::ArcfaceIo,
            format!("{what} is not valid UTF-8: {}", s.to_string_lossy()),
        )
    })
}

/// Hands a new object to C as a handle, checking the output pointer first
/// (so that nothing is leaked when it is NULL).
///
/// # Safety
/// A non-NULL `out` points to writable memory for one pointer.
unsafe fn new_handle<T>(out: *mut *mut T, make: impl FnOnce() -> Res<T>) -> Res {
    if out.is_null() || !out.is_aligned() {
        return Err(Fail::null("out"));
    }
    let raw = Box::into_raw(Box::new(make()?));
    // SAFETY: `out` is non-NULL, aligned (checked) and writable (the
    // caller's contract)
    unsafe { out.write(raw) };
    Ok(())
}

/// Frees a handle made by [`new_handle`]; NULL does nothing.
///
/// # Safety
/// `p` is NULL or a handle from `new_handle` not freed before.
unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: `p` came from `Box::into_raw` and is freed once (the
        // caller's contract)
        drop(unsafe { Box::from_raw(p) });
    }
}

/// The message of the calling thread's last failed call ("" if none). The
/// string is owned by the library and stays valid until the next call on
/// the same thread that fails; copy it to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn arcface_last_error() -> *const c_char {
    last_error_ptr()
}

/// The library's version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn arcface_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Upstream's defaults for a head of `num_classes` classes and
/// `in_channels` features: K = 1, S = 64, m = 0.5, cross-entropy, mean.
#[no_mangle]
pub extern "C" fn arcface_head_config_default(
    num_classes: usize,
    in_channels: usize,
) -> ArcfaceHeadConfig {
    ArcfaceHeadConfig::defaults(num_classes, in_channels)
}

/// Upstream's `SetAdaptiveMarginsHook` defaults (0.05, 0.5, -0.25).
#[no_mangle]
pub extern "C" fn arcface_adaptive_margins_default() -> ArcfaceAdaptiveMargins {
    arcface::AdaptiveMargins::default().into()
}

/// The defaults of the optimiser `kind` (`ARCFACE_OPTIMIZER_SGD`: momentum
/// 0.9, weight decay 1e-4; `ARCFACE_OPTIMIZER_ADAMW`: PyTorch's) into `*out`.
///
/// # Safety
/// `out` is NULL (an error) or points to writable memory for the struct.
#[no_mangle]
pub unsafe extern "C" fn arcface_optimizer_config_default(
    kind: u32,
    out: *mut ArcfaceOptimizerConfig,
) -> ArcfaceStatus {
    // SAFETY: `out`'s contract is the caller's (above)
    guard(|| unsafe { put(out, ArcfaceOptimizerConfig::defaults(kind)?, "out") })
}

/// The trainer's defaults (SGD at lr 0.1, cosine, 20 epochs of 128).
#[no_mangle]
pub extern "C" fn arcface_train_config_default() -> ArcfaceTrainConfig {
    ArcfaceTrainConfig::defaults()
}

/// The enrolment defaults: seed 0, 50 k-means iterations, the head's
/// shared margin, class weight 1.
#[no_mangle]
pub extern "C" fn arcface_enrolment_default() -> ArcfaceEnrolment {
    ArcfaceEnrolment::defaults()
}
