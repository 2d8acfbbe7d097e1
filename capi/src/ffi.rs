//! The exported C functions: the crate's only `unsafe` code.
//!
//! Each function turns its pointers into references and slices with the
//! helpers at the top (a NULL or misaligned pointer is an error, never a
//! dereference), then calls the safe code of `handles.rs` inside
//! [`guard`], which catches panics and records the error message. The
//! caller's side of each contract (a pointer with a length points to that
//! many elements; a handle came from its `_new` and was not freed) is
//! stated in the header, on each function.

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

/// A new head with weights drawn like `nn.Linear`'s init from `seed`.
/// `margins` is NULL (every class gets `config->margin`) or `margins_len`
/// = C per-class margins. On success `*out` is a head the caller frees
/// with `arcface_head_free`; on error `*out` is unchanged.
///
/// # Safety
/// Non-NULL pointers point to what their names and lengths say.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_new(
    config: *const ArcfaceHeadConfig,
    margins: *const f64,
    margins_len: usize,
    seed: u64,
    out: *mut *mut ArcfaceHead,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let cfg = *get(config, "config")?;
        let m = match margins.is_null() {
            true => None,
            false => Some(slice(margins, margins_len, "margins")?),
        };
        let cfg = cfg.to_config(m)?;
        new_handle(out, || {
            Ok(ArcfaceHead(arcface::ArcFaceHead::new(cfg, seed)?))
        })
    })
}

/// A new head with the given weights ((C·K)×D row-major, `weight_len`
/// elements), e.g. `head.norm_product.weight` from PyTorch. Freed with
/// `arcface_head_free`.
///
/// # Safety
/// Non-NULL pointers point to what their names and lengths say.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_from_weight(
    config: *const ArcfaceHeadConfig,
    weight: *const f32,
    weight_len: usize,
    out: *mut *mut ArcfaceHead,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let cfg = get(config, "config")?.to_config(None)?;
        let w = slice(weight, weight_len, "weight")?;
        new_handle(out, || {
            Ok(ArcfaceHead(arcface::ArcFaceHead::from_weight(cfg, w)?))
        })
    })
}

/// Loads a head saved by `arcface_head_save` (or the `arcface` program): a
/// safetensors file mmpretrain loads too. Freed with `arcface_head_free`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated UTF-8 string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_load(
    path: *const c_char,
    out: *mut *mut ArcfaceHead,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let p = c_path(path, "path")?;
        new_handle(out, || Ok(ArcfaceHead(arcface::load_head(p)?)))
    })
}

/// Saves the head (weights as f32 under `head.norm_product.weight`, and its
/// configuration), atomically: on error the file is as it was.
///
/// # Safety
/// `head` is NULL or a live head; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_save(
    head: *const ArcfaceHead,
    path: *const c_char,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        Ok(arcface::save_head(
            &get(head, "head")?.0,
            c_path(path, "path")?,
        )?)
    })
}

/// Frees a head; NULL does nothing. The handle must not be used after.
///
/// # Safety
/// `head` is NULL or a head from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_free(head: *mut ArcfaceHead) {
    // SAFETY: the caller's contract (above)
    let _ = guard(|| unsafe {
        free_handle(head);
        Ok(())
    });
}

/// The head's shape: C, K and D into the non-NULL outputs (NULL outputs
/// are skipped).
///
/// # Safety
/// `head` is NULL or live; non-NULL outputs are writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_shape(
    head: *const ArcfaceHead,
    num_classes: *mut usize,
    num_subcenters: *mut usize,
    in_channels: *mut usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (c, k, d) = get(head, "head")?.shape();
        for (p, v) in [(num_classes, c), (num_subcenters, k), (in_channels, d)] {
            if !p.is_null() {
                put(p, v, "shape output")?;
            }
        }
        Ok(())
    })
}

/// Copies the weights ((C·K)×D row-major) into `out` (`out_len` = C·K·D).
///
/// # Safety
/// `head` is NULL or live; `out` NULL or `out_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_weight(
    head: *const ArcfaceHead,
    out: *mut f32,
    out_len: usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe { get(head, "head")?.copy_weight(slice_mut(out, out_len, "out")?) })
}

/// Sets one margin per class (`len` = C, finite, radians).
///
/// # Safety
/// `head` is NULL or live and not in use elsewhere; `margins` NULL or `len` doubles.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_set_margins(
    head: *mut ArcfaceHead,
    margins: *const f64,
    len: usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe { get_mut(head, "head")?.set_margins(slice(margins, len, "margins")?) })
}

/// Sets margins from the class counts of `labels` (`n` labels in 0..C),
/// upstream's `SetAdaptiveMarginsHook` with `params`.
///
/// # Safety
/// `head` is NULL or live and not in use elsewhere; `labels` NULL or `n`
/// values; `params` NULL or a struct.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_set_adaptive_margins(
    head: *mut ArcfaceHead,
    labels: *const i64,
    n: usize,
    params: *const ArcfaceAdaptiveMargins,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let p = *get(params, "params")?;
        get_mut(head, "head")?.set_adaptive_margins(slice(labels, n, "labels")?, p)
    })
}

/// The enrolment defaults: seed 0, 50 k-means iterations, the head's
/// shared margin, class weight 1.
#[no_mangle]
pub extern "C" fn arcface_enrolment_default() -> ArcfaceEnrolment {
    ArcfaceEnrolment::defaults()
}

/// Adds one class to the head by weight imprinting from `len` / D
/// exemplar embeddings (row-major, `len` a positive multiple of D): with
/// K = 1 its row is the normalised mean of the normalised exemplars, with
/// K > 1 the sub-centres come from a seeded spherical k-means. The new
/// class's index (the old C) goes to `*class_index`. Workspaces and
/// optimisers of the head then need `arcface_workspace_fit` and
/// `arcface_optimizer_fit`.
///
/// # Safety
/// `head` is NULL or live and not in use elsewhere; other non-NULL pointers
/// point to what their names and lengths say.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_enrol(
    head: *mut ArcfaceHead,
    embeddings: *const f32,
    len: usize,
    how: *const ArcfaceEnrolment,
    class_index: *mut usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (h, how) = (get_mut(head, "head")?, *get(how, "how")?);
        let x = slice(embeddings, len, "embeddings")?;
        if class_index.is_null() {
            return Err(Fail::null("class_index"));
        }
        put(class_index, h.enrol(x, how)?, "class_index")
    })
}

/// Retires `len` classes (mask semantics: their rows stay; their logits
/// are -inf, they are never predicted, take no part in a training step's
/// softmax, and a training label naming one is `ARCFACE_BAD_LABEL`).
/// All or nothing: an unknown, repeated or already retired class is
/// `ARCFACE_BAD_CLASS` and retires none.
///
/// # Safety
/// `head` is NULL or live and not in use elsewhere; `classes` NULL or `len`
/// values.
#[no_mangle]
pub unsafe extern "C" fn arcface_head_retire(
    head: *mut ArcfaceHead,
    classes: *const usize,
    len: usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe { get_mut(head, "head")?.retire(slice(classes, len, "classes")?) })
}

/// Grows a workspace to `head`'s shape after an enrolment (a no-op when it
/// fits).
///
/// # Safety
/// `ws` is NULL or live and not in use elsewhere; `head` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn arcface_workspace_fit(
    ws: *mut ArcfaceWorkspace,
    head: *const ArcfaceHead,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe { get_mut(ws, "ws")?.fit(get(head, "head")?) })
}

/// Grows an optimiser's state to `head`'s shape after an enrolment (zero
/// momentum and moments for the new rows).
///
/// # Safety
/// `opt` is NULL or live and not in use elsewhere; `head` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn arcface_optimizer_fit(
    opt: *mut ArcfaceOptimizer,
    head: *const ArcfaceHead,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe { get_mut(opt, "opt")?.fit(get(head, "head")?) })
}

/// A workspace for `head`'s shape and batches of 1..=`capacity` samples.
/// Freed with `arcface_workspace_free`.
///
/// # Safety
/// `head` is NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_workspace_new(
    head: *const ArcfaceHead,
    capacity: usize,
    out: *mut *mut ArcfaceWorkspace,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let h = get(head, "head")?;
        new_handle(out, || ArcfaceWorkspace::new(h, capacity))
    })
}

/// Frees a workspace; NULL does nothing.
///
/// # Safety
/// `ws` is NULL or a workspace from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn arcface_workspace_free(ws: *mut ArcfaceWorkspace) {
    // SAFETY: the caller's contract (above)
    let _ = guard(|| unsafe {
        free_handle(ws);
        Ok(())
    });
}

/// The weight gradient of the workspace's last `arcface_forward_backward`
/// ((C·K)×D row-major), borrowed: `*grad` stays valid until the next call
/// that uses `ws` or frees it. `*len` is 0 before any training step.
///
/// # Safety
/// `ws` is NULL or live; `grad` and `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_workspace_grad_weight(
    ws: *const ArcfaceWorkspace,
    grad: *mut *const f32,
    len: *mut usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let g = get(ws, "ws")?.0.grad_weight();
        if len.is_null() {
            return Err(Fail::null("len"));
        }
        put(grad, g.as_ptr(), "grad")?;
        put(len, g.len(), "len")
    })
}

/// One training forward and backward on `n` samples: `features` (N×D
/// row-major, `features_len` = N·D) and `labels` (`n` values in 0..C). The
/// loss goes to `*loss`, ∂W stays in `ws` (see
/// `arcface_workspace_grad_weight`, `arcface_optimizer_step`), and ∂X is
/// copied to `grad_features` (`grad_features_len` = N·D) unless it is NULL.
///
/// # Safety
/// `head` and `ws` are NULL or live (`ws` not in use elsewhere); other
/// non-NULL pointers point to what their names and lengths say.
#[no_mangle]
pub unsafe extern "C" fn arcface_forward_backward(
    head: *const ArcfaceHead,
    ws: *mut ArcfaceWorkspace,
    features: *const f32,
    features_len: usize,
    labels: *const i64,
    n: usize,
    loss: *mut f32,
    grad_features: *mut f32,
    grad_features_len: usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (h, w) = (get(head, "head")?, get_mut(ws, "ws")?);
        let (x, y) = (
            slice(features, features_len, "features")?,
            slice(labels, n, "labels")?,
        );
        if loss.is_null() {
            return Err(Fail::null("loss"));
        }
        let gx = opt_slice_mut(grad_features, grad_features_len, "grad_features")?;
        put(loss, h.forward_backward(w, x, y, gx)?, "loss")
    })
}

/// The training loss of `n` samples without gradients, into `*loss`.
///
/// # Safety
/// As `arcface_forward_backward`.
#[no_mangle]
pub unsafe extern "C" fn arcface_loss(
    head: *const ArcfaceHead,
    ws: *mut ArcfaceWorkspace,
    features: *const f32,
    features_len: usize,
    labels: *const i64,
    n: usize,
    loss: *mut f32,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (h, w) = (get(head, "head")?, get_mut(ws, "ws")?);
        let x = slice(features, features_len, "features")?;
        let y = slice(labels, n, "labels")?;
        if loss.is_null() {
            return Err(Fail::null("loss"));
        }
        put(loss, h.loss(w, x, y)?, "loss")
    })
}

/// Inference logits S·max_k cos (no margin) of N = `features_len` / D
/// samples into `out` (`out_len` = N·C, row-major).
///
/// # Safety
/// As `arcface_forward_backward`; `out` NULL or `out_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn arcface_logits(
    head: *const ArcfaceHead,
    ws: *mut ArcfaceWorkspace,
    features: *const f32,
    features_len: usize,
    out: *mut f32,
    out_len: usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (h, w) = (get(head, "head")?, get_mut(ws, "ws")?);
        let x = slice(features, features_len, "features")?;
        h.logits(w, x, slice_mut(out, out_len, "out")?)
    })
}

/// The `k` best classes of each of N = `features_len` / D samples, best
/// first (lower class first on ties), with their softmax scores:
/// `classes` and `scores` each hold `out_len` = N·k values.
///
/// # Safety
/// `head` is NULL or live; other non-NULL pointers point to what their
/// names and lengths say.
#[no_mangle]
pub unsafe extern "C" fn arcface_predict_topk(
    head: *const ArcfaceHead,
    features: *const f32,
    features_len: usize,
    k: usize,
    classes: *mut i64,
    scores: *mut f32,
    out_len: usize,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let h = get(head, "head")?;
        let x = slice(features, features_len, "features")?;
        let c = slice_mut(classes, out_len, "classes")?;
        h.predict_topk(x, k, c, slice_mut(scores, out_len, "scores")?)
    })
}

/// An optimiser for `head`'s shape (zero state). Freed with
/// `arcface_optimizer_free`.
///
/// # Safety
/// `config` NULL or a struct; `head` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_optimizer_new(
    config: *const ArcfaceOptimizerConfig,
    head: *const ArcfaceHead,
    out: *mut *mut ArcfaceOptimizer,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (c, h) = (*get(config, "config")?, get(head, "head")?);
        new_handle(out, || ArcfaceOptimizer::new(c, h))
    })
}

/// Frees an optimiser; NULL does nothing.
///
/// # Safety
/// `opt` is NULL or an optimiser from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn arcface_optimizer_free(opt: *mut ArcfaceOptimizer) {
    // SAFETY: the caller's contract (above)
    let _ = guard(|| unsafe {
        free_handle(opt);
        Ok(())
    });
}

/// One update of `head`'s weights at learning rate `lr` from the gradient
/// of `ws`'s last `arcface_forward_backward`. All or nothing: if a weight
/// or state value would not be finite, nothing changes.
///
/// # Safety
/// The handles are NULL or live, and `opt` and `head` not in use elsewhere.
#[no_mangle]
pub unsafe extern "C" fn arcface_optimizer_step(
    opt: *mut ArcfaceOptimizer,
    head: *mut ArcfaceHead,
    ws: *const ArcfaceWorkspace,
    lr: f64,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (o, h) = (get_mut(opt, "opt")?, get_mut(head, "head")?);
        o.step(h, get(ws, "ws")?, lr)
    })
}

/// As `arcface_optimizer_step` with a caller's gradient (`grad_len` = C·K·D).
///
/// # Safety
/// As `arcface_optimizer_step`; `grad` NULL or `grad_len` floats.
#[no_mangle]
pub unsafe extern "C" fn arcface_optimizer_step_grad(
    opt: *mut ArcfaceOptimizer,
    head: *mut ArcfaceHead,
    grad: *const f32,
    grad_len: usize,
    lr: f64,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (o, h) = (get_mut(opt, "opt")?, get_mut(head, "head")?);
        o.step_grad(h, slice(grad, grad_len, "grad")?, lr)
    })
}

/// A trainer on a copy of `head` (the caller keeps and still owns `head`).
/// Freed with `arcface_trainer_free`.
///
/// # Safety
/// `head` NULL or live; `config` NULL or a struct; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_trainer_new(
    head: *const ArcfaceHead,
    config: *const ArcfaceTrainConfig,
    out: *mut *mut ArcfaceTrainer,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let (h, c) = (get(head, "head")?, *get(config, "config")?);
        new_handle(out, || ArcfaceTrainer::new(h, c))
    })
}

/// Frees a trainer; NULL does nothing.
///
/// # Safety
/// `t` is NULL or a trainer from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn arcface_trainer_free(t: *mut ArcfaceTrainer) {
    // SAFETY: the caller's contract (above)
    let _ = guard(|| unsafe {
        free_handle(t);
        Ok(())
    });
}

/// Trains on `n` samples (`features`: N×D, `features_len` = N·D; `labels`:
/// N values in 0..C), evaluating on the held-out set when `val_features` is
/// not NULL (`val_n` samples). After each epoch `callback` (may be NULL) is
/// called with the epoch's numbers and `user_data`; returning nonzero stops
/// the run. `*report` (may be NULL) receives the summary. Every datum is
/// checked before the first step. If a step diverges, the status is
/// `ARCFACE_DIVERGED` and the trainer's head is as before that step. The
/// callback must not call functions on this trainer.
///
/// # Safety
/// `t` is NULL or live and not in use elsewhere; other non-NULL pointers
/// point to what their names and lengths say.
#[no_mangle]
pub unsafe extern "C" fn arcface_trainer_fit(
    t: *mut ArcfaceTrainer,
    features: *const f32,
    features_len: usize,
    labels: *const i64,
    n: usize,
    val_features: *const f32,
    val_features_len: usize,
    val_labels: *const i64,
    val_n: usize,
    callback: ArcfaceEpochCallback,
    user_data: *mut c_void,
    report: *mut ArcfaceTrainReport,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let t = get_mut(t, "trainer")?;
        let train = (
            slice(features, features_len, "features")?,
            slice(labels, n, "labels")?,
        );
        let val = match val_features.is_null() {
            true => None,
            false => Some((
                slice(val_features, val_features_len, "val_features")?,
                slice(val_labels, val_n, "val_labels")?,
            )),
        };
        let r = t.fit(train, val, callback, user_data)?;
        match report.is_null() {
            true => Ok(()),
            false => put(report, r, "report"),
        }
    })
}

/// A copy of the trainer's head, owned by the caller (free it with
/// `arcface_head_free`).
///
/// # Safety
/// `t` is NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn arcface_trainer_head(
    t: *const ArcfaceTrainer,
    out: *mut *mut ArcfaceHead,
) -> ArcfaceStatus {
    // SAFETY: every pointer's contract is the caller's (above)
    guard(|| unsafe {
        let t = get(t, "trainer")?;
        new_handle(out, || Ok(t.head()))
    })
}
