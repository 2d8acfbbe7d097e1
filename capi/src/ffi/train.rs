//! The optimiser's and the trainer's exported calls.

use super::*;

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
