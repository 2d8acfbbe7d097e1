//! A run stopped after some epochs and resumed with `start_epoch` (from the
//! saved weights and optimiser state, in a new trainer) ends with the same
//! bits as the run that never stopped: the schedule, the shuffles and the
//! optimiser state all continue.

mod common;

use arcface::{
    AdamW, ArcFaceHead, Dataset, HeadConfig, LrSchedule, OptimizerConfig, Sgd, TrainConfig, Trainer,
};
use common::data::clusters;
use std::ops::ControlFlow;

fn cfg(optimizer: OptimizerConfig, schedule: LrSchedule) -> TrainConfig {
    TrainConfig {
        epochs: 5,
        batch_size: 16,
        lr: 0.05,
        optimizer,
        schedule,
        warmup_epochs: 1,
        seed: 11,
        ..TrainConfig::default()
    }
}

fn lrs_and_weights(t: &mut Trainer<f32>, data: Dataset<'_, f32>) -> (Vec<(usize, f64)>, Vec<f32>) {
    let mut lrs = Vec::new();
    t.fit(data, None, |e| {
        if let arcface::Event::Epoch(info) = e {
            lrs.push((info.epoch, info.lr));
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    (lrs, t.head().weight().to_vec())
}

#[test]
fn a_resumed_run_ends_with_the_bits_of_the_uninterrupted_one() {
    let (x, y) = clusters(5, 12, 90, 0.4, 3);
    let data = Dataset::new(&x, &y);
    let head = || ArcFaceHead::<f32>::new(HeadConfig::new(5, 12).with_scale(16.0), 1).unwrap();
    for (optimizer, schedule) in [
        (
            OptimizerConfig::Sgd(Sgd {
                nesterov: true,
                ..Sgd::default()
            }),
            LrSchedule::default(),
        ),
        (
            OptimizerConfig::AdamW(AdamW::default()),
            LrSchedule::default_step(5),
        ),
    ] {
        let full_cfg = cfg(optimizer, schedule);
        let mut full = Trainer::new(head(), full_cfg.clone()).unwrap();
        let (full_lrs, full_w) = lrs_and_weights(&mut full, data);

        // the same run, stopped after its second epoch
        let mut first = Trainer::new(head(), full_cfg.clone()).unwrap();
        first
            .fit(data, None, |e| match e {
                arcface::Event::Epoch(info) if info.epoch == 2 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .unwrap();
        let (h, opt) = first.into_parts();
        assert_eq!(opt.steps(), 2 * full_cfg.steps_per_epoch(90) as u64);
        let resumed_cfg = TrainConfig {
            start_epoch: 2,
            ..full_cfg.clone()
        };
        let mut second = Trainer::with_optimizer(h, resumed_cfg, opt).unwrap();
        let (lrs, w) = lrs_and_weights(&mut second, data);

        assert_eq!(lrs, full_lrs[2..], "the schedule continues at epoch 3");
        assert_eq!(lrs[0].0, 3);
        assert_eq!(
            w, full_w,
            "{optimizer:?}: weights differ from the uninterrupted run"
        );
    }
}

#[test]
fn start_epoch_must_leave_something_to_train() {
    let bad = TrainConfig {
        epochs: 3,
        start_epoch: 3,
        ..TrainConfig::default()
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("start_epoch"), "{err}");
}
