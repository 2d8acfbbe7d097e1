//! The workspace's exported calls and the step's: forward and backward,
//! loss, logits, predict.

use super::*;

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
