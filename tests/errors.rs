//! Bad configuration and bad data are typed errors that name what was wrong
//! and where; nothing panics and nothing is written on failure.

use arcface::{
    AdaptiveMargins, ArcFaceHead, Batch, Error, HeadConfig, LabelSmooth, LossConfig, Margins,
    Reduction, SmoothMode, Workspace,
};

fn head(c: usize, d: usize, k: usize) -> ArcFaceHead<f32> {
    ArcFaceHead::new(HeadConfig::new(c, d).with_subcenters(k), 3).unwrap()
}

fn field(e: Error) -> &'static str {
    match e {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn configuration_errors_name_the_field() {
    let bad = |cfg: HeadConfig| ArcFaceHead::<f32>::new(cfg, 0).unwrap_err();
    assert_eq!(field(bad(HeadConfig::new(0, 4))), "num_classes"); // D11
    assert_eq!(field(bad(HeadConfig::new(3, 0))), "in_channels"); // D11
    assert_eq!(
        field(bad(HeadConfig::new(3, 4).with_subcenters(0))),
        "num_subcenters"
    );
    assert_eq!(
        field(bad(HeadConfig::new(3, 4).with_scale(f64::INFINITY))),
        "scale"
    );
    assert_eq!(
        field(bad(HeadConfig::new(3, 4).with_loss(
            LossConfig::cross_entropy().with_loss_weight(f64::NAN)
        ))),
        "loss_weight"
    );
    assert_eq!(
        field(bad(HeadConfig::new(3, 4).with_loss(
            LossConfig::cross_entropy().with_class_weight(vec![1.0; 2])
        ))),
        "class_weight"
    );
    assert_eq!(
        field(bad(HeadConfig::new(3, 4).with_loss(
            LossConfig::cross_entropy().with_class_weight(vec![1.0, f64::NAN, 1.0])
        ))),
        "class_weight"
    );
    assert_eq!(
        field(bad(
            HeadConfig::new(3, 4).with_loss(LossConfig::label_smooth(1.0))
        )),
        "label_smooth_val"
    );
    assert_eq!(
        field(bad(
            HeadConfig::new(3, 4).with_loss(LossConfig::label_smooth(-0.1))
        )),
        "label_smooth_val"
    );
    let mut ls = LossConfig::label_smooth(0.1);
    ls.label_smooth = Some(LabelSmooth {
        label_smooth_val: 0.1,
        mode: SmoothMode::Original,
        num_classes: Some(4),
    });
    assert_eq!(
        field(bad(HeadConfig::new(3, 4).with_loss(ls))),
        "num_classes"
    );
    // margins: wrong length, non-finite (D7), and too large for f32 at this scale
    assert!(matches!(
        bad(HeadConfig::new(3, 4).with_margins(Margins::PerClass(vec![0.5; 2]))),
        Error::Shape {
            what: "margins",
            expected: 3,
            got: 2
        }
    ));
    assert!(matches!(
        bad(HeadConfig::new(3, 4).with_margins(Margins::PerClass(vec![0.5, f64::NAN, 0.1]))),
        Error::NonFiniteMargin { class: 1, .. }
    ));
    assert_eq!(
        field(bad(
            HeadConfig::new(3, 4).with_margins(Margins::Uniform(1e37))
        )),
        "margins"
    );
}

/// Whether an error is the one a bad batch must give.
type Check = Box<dyn Fn(&Error) -> bool>;

/// Bad batches of the features `x` (2×3) for a head of 4 classes, each with
/// the error it must give. A table of cases, hence its length.
fn bad_batches(x: &[f32]) -> Vec<(Batch<'_, f32>, Check)> {
    vec![
        (
            Batch::new(x, &[1, 4]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::LabelOutOfRange {
                        sample: 1,
                        label: 4,
                        num_classes: 4
                    }
                )
            }),
        ),
        (
            Batch::new(x, &[-1, 0]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::LabelOutOfRange {
                        sample: 0,
                        label: -1,
                        ..
                    }
                )
            }),
        ),
        (
            Batch::new(x, &[1]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::Shape {
                        what: "features",
                        expected: 3,
                        got: 6
                    }
                )
            }),
        ),
        (
            Batch::new(&x[..0], &[]),
            Box::new(|e| matches!(e, Error::EmptyBatch)),
        ),
        (
            Batch::new(x, &[0, 1]).with_soft_targets(&[0.5; 7]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::Shape {
                        what: "soft_targets",
                        ..
                    }
                )
            }),
        ),
        (
            Batch::new(x, &[0, 1]).with_soft_targets(&[
                0.5,
                0.5,
                0.0,
                0.0,
                0.0,
                f32::NAN,
                0.0,
                1.0,
            ]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::NonFinite {
                        what: "soft_targets",
                        row: 1,
                        col: 1
                    }
                )
            }),
        ),
        (
            Batch::new(x, &[0, 1]).with_sample_weights(&[1.0]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::Shape {
                        what: "sample_weights",
                        ..
                    }
                )
            }),
        ),
        (
            Batch::new(x, &[0, 1]).with_sample_weights(&[1.0, f32::INFINITY]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::NonFinite {
                        what: "sample_weights",
                        row: 1,
                        ..
                    }
                )
            }),
        ),
    ]
}

/// The bad batches run through one primed workspace, so that "nothing
/// written" covers every one of them.
#[test]
fn data_errors_name_the_sample_and_write_nothing() {
    let h = head(4, 3, 2);
    let mut ws = Workspace::new(&h, 4);
    let x = [0.5f32, -1.0, 2.0, 1.0, 1.0, 0.0];
    h.forward_backward(&Batch::new(&x, &[1, 3]), &mut ws)
        .unwrap();
    let gf = ws.grad_features().to_vec();
    let gw = ws.grad_weight().to_vec();
    let losses = ws.sample_losses().to_vec();
    let w = h.weight().to_vec();

    for (b, ok) in &bad_batches(&x) {
        let e = h.forward_backward(b, &mut ws).unwrap_err();
        assert!(ok(&e), "unexpected error {e:?}");
        assert!(!e.to_string().is_empty());
    }
    let xbad = [0.5f32, -1.0, 2.0, 1.0, f32::NAN, 0.0];
    let e = h
        .forward_backward(&Batch::new(&xbad, &[0, 1]), &mut ws)
        .unwrap_err();
    assert_eq!(
        e,
        Error::NonFinite {
            what: "features",
            row: 1,
            col: 1
        }
    );
    assert!(e.to_string().contains("row 1, column 1"), "{e}");
    // nothing written by any failed call
    assert_eq!(ws.grad_features(), &gf[..]);
    assert_eq!(ws.grad_weight(), &gw[..]);
    assert_eq!(ws.sample_losses(), &losses[..]);
    assert_eq!(h.weight(), &w[..]);
    // the inference entry points check the same way
    assert!(matches!(
        h.logits(&x[..5]),
        Err(Error::Shape {
            what: "features",
            ..
        })
    ));
    assert!(matches!(
        h.logits_train(&x, &[0, 9]),
        Err(Error::LabelOutOfRange { sample: 1, .. })
    ));
    assert!(matches!(
        h.predict(&xbad),
        Err(Error::NonFinite {
            what: "features",
            row: 1,
            ..
        })
    ));
}

#[test]
fn use_soft_without_soft_targets_is_an_error() {
    // D4: upstream raises when N != C and silently computes garbage when N == C
    let h = ArcFaceHead::<f64>::new(
        HeadConfig::new(2, 2).with_loss(LossConfig::cross_entropy().with_use_soft(true)),
        0,
    )
    .unwrap();
    let mut ws = Workspace::new(&h, 2);
    let x = [1.0, 0.0, 0.0, 1.0];
    assert_eq!(
        h.forward_backward(&Batch::new(&x, &[0, 1]), &mut ws)
            .unwrap_err(),
        Error::MissingSoftTargets
    );
    let t = [0.2, 0.8, 1.0, 0.0];
    assert!(h
        .forward_backward(&Batch::new(&x, &[0, 1]).with_soft_targets(&t), &mut ws)
        .is_ok());
}

#[test]
fn weights_errors_leave_the_head_unchanged() {
    let mut h = head(2, 2, 1);
    let w = h.weight().to_vec();
    assert!(matches!(
        h.set_weight(&[1.0, 2.0, 3.0]),
        Err(Error::Shape {
            what: "weight",
            expected: 4,
            got: 3
        })
    ));
    assert_eq!(
        h.set_weight(&[1.0, 2.0, f32::NAN, 0.0]),
        Err(Error::NonFinite {
            what: "weight",
            row: 1,
            col: 0
        })
    );
    assert_eq!(h.weight(), &w[..]);
    // an SGD step that would overflow is refused whole
    let g = [0.0, 0.0, f32::MAX, 0.0];
    assert!(matches!(
        h.sgd_step(&g, -10.0),
        Err(Error::NonFinite {
            what: "weight",
            row: 1,
            col: 0
        })
    ));
    assert_eq!(h.weight(), &w[..]);
    // an in-place update that leaves a NaN poisons later calls until fixed
    let e = h.update_weight(|w| w[3] = f32::NAN).unwrap_err();
    assert_eq!(
        e,
        Error::NonFinite {
            what: "weight",
            row: 1,
            col: 1
        }
    );
    let mut ws = Workspace::new(&h, 1);
    assert!(h
        .forward_backward(&Batch::new(&[1.0, 0.0], &[0]), &mut ws)
        .is_err());
    assert!(h.logits(&[1.0, 0.0]).is_err());
    h.set_weight(&w).unwrap();
    assert!(h
        .forward_backward(&Batch::new(&[1.0, 0.0], &[0]), &mut ws)
        .is_ok());
}

#[test]
fn workspace_of_another_shape_is_refused() {
    let a = head(3, 4, 1);
    let b = head(3, 5, 1);
    let mut ws = Workspace::new(&b, 2);
    assert!(matches!(
        a.forward_backward(&Batch::new(&[0.0; 4], &[0]), &mut ws),
        Err(Error::InvalidConfig {
            field: "workspace",
            ..
        })
    ));
}

#[test]
fn workspace_grows_for_a_larger_batch() {
    let h = head(3, 2, 2);
    let mut ws = Workspace::new(&h, 1);
    let x = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    h.forward_backward(&Batch::new(&x, &[0, 1, 2]), &mut ws)
        .unwrap();
    assert!(ws.capacity() >= 3);
    assert_eq!(ws.grad_features().len(), 6);
}

#[test]
fn adaptive_margin_errors() {
    let p = AdaptiveMargins::default();
    assert!(matches!(
        p.compute(&[], 3),
        Err(Error::AdaptiveMargins { .. })
    ));
    assert!(matches!(
        p.compute(&[0, 3], 3),
        Err(Error::LabelOutOfRange {
            sample: 1,
            label: 3,
            ..
        })
    ));
    assert!(matches!(
        AdaptiveMargins {
            power: f64::NAN,
            ..p
        }
        .compute(&[0], 1),
        Err(Error::AdaptiveMargins { .. })
    ));
    // D5: equal counts give margin_max, not NaN
    assert_eq!(p.compute(&[0, 1, 2], 3).unwrap(), vec![0.5; 3]);
    // huge powers overflow: a clear error, not NaN margins
    assert!(AdaptiveMargins { power: 1e300, ..p }
        .compute(&[0, 0, 1], 2)
        .is_err());
    let mut h = head(3, 2, 1);
    let before = h.margins().to_vec();
    assert!(h.set_adaptive_margins(&[0, 7], p).is_err());
    assert_eq!(h.margins(), &before[..]);
}

#[test]
fn reductions_relate_as_documented() {
    // Mean = Sum / N and None's per-sample values sum to Sum (D3)
    let x = [0.3f64, -0.2, 0.9, 0.1, 0.4, -0.7, 0.0, 1.0, 0.5];
    let labels = [2, 0, 1];
    let loss_of = |r: Reduction| {
        let h = ArcFaceHead::<f64>::new(
            HeadConfig::new(3, 3).with_loss(LossConfig::cross_entropy().with_reduction(r)),
            9,
        )
        .unwrap();
        let mut ws = Workspace::new(&h, 3);
        let l = h
            .forward_backward(&Batch::new(&x, &labels), &mut ws)
            .unwrap();
        (l, ws.sample_losses().to_vec(), ws.grad_weight().to_vec())
    };
    let (mean, _, gm) = loss_of(Reduction::Mean);
    let (sum, _, gs) = loss_of(Reduction::Sum);
    let (tot, per, gn) = loss_of(Reduction::None);
    assert!((sum - 3.0 * mean).abs() < 1e-12);
    assert!((tot - per.iter().sum::<f64>()).abs() < 1e-12 && (tot - sum).abs() < 1e-12);
    for ((a, b), c) in gm.iter().zip(&gs).zip(&gn) {
        assert!((3.0 * a - b).abs() < 1e-12 && (b - c).abs() < 1e-12);
    }
}

#[test]
fn inference_workspace_serves_logits_and_can_train() {
    let h = head(3, 2, 2);
    let mut ws = Workspace::inference(&h, 2);
    let x = [1.0f32, 0.0, 0.0, 1.0];
    let mut out = [0.0f32; 6];
    h.logits_into(&x, &mut ws, &mut out).unwrap();
    assert_eq!(&out[..], &h.logits(&x).unwrap()[..]);
    assert!(ws.grad_weight().is_empty());
    h.forward_backward(&Batch::new(&x, &[0, 2]), &mut ws)
        .unwrap();
    assert_eq!(ws.grad_weight().len(), 3 * 2 * 2);
}
