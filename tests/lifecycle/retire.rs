//! Retirement against a head that never had the retired classes (built
//! here by dropping their rows), removal, and checkpoints of grown and
//! masked heads.

use crate::{data, head};
use arcface::{
    load_head, save_head, ArcFaceHead, Batch, Checkpoint, Dataset, Enrolment, Error, HeadConfig,
    LossConfig, Optimizer, OptimizerConfig, Threads, TrainConfig, Trainer, WeightDtype, Workspace,
};

/// `h` without the classes in `drop`, built from its rows (an independent
/// construction of "the same head with those classes gone").
fn without(h: &ArcFaceHead<f64>, drop: &[usize]) -> ArcFaceHead<f64> {
    let cfg = h.config();
    let (c, k, d) = (cfg.num_classes, cfg.num_subcenters, cfg.in_channels);
    let keep: Vec<usize> = (0..c).filter(|c| !drop.contains(c)).collect();
    let w: Vec<f64> = keep
        .iter()
        .flat_map(|&cl| h.weight()[cl * k * d..(cl + 1) * k * d].to_vec())
        .collect();
    let mut small = cfg.clone();
    small.num_classes = keep.len();
    small.margins = arcface::Margins::PerClass(keep.iter().map(|&cl| h.margins()[cl]).collect());
    small.loss.class_weight = cfg
        .loss
        .class_weight
        .as_ref()
        .map(|cw| keep.iter().map(|&cl| cw[cl]).collect());
    ArcFaceHead::from_weight(small, &w)
        .unwrap()
        .with_threads(Threads::Sequential)
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

#[test]
fn a_retired_class_is_as_if_absent_from_loss_gradients_and_predictions() {
    let (d, k) = (9, 2);
    let losses = [
        LossConfig::cross_entropy(),
        LossConfig::cross_entropy().with_class_weight(vec![0.5, 1.0, 1.5, 2.0, 0.7, 1.2]),
        LossConfig::label_smooth(0.2),
    ];
    // both backward paths: the small-batch kernels (N ≤ 16) and the products
    for (loss, n) in losses
        .iter()
        .flat_map(|l| [(l.clone(), 5), (l.clone(), 24)])
    {
        let cfg = HeadConfig::new(6, d)
            .with_subcenters(k)
            .with_scale(10.0)
            .with_loss(loss);
        let mut h = ArcFaceHead::<f64>::new(cfg, 3)
            .unwrap()
            .with_threads(Threads::Sequential);
        h.set_margins(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
        let drop = [1, 4];
        let small = without(&h, &drop);
        h.retire(&drop).unwrap();
        let x: Vec<f64> = data(n, d, 5);
        let y: Vec<i64> = (0..n as i64)
            .map(|i| [0, 2, 3, 5][i as usize % 4])
            .collect();
        let y_small: Vec<i64> = y.iter().map(|&l| [0, 0, 1, 2, 0, 3][l as usize]).collect();
        let (mut w1, mut w2) = (Workspace::new(&h, n), Workspace::new(&small, n));
        let a = h.forward_backward(&Batch::new(&x, &y), &mut w1).unwrap();
        let b = small
            .forward_backward(&Batch::new(&x, &y_small), &mut w2)
            .unwrap();
        assert!((a - b).abs() < 1e-12 * b.abs(), "{a} vs {b}");
        assert!(close(w1.grad_features(), w2.grad_features(), 1e-12));
        let row = k * d;
        let g = w1.grad_weight();
        for (new, &old) in [0, 2, 3, 5].iter().enumerate() {
            let got = &g[old * row..(old + 1) * row];
            assert!(close(
                got,
                &w2.grad_weight()[new * row..(new + 1) * row],
                1e-12
            ));
        }
        for &c in &drop {
            assert!(g[c * row..(c + 1) * row].iter().all(|&v| v == 0.0));
        }
        // inference: −∞ logits, zero scores, never predicted, skipped by top-k
        let z = h.logits(&x).unwrap();
        let zs = small.logits(&x).unwrap();
        let p = h.predict(&x).unwrap();
        let ps = small.predict(&x).unwrap();
        for i in 0..n {
            for &c in &drop {
                assert_eq!(z[i * 6 + c], f64::NEG_INFINITY);
                assert_eq!(p.scores[i * 6 + c], 0.0);
            }
            for (new, &old) in [0, 2, 3, 5].iter().enumerate() {
                assert_eq!(z[i * 6 + old], zs[i * 4 + new]);
                assert!((p.scores[i * 6 + old] - ps.scores[i * 4 + new]).abs() < 1e-15);
            }
            assert_eq!(p.labels[i], [0, 2, 3, 5][ps.labels[i]]);
        }
        let top = p.topk(6);
        assert!(top
            .iter()
            .all(|t| t.len() == 4 && t.iter().all(|(c, _)| !drop.contains(c))));
        assert_eq!(p.retired, vec![1, 4]);
    }
}

#[test]
fn retired_labels_and_targets_are_errors_and_retired_rows_never_train() {
    let d = 6;
    let mut h = head::<f32>(5, 1, d, 8);
    h.retire(&[3]).unwrap();
    let x: Vec<f32> = data(2, d, 1);
    let mut ws = Workspace::new(&h, 2);
    let e = h
        .forward_backward(&Batch::new(&x, &[0, 3]), &mut ws)
        .unwrap_err();
    assert_eq!(
        e,
        Error::RetiredLabel {
            sample: 1,
            class: 3
        }
    );
    assert!(matches!(
        h.logits_train(&x, &[3, 0]),
        Err(Error::RetiredLabel { sample: 0, .. })
    ));
    let mut soft = vec![0.0f32; 10];
    soft[0] = 0.9;
    soft[3] = 0.1;
    soft[6] = 1.0;
    let b = Batch::new(&x, &[0, 1]).with_soft_targets(&soft);
    assert!(matches!(
        h.forward_backward(&b, &mut ws),
        Err(Error::RetiredLabel {
            sample: 0,
            class: 3
        })
    ));
    // a trainer refuses data labelled with it, and leaves its rows alone
    let y: Vec<i64> = (0..40).map(|i| [0, 1, 2, 4][i % 4]).collect();
    let xs: Vec<f32> = data(40, d, 2);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        ..TrainConfig::default()
    };
    let mut bad_y = y.clone();
    bad_y[7] = 3;
    let mut t = Trainer::new(h.clone(), cfg.clone()).unwrap();
    assert!(matches!(
        t.fit(Dataset::new(&xs, &bad_y), None, |_| {
            std::ops::ControlFlow::Continue(())
        }),
        Err(Error::RetiredLabel {
            sample: 7,
            class: 3
        })
    ));
    let before = h.weight()[3 * d..4 * d].to_vec();
    let mut t = Trainer::new(h, cfg).unwrap();
    t.fit(Dataset::new(&xs, &y), None, |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(&t.head().weight()[3 * d..4 * d], &before[..]);
}

#[test]
fn remove_classes_compacts_and_the_rest_follows_the_map() {
    let (d, k) = (5, 2);
    let cfg = HeadConfig::new(6, d).with_subcenters(k).with_loss(
        LossConfig::cross_entropy().with_class_weight(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    );
    let mut h = ArcFaceHead::<f64>::new(cfg, 2)
        .unwrap()
        .with_threads(Threads::Sequential);
    h.set_margins(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    h.retire(&[5]).unwrap();
    let reference = without(&h, &[0, 3]);
    let mut opt = Optimizer::new(OptimizerConfig::default(), &h).unwrap();
    let state: Vec<f64> = (0..6 * k * d).map(|i| i as f64).collect();
    opt.set_state(3, &[&state]).unwrap();
    let mut ws = Workspace::new(&h, 4);
    let map = h.remove_classes(&[3, 0]).unwrap();
    assert_eq!(map, vec![None, Some(0), Some(1), None, Some(2), Some(3)]);
    assert_eq!(h.weight(), reference.weight());
    assert_eq!(h.margins(), &[0.2, 0.3, 0.5, 0.6]);
    assert_eq!(h.config().loss.class_weight, Some(vec![2.0, 3.0, 5.0, 6.0]));
    assert_eq!(h.retired(), vec![3]);
    opt.remap_classes(&map, &h).unwrap();
    let row = k * d;
    let kept: Vec<f64> = [1, 2, 4, 5]
        .iter()
        .flat_map(|&c| state[c * row..(c + 1) * row].to_vec())
        .collect();
    assert_eq!(opt.state()[0].1, &kept[..]);
    assert!(opt.fit(&h).is_ok());
    // a shrunk workspace steps like a fresh one
    ws.fit(&h).unwrap();
    let x: Vec<f64> = data(4, d, 3);
    let mut fresh = Workspace::new(&h, 4);
    let a = h
        .forward_backward(&Batch::new(&x, &[0, 1, 2, 1]), &mut ws)
        .unwrap();
    let b = h
        .forward_backward(&Batch::new(&x, &[0, 1, 2, 1]), &mut fresh)
        .unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(ws.grad_weight(), fresh.grad_weight());
}

#[test]
fn checkpoints_record_the_grown_and_masked_head() {
    let d = 8;
    let mut h = head::<f32>(4, 2, d, 5);
    h.enrol(
        &data::<f32>(3, d, 6),
        &Enrolment {
            margin: Some(0.2),
            ..Enrolment::default()
        },
    )
    .unwrap();
    h.retire(&[1]).unwrap();
    let path = std::env::temp_dir().join(format!(
        "arcface_lifecycle_{}.safetensors",
        std::process::id()
    ));
    save_head(&h, &path).unwrap();
    let back = load_head::<f32>(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back.config().num_classes, 5);
    assert_eq!(back.margins(), &[0.3, 0.3, 0.3, 0.3, 0.2]);
    assert_eq!(back.retired(), vec![1]);
    assert_eq!(back.weight(), h.weight());
    let x: Vec<f32> = data(3, d, 7);
    assert_eq!(back.predict(&x).unwrap(), h.predict(&x).unwrap());
    // a head without retired classes writes no `retired` key (old files read the same)
    let plain = head::<f32>(4, 2, d, 5);
    let bytes = Checkpoint::from_head(&plain, WeightDtype::F32)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(!bytes.windows(7).any(|w| w == b"retired"));
    assert!(Checkpoint::from_bytes(&bytes).unwrap().retired().is_empty());
    // a list naming an unknown class is refused at load
    let mut bytes = Checkpoint::from_head(&h, WeightDtype::F32)
        .unwrap()
        .to_bytes()
        .unwrap();
    let at = bytes.windows(7).position(|w| w == b"retired").unwrap();
    let one = at + bytes[at..].windows(2).position(|w| w == b"[1").unwrap() + 1;
    bytes[one] = b'7';
    let err = Checkpoint::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("retired"), "{err}");
}
