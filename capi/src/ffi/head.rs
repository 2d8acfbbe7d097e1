//! The head's exported calls: make, load, save, free, read, set margins,
//! enrol and retire classes.

use super::*;

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
