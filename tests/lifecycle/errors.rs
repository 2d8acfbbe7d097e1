//! Bad input to the lifecycle calls: a typed error naming the problem, and
//! the head, its workspace and its optimiser exactly as they were.

use crate::{data, head};
use arcface::{
    ArcFaceHead, Batch, Dataset, Enrolment, Error, Optimizer, OptimizerConfig, TrainConfig,
    Trainer, Workspace,
};

/// Everything a caller can see of a head: weights (bits), margins,
/// configuration, retired and trainable classes.
type Seen = (
    Vec<u32>,
    Vec<f64>,
    arcface::HeadConfig,
    Vec<usize>,
    Option<Vec<usize>>,
);

fn seen(h: &ArcFaceHead<f32>) -> Seen {
    (
        h.weight().iter().map(|v| v.to_bits()).collect(),
        h.margins().to_vec(),
        h.config().clone(),
        h.retired(),
        h.trainable_classes(),
    )
}

#[test]
fn bad_enrolments_are_typed_errors_that_change_nothing() {
    let d = 4;
    let mut h = head::<f32>(3, 2, d, 1);
    h.retire(&[1]).unwrap();
    let before = seen(&h);
    let ok = data::<f32>(2, d, 2);
    let mut nan = ok.clone();
    nan[5] = f32::NAN;
    let mut inf = ok.clone();
    inf[0] = f32::INFINITY;
    let mut zero = ok.clone();
    zero[4..8].fill(0.0);
    let how = Enrolment::default();
    let cases: Vec<(&[f32], Error)> = vec![
        (
            &nan,
            Error::NonFinite {
                what: "embeddings",
                row: 1,
                col: 1,
            },
        ),
        (
            &inf,
            Error::NonFinite {
                what: "embeddings",
                row: 0,
                col: 0,
            },
        ),
        (&zero, Error::ZeroEmbedding { row: 1 }),
        (&[], Error::NoEmbeddings { class: 0 }),
    ];
    for (x, want) in cases {
        assert_eq!(h.enrol(x, &how).unwrap_err(), want);
        assert!(seen(&h) == before);
    }
    // wrong dimension
    assert!(matches!(
        h.enrol(&ok[..7], &how),
        Err(Error::Shape {
            what: "embeddings",
            ..
        })
    ));
    // K = 1: exemplars whose directions cancel
    let mut one = head::<f32>(2, 1, 2, 1);
    let b1 = seen(&one);
    assert_eq!(
        one.enrol(&[1.0, 2.0, -2.0, -4.0], &how).unwrap_err(),
        Error::CancellingEmbeddings { class: 0 }
    );
    assert!(seen(&one) == b1);
    // a bad enrolment configuration
    for bad in [
        Enrolment {
            margin: Some(f64::INFINITY),
            ..how
        },
        Enrolment {
            kmeans_iters: 0,
            ..how
        },
        Enrolment {
            class_weight: f64::NAN,
            ..how
        },
    ] {
        assert!(h.enrol(&ok, &bad).is_err());
        assert!(seen(&h) == before);
    }
    // enrol_many: wrong label count, negative label, a class with no exemplar
    let x = data::<f32>(3, d, 3);
    assert!(matches!(
        h.enrol_many(&x, &[0, 0], &how),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        h.enrol_many(&x, &[0, -1, 0], &how),
        Err(Error::LabelOutOfRange { sample: 1, .. })
    ));
    assert_eq!(
        h.enrol_many(&x, &[0, 2, 2], &how).unwrap_err(),
        Error::NoEmbeddings { class: 1 }
    );
    assert_eq!(
        h.enrol_many(&x, &[0, 9, 0], &how).unwrap_err(),
        Error::NoEmbeddings { class: 1 }
    );
    assert!(seen(&h) == before);
}

#[test]
fn bad_class_lists_are_typed_errors_that_change_nothing() {
    let mut h = head::<f32>(4, 1, 3, 2);
    h.retire(&[2]).unwrap();
    let before = seen(&h);
    let unknown = Error::UnknownClass {
        what: "retire",
        class: 4,
        num_classes: 4,
    };
    assert_eq!(h.retire(&[0, 4]).unwrap_err(), unknown);
    assert_eq!(
        h.retire(&[2]).unwrap_err(),
        Error::AlreadyRetired { class: 2 }
    );
    assert_eq!(
        h.retire(&[0, 0]).unwrap_err(),
        Error::DuplicateClass {
            what: "retire",
            class: 0
        }
    );
    assert!(matches!(
        h.retire(&[0, 1, 3]),
        Err(Error::InvalidConfig {
            field: "retire",
            ..
        })
    ));
    assert!(matches!(
        h.remove_classes(&[0, 1, 2, 3]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        h.remove_classes(&[5]),
        Err(Error::UnknownClass {
            what: "remove_classes",
            ..
        })
    ));
    assert!(matches!(
        h.remove_classes(&[1, 1]),
        Err(Error::DuplicateClass { .. })
    ));
    assert!(matches!(
        h.set_trainable_classes(Some(&[])),
        Err(Error::InvalidConfig {
            field: "train_classes",
            ..
        })
    ));
    assert!(matches!(
        h.set_trainable_classes(Some(&[9])),
        Err(Error::UnknownClass { .. })
    ));
    assert!(matches!(
        h.set_trainable_classes(Some(&[1, 1])),
        Err(Error::DuplicateClass { .. })
    ));
    assert_eq!(
        h.set_trainable_classes(Some(&[2])).unwrap_err(),
        Error::AlreadyRetired { class: 2 }
    );
    assert!(seen(&h) == before);
}

#[test]
fn bad_train_classes_stop_the_trainer_before_any_step() {
    let d = 3;
    let h = head::<f32>(4, 1, d, 3);
    let x = data::<f32>(20, d, 4);
    let y: Vec<i64> = (0..20).map(|i| i % 4).collect();
    for (list, empty_or_dup) in [(vec![], true), (vec![1, 1], true), (vec![7], false)] {
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 4,
            train_classes: Some(list),
            ..TrainConfig::default()
        };
        if empty_or_dup {
            // checked with the configuration
            assert!(cfg.validate().is_err());
            assert!(Trainer::new(h.clone(), cfg).is_err());
            continue;
        }
        // checked against the head when training starts
        let mut t = Trainer::new(h.clone(), cfg).unwrap();
        let err = t.fit(Dataset::new(&x, &y), None, |_| {
            std::ops::ControlFlow::Continue(())
        });
        assert!(matches!(
            err,
            Err(Error::UnknownClass {
                what: "train_classes",
                class: 7,
                ..
            })
        ));
        assert_eq!(t.head().weight(), h.weight());
        assert_eq!(t.optimizer().steps(), 0);
        assert_eq!(t.head().trainable_classes(), None);
    }
}

#[test]
fn workspace_and_optimiser_refuse_heads_they_cannot_follow() {
    let d = 4;
    let mut h = head::<f32>(3, 2, d, 5);
    let other = head::<f32>(3, 1, d, 5);
    let mut ws = Workspace::new(&other, 2);
    assert!(ws.fit(&h).is_err());
    assert_eq!(ws.grad_weight().len(), 3 * d);
    let mut opt = Optimizer::new(OptimizerConfig::default(), &h).unwrap();
    h.remove_classes(&[0]).unwrap();
    assert!(opt.fit(&h).is_err());
    assert_eq!(opt.len(), 3 * 2 * d);
    // a workspace that does not fit is an error in the step, not a resize
    let mut ws = Workspace::new(&h, 2);
    h.enrol(&data::<f32>(1, d, 6), &Enrolment::default())
        .unwrap();
    let x = data::<f32>(1, d, 7);
    assert!(h.forward_backward(&Batch::new(&x, &[0]), &mut ws).is_err());
}
