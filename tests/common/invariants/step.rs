//! The invariants of a training step and the calls around it (inference,
//! SGD, margin updates) on a decoded [`StepCase`].

use super::step_case::StepCase;
use arcface::{AdaptiveMargins, ArcFaceHead, Batch, Error, HeadConfig, Margins, Real, Workspace};

pub fn check_step(case: &StepCase) {
    if case.f64_path {
        check_step_t::<f64>(case)
    } else {
        check_step_t::<f32>(case)
    }
}

fn to_t<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn all_finite<T: Real>(v: &[T]) -> bool {
    v.iter().all(|x| x.is_finite_())
}

fn bits<T: Real>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// What a caller can see of a workspace: gradients and per-sample losses.
fn snapshot<T: Real>(ws: &Workspace<T>) -> [Vec<u64>; 3] {
    [
        bits(ws.grad_features()),
        bits(ws.grad_weight()),
        bits(ws.sample_losses()),
    ]
}

/// An error about finite values that `T` cannot carry (a row norm, a loss,
/// a gradient): `Error::Overflow`, or a `NonFinite` naming a computed
/// result rather than an input array. Allowed for valid input.
pub fn is_overflow_error(e: &Error) -> bool {
    match e {
        Error::Overflow { .. } => true,
        Error::NonFinite { what, .. } => {
            !["features", "weight", "soft_targets", "sample_weights"].contains(what)
        }
        _ => false,
    }
}

/// Invariants of a training step, for `T` = f32 or f64:
///
/// * construction: an error only for a documented reason (bad shape,
///   non-finite weight, invalid configuration, or a value finite in f64
///   that overflows `T`); a head otherwise.
/// * `forward_backward` either returns a typed error and leaves everything a
///   caller can see unchanged (the head's weights and margins, and the
///   workspace's gradients and per-sample losses, bit for bit, from the
///   priming step before it), or a finite loss with finite gradients of the
///   right shapes (N×D, CK×D, N). One exception: when finite data makes a
///   loss or gradient beyond `T`'s range, the `NonFinite` error may instead
///   leave the workspace cleared (no per-sample losses, no feature
///   gradients, zero weight gradients), never partial or stale results.
///   An invalid batch (empty, wrong length,
///   label outside `0..C` (D12), NaN/∞ datum, `use_soft` without soft
///   targets (D4), foreign workspace) is always an error; a valid one is
///   `Ok`, or an overflow error naming a computed result (never `Ok(∞)`).
/// * `loss` returns the same value, bit for bit, as `forward_backward`.
/// * `logits`, `logits_train`, `predict`: finite results of the right
///   shapes or an error; `logits_into` leaves `out` alone on error.
/// * `clean` at 75° and at the case's learning rate taken as a threshold:
///   the invariants of [`super::clean::check_clean`].
/// * `sgd_step`, `set_margins`, `set_adaptive_margins`: on error the weights
///   and margins are unchanged bit for bit; on success they are finite.
pub fn check_step_t<T: Real>(case: &StepCase) {
    let Some(mut head) = build_head::<T>(case) else {
        return;
    };
    let (n, d, c) = (case.n, case.d, case.c);

    // prime the workspace so that "nothing written" is observable
    let mut ws = if case.foreign_workspace {
        let other = ArcFaceHead::<T>::new(HeadConfig::new(c + 1, d).with_subcenters(case.k), 0)
            .expect("valid config");
        Workspace::new(&other, case.ws_capacity)
    } else {
        Workspace::new(&head, case.ws_capacity)
    };
    let prime_x = vec![T::ONE; d];
    let mut prime_t = vec![T::ZERO; c];
    prime_t[0] = T::ONE;
    let prime = Batch::new(&prime_x, &[0]).with_soft_targets(&prime_t);
    let _ = head.forward_backward(&prime, &mut ws);

    let x: Vec<T> = to_t(&case.features);
    let soft: Option<Vec<T>> = case.soft.as_deref().map(to_t);
    let sw: Option<Vec<T>> = case.sample_weights.as_deref().map(to_t);
    let mut batch = Batch::new(&x, &case.labels);
    if let Some(s) = &soft {
        batch = batch.with_soft_targets(s);
    }
    if let Some(s) = &sw {
        batch = batch.with_sample_weights(s);
    }
    let invalid = n == 0
        || x.len() != n * d
        || case.foreign_workspace
        || !all_finite(&x)
        || case.labels.iter().any(|&l| l < 0 || l >= c as i64)
        || match &soft {
            Some(s) => s.len() != n * c || !all_finite(s),
            None => case.loss.use_soft,
        }
        || sw.as_ref().is_some_and(|s| s.len() != n || !all_finite(s));

    // cleaning at the paper's threshold and at an arbitrary one
    super::clean::check_clean(&head, &x, &case.labels, 75.0);
    super::clean::check_clean(&head, &x, &case.labels, case.lr);
    let stepped = check_forward_backward(case, &head, &batch, &mut ws, invalid);
    if !case.foreign_workspace {
        check_inference(case, &head, &x, &mut ws);
    }
    check_updates(case, &mut head, &ws, stepped);
}

/// Construction: a head, or an error only for a documented reason (bad
/// shape, non-finite weight, invalid configuration, or a value finite in
/// f64 that overflows `T`). `None` when construction failed as allowed.
pub fn build_head<T: Real>(case: &StepCase) -> Option<ArcFaceHead<T>> {
    let (d, c, k) = (case.d, case.c, case.k);
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(case.scale)
        .with_margins(Margins::PerClass(case.margins.clone()))
        .with_easy_margin(case.easy)
        .with_loss(case.loss.clone())
        .with_margin_grad(case.grad);
    let w: Vec<T> = to_t(&case.weight);
    let head = ArcFaceHead::<T>::from_weight(cfg.clone(), &w);
    let cfg_ok = cfg.validate().is_ok();
    match head {
        Ok(h) => {
            assert!(cfg_ok, "a head from an invalid config: {case:?}");
            assert!(all_finite(&w) && w.len() == c * k * d);
            Some(h.with_threads(case.threads))
        }
        Err(e) => {
            // beyond the documented checks, a value finite in f64 may not
            // fit `T`: margins times the scale, loss or class weights, a
            // weight row whose norm overflows
            let documented = !cfg_ok
                || !all_finite(&w)
                || is_overflow_error(&e)
                || matches!(
                    e,
                    Error::InvalidConfig {
                        field: "margins" | "loss_weight" | "class_weight" | "scale",
                        ..
                    }
                );
            assert!(documented, "unexpected construction error {e:?}: {case:?}");
            None
        }
    }
}

/// `forward_backward` on the case's batch, after a priming step: an error
/// (always, for an `invalid` batch) that leaves the workspace's results as
/// they were (or cleared, on overflow), or a finite loss and gradients of
/// the right shapes that `loss` reproduces bit for bit. The weights never
/// change. Returns whether the step succeeded.
fn check_forward_backward<T: Real>(
    case: &StepCase,
    head: &ArcFaceHead<T>,
    batch: &Batch<'_, T>,
    ws: &mut Workspace<T>,
    invalid: bool,
) -> bool {
    let (n, d, c, k) = (case.n, case.d, case.c, case.k);
    let before = snapshot(ws);
    let w_before = bits(head.weight());
    let r = head.forward_backward(batch, ws);
    match &r {
        Err(e) => {
            assert!(
                invalid || is_overflow_error(e),
                "error {e:?} for a valid batch: {case:?}"
            );
            assert!(!e.to_string().is_empty());
            let cleared = ws.grad_features().is_empty()
                && ws.sample_losses().is_empty()
                && ws.grad_weight().iter().all(|&g| g == T::ZERO);
            assert!(
                snapshot(ws) == before || (is_overflow_error(e) && cleared),
                "an error wrote into the workspace ({e:?}): {case:?}"
            );
        }
        Ok(loss) => {
            assert!(!invalid, "Ok for an invalid batch: {case:?}");
            assert!(loss.is_finite_(), "finite data gave loss {loss}: {case:?}");
            assert_eq!(ws.grad_features().len(), n * d);
            assert_eq!(ws.grad_weight().len(), c * k * d);
            assert_eq!(ws.sample_losses().len(), n);
            assert!(
                all_finite(ws.grad_features()) && all_finite(ws.grad_weight()),
                "finite data gave non-finite gradients (loss {loss}): {case:?}"
            );
            assert!(all_finite(ws.sample_losses()), "{case:?}");
            let again = head.loss(batch, ws).expect("loss after a good step");
            assert_eq!(
                again.to_f64().to_bits(),
                loss.to_f64().to_bits(),
                "loss() and forward_backward() disagree: {case:?}"
            );
        }
    }
    assert_eq!(bits(head.weight()), w_before, "a step changed the weights");
    r.is_ok()
}

/// `logits`, `logits_train`, `predict`: finite results of the right shapes
/// or an error; `logits_into` leaves `out` alone on error.
fn check_inference<T: Real>(
    case: &StepCase,
    head: &ArcFaceHead<T>,
    x: &[T],
    ws: &mut Workspace<T>,
) {
    let (n, d, c) = (case.n, case.d, case.c);
    match head.logits(x) {
        Ok(z) => {
            assert_eq!(z.len(), (x.len() / d) * c);
            assert!(all_finite(&z), "non-finite logits: {case:?}");
        }
        Err(e) => assert!(
            x.is_empty() || !x.len().is_multiple_of(d) || !all_finite(x) || is_overflow_error(&e),
            "logits error {e:?}: {case:?}"
        ),
    }
    if let Ok(z) = head.logits_train(x, &case.labels) {
        assert!(all_finite(&z), "non-finite training logits: {case:?}");
    }
    if let Ok(p) = head.predict(x) {
        assert!(p.labels.iter().all(|&l| l < c));
        assert!(
            p.scores
                .iter()
                .all(|s| s.is_finite_() && *s >= T::ZERO && s.to_f64() <= 1.0 + 1e-6),
            "scores outside [0, 1]: {case:?}"
        );
    }
    let sentinel = T::from_f64(-12345.0);
    let mut out = vec![sentinel; n * c];
    if head.logits_into(x, ws, &mut out).is_err() {
        assert!(
            out.iter().all(|&v| v == sentinel),
            "logits_into wrote on error"
        );
    }
}

/// `sgd_step`, `set_margins`, `set_adaptive_margins`: refused updates
/// change nothing; accepted ones leave finite weights and margins. The
/// gradient is the step's when it succeeded (`stepped`), else `lr` in
/// every entry.
fn check_updates<T: Real>(
    case: &StepCase,
    head: &mut ArcFaceHead<T>,
    ws: &Workspace<T>,
    stepped: bool,
) {
    let (d, c, k) = (case.d, case.c, case.k);
    let grad: Vec<T> = if stepped {
        ws.grad_weight().to_vec()
    } else {
        vec![T::from_f64(case.lr); c * k * d]
    };
    let w_before = bits(head.weight());
    match head.sgd_step(&grad, T::from_f64(case.lr)) {
        Err(_) => assert_eq!(bits(head.weight()), w_before, "a refused sgd_step wrote"),
        Ok(()) => assert!(all_finite(head.weight())),
    }
    let w_before = bits(head.weight());
    assert!(head.sgd_step(&grad[..grad.len() - 1], T::ONE).is_err());
    assert_eq!(bits(head.weight()), w_before);

    let m_before = head.margins().to_vec();
    match head.set_margins(&case.new_margins) {
        Ok(()) => assert_eq!(head.margins(), &case.new_margins[..]),
        Err(_) => assert_eq!(head.margins(), &m_before[..], "a refused set_margins wrote"),
    }
    let m_before = head.margins().to_vec();
    match head.set_adaptive_margins(&case.adaptive_labels, AdaptiveMargins::default()) {
        Ok(()) => assert!(head.margins().iter().all(|m| m.is_finite())),
        Err(_) => assert_eq!(
            head.margins(),
            &m_before[..],
            "a refused adaptive update wrote"
        ),
    }
    assert_eq!(bits(head.weight()), w_before);
}
