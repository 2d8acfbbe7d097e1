//! The invariants of the class lifecycle (enrolment, retirement, removal)
//! on a decoded [`StepCase`]: its head, and its features as the exemplars
//! of a new class (zero rows, tiny and huge values, duplicates and
//! negations, NaN and infinity included).

use super::step_case::StepCase;
use arcface::{ArcFaceHead, Batch, Enrolment, Error, HeadConfig, Margins, Real, Workspace};

fn to_t<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn bits<T: Real>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// Everything a caller can see of a head's classes.
fn state<T: Real>(h: &ArcFaceHead<T>) -> (Vec<u64>, Vec<u64>, HeadConfig, Vec<usize>) {
    let m: Vec<u64> = h.margins().iter().map(|v| v.to_bits()).collect();
    (bits(h.weight()), m, h.config().clone(), h.retired())
}

pub fn check_lifecycle(case: &StepCase) {
    if case.f64_path {
        check_lifecycle_t::<f64>(case)
    } else {
        check_lifecycle_t::<f32>(case)
    }
}

/// For `T` = f32 or f64:
///
/// * `enrol` either fails with a typed error and leaves the head's weights,
///   margins, configuration and retired list unchanged bit for bit (always,
///   for no exemplar, a wrong length, a NaN or infinity, or a zero row), or
///   returns index C, with C + 1 classes, the old rows and margins
///   unchanged bit for bit and K finite new rows; a fitted workspace then
///   takes a step on the new class's label.
/// * `retire`: class 0 of a head with C ≥ 2 retires; its logits are −∞,
///   `predict` never returns it, a label naming it is an error that leaves
///   the workspace as it was; retiring it again, or an unknown class,
///   changes nothing.
/// * `remove_classes(&[0])` keeps the other rows, bit for bit, in order.
pub fn check_lifecycle_t<T: Real>(case: &StepCase) {
    let (d, c, k) = (case.d, case.c, case.k);
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(case.scale)
        .with_margins(Margins::PerClass(case.margins.clone()))
        .with_loss(case.loss.clone());
    let Ok(mut head) = ArcFaceHead::<T>::from_weight(cfg, &to_t(&case.weight)) else {
        return;
    };
    let head = {
        head = head.with_threads(case.threads);
        check_enrol(case, head)
    };
    if let Some(head) = head {
        check_retire(case, head);
    }
}

/// The enrolment invariant; the head after a successful enrolment.
fn check_enrol<T: Real>(case: &StepCase, mut head: ArcFaceHead<T>) -> Option<ArcFaceHead<T>> {
    let (d, c, k) = (case.d, case.c, case.k);
    let x: Vec<T> = to_t(&case.features);
    let uniform = head.margins().iter().all(|&m| m == head.margins()[0]);
    let how = Enrolment {
        seed: case.lr.to_bits(),
        margin: (!uniform).then_some(0.25),
        ..Enrolment::default()
    };
    let rows = x.len() / d;
    let invalid = rows == 0
        || !x.len().is_multiple_of(d)
        || x.iter().any(|v| !v.is_finite_())
        || x.chunks(d).any(|r| r.iter().all(|&v| v == T::ZERO));
    let before = state(&head);
    match head.enrol(&x, &how) {
        Err(e) => {
            let allowed = invalid
                || matches!(
                    e,
                    Error::CancellingEmbeddings { .. }
                        | Error::Overflow { .. }
                        | Error::InvalidConfig {
                            field: "margins",
                            ..
                        }
                );
            assert!(allowed, "enrol refused valid exemplars ({e:?}): {case:?}");
            assert!(!e.to_string().is_empty());
            assert!(
                state(&head) == before,
                "a failed enrol changed the head: {case:?}"
            );
            None
        }
        Ok(new) => {
            assert!(!invalid, "enrol accepted invalid exemplars: {case:?}");
            assert_eq!(new, c);
            assert_eq!(head.config().num_classes, c + 1);
            let w = head.weight();
            assert_eq!(w.len(), (c + 1) * k * d);
            assert!(
                bits(&w[..c * k * d]) == before.0,
                "enrol moved old rows: {case:?}"
            );
            assert!(w[c * k * d..].iter().all(|v| v.is_finite_()));
            let m = head.margins();
            let shared = f64::from_bits(before.1[0]);
            assert_eq!(m[c].to_bits(), how.margin.unwrap_or(shared).to_bits());
            assert!(m[..c]
                .iter()
                .map(|v| v.to_bits())
                .eq(before.1.iter().copied()));
            // a fitted workspace trains the new class at once
            let mut ws = Workspace::new(&head, 1);
            // the same thread policy: the class pass's split depends on it
            let small = ArcFaceHead::<T>::new(HeadConfig::new(c, d).with_subcenters(k), 0)
                .expect("valid config")
                .with_threads(case.threads);
            let mut grown = Workspace::new(&small, 1);
            grown.fit(&head).expect("a workspace grows to the head");
            let label = [new as i64];
            let r1 = head.forward_backward(&Batch::new(&x[..d], &label), &mut ws);
            let r2 = head.forward_backward(&Batch::new(&x[..d], &label), &mut grown);
            match (r1, r2) {
                (Ok(a), Ok(b)) => assert_eq!(a.to_f64().to_bits(), b.to_f64().to_bits()),
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => {
                    panic!("a grown workspace differs from a new one ({a:?}, {b:?}): {case:?}")
                }
            }
            Some(head)
        }
    }
}

/// The retirement and removal invariants (C ≥ 2 after enrolment).
fn check_retire<T: Real>(case: &StepCase, mut head: ArcFaceHead<T>) {
    let (d, k) = (case.d, case.k);
    let c = head.config().num_classes;
    let before = state(&head);
    assert!(matches!(
        head.retire(&[c + 3]),
        Err(Error::UnknownClass { .. })
    ));
    assert!(matches!(
        head.retire(&[0, 0]),
        Err(Error::DuplicateClass { .. })
    ));
    assert!(state(&head) == before);
    head.retire(&[0]).expect("class 0 of several retires");
    assert!(matches!(
        head.retire(&[0]),
        Err(Error::AlreadyRetired { class: 0 })
    ));
    assert_eq!(head.retired(), vec![0]);
    let x: Vec<T> = to_t(&case.features);
    let x = &x[..d];
    if let Ok(z) = head.logits(x) {
        assert!(
            z[0] == T::from_f64(f64::NEG_INFINITY),
            "a retired class has a logit: {case:?}"
        );
        let p = head.predict(x).expect("logits worked");
        assert_ne!(p.labels[0], 0);
        assert!(p.topk(c).iter().all(|t| t.iter().all(|&(cl, _)| cl != 0)));
        let mut ws = Workspace::new(&head, 1);
        let _ = head.forward_backward(&Batch::new(x, &[1]), &mut ws);
        let seen = (bits(ws.grad_weight()), bits(ws.sample_losses()));
        let e = head.forward_backward(&Batch::new(x, &[0]), &mut ws);
        assert!(matches!(
            e,
            Err(Error::RetiredLabel {
                sample: 0,
                class: 0
            })
        ));
        assert!((bits(ws.grad_weight()), bits(ws.sample_losses())) == seen);
    }
    let old = head.weight().to_vec();
    let map = head
        .remove_classes(&[0])
        .expect("one class of several is removed");
    assert_eq!(map[0], None);
    assert!(map[1..].iter().enumerate().all(|(i, &m)| m == Some(i)));
    assert!(bits(head.weight()) == bits(&old[k * d..]));
    assert!(head.retired().is_empty());
}
