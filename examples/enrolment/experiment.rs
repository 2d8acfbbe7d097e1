//! The enrolment experiment of Qi, Brown and Lowe (CVPR 2018, "Low-shot
//! learning with imprinted weights") on the shipped digits: a head trained
//! on 7 classes gets the other 3 from n training samples each, by
//! (a) imprinting alone, (b) imprinting then a few fine-tuning epochs, and
//! (c) random new rows then the same fine-tuning.
//!
//! Each seed draws its own 3 novel classes, its own stratified 80/20
//! train/test split and its own order of the novel training samples (the
//! n-shot sets are nested: the 1-shot sample is among the 2 shots, …). The
//! standardisation is fitted on the old classes' training samples only, as
//! on a device that learns a class after it shipped.
//!
//! Fine-tuning, the same for (b) and (c): epochs over the old classes'
//! training samples and the shots (each once per epoch), SGD with the
//! default momentum and weight decay at a constant learning rate, every row
//! trained; with `freeze_old`, only the new rows
//! (`TrainConfig::train_classes`), the old ones frozen bit for bit.

use super::digits::{self, Standardize, CLASSES, D};
use arcface::{
    evaluate, ArcFaceHead, Dataset, Enrolment, HeadConfig, LrSchedule, Margins, SplitMix64,
    TrainConfig, Trainer,
};
use std::ops::ControlFlow;

/// Classes enrolled after training.
pub const NOVEL: usize = 3;
/// Classes of the head before enrolment.
pub const OLD: usize = CLASSES - NOVEL;
/// The program's digits margin (every other head setting is upstream's).
pub const MARGIN: f64 = 0.2;
/// Held-out fraction of each class.
const TEST_FRACTION: f64 = 0.2;

/// The experiment's settings.
#[derive(Debug, Clone)]
pub struct Setup {
    pub seeds: Vec<u64>,
    pub shots: Vec<usize>,
    /// Fine-tuning epochs of (b) and (c).
    pub finetune_epochs: usize,
    /// Fine-tuning learning rate (constant, SGD with the default momentum).
    pub finetune_lr: f64,
    /// Fine-tune the new rows only, the old ones frozen.
    pub freeze_old: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            seeds: (0..10).collect(),
            shots: vec![1, 2, 5, 10, 20],
            finetune_epochs: 10,
            finetune_lr: 0.1,
            freeze_old: false,
        }
    }
}

/// Test top-1 on the novel classes' samples, the old classes' and all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acc {
    pub novel: f64,
    pub old: f64,
    pub all: f64,
}

/// One seed's results at one n.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub n: usize,
    /// The 7-class head's top-1 on the old classes' test samples.
    pub before: f64,
    pub imprint: Acc,
    pub imprint_ft: Acc,
    pub random_ft: Acc,
}

/// One seed's data: standardised splits, labels renumbered (old classes
/// 0..7 in digit order, novel ones 7..10 in enrolment order).
struct SeedData {
    train_old: (Vec<f64>, Vec<i64>),
    /// Novel training samples of each novel class, in this seed's order.
    novel_pool: Vec<Vec<f64>>,
    test: (Vec<f64>, Vec<i64>),
}

fn seed_data(all: &digits::Digits, seed: u64) -> SeedData {
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..CLASSES).collect();
    rng.shuffle(&mut order);
    let mut novel: Vec<usize> = order[OLD..].to_vec();
    novel.sort_unstable();
    let old: Vec<usize> = (0..CLASSES).filter(|c| !novel.contains(c)).collect();
    let mut index = [0i64; CLASSES];
    for (k, &c) in old.iter().chain(&novel).enumerate() {
        index[c] = k as i64;
    }
    let (train, test) = digits::stratified(&digits::by_class(&all.y), TEST_FRACTION, &mut rng);
    let old_rows: Vec<usize> = old.iter().flat_map(|&c| train[c].clone()).collect();
    let st = Standardize::fit(&all.x, &old_rows);
    let label = |i: usize| index[all.y[i]];
    let novel_pool = novel
        .iter()
        .map(|&c| {
            let mut rows = train[c].clone();
            rng.shuffle(&mut rows);
            st.gather(&all.x, &rows, label).0
        })
        .collect();
    let test_rows: Vec<usize> = test.iter().flatten().copied().collect();
    SeedData {
        train_old: st.gather(&all.x, &old_rows, label),
        novel_pool,
        test: st.gather(&all.x, &test_rows, label),
    }
}

/// Top-1 of `head` on the samples of `test` whose label passes `keep`.
fn top1(head: &ArcFaceHead<f64>, test: &(Vec<f64>, Vec<i64>), keep: impl Fn(i64) -> bool) -> f64 {
    let rows: Vec<usize> = (0..test.1.len()).filter(|&i| keep(test.1[i])).collect();
    let x: Vec<f64> = rows
        .iter()
        .flat_map(|&i| test.0[i * D..(i + 1) * D].to_vec())
        .collect();
    let y: Vec<i64> = rows.iter().map(|&i| test.1[i]).collect();
    evaluate(head, Dataset::new(&x, &y), 512)
        .expect("evaluates")
        .top1
}

fn accuracy(head: &ArcFaceHead<f64>, test: &(Vec<f64>, Vec<i64>)) -> Acc {
    let old = OLD as i64;
    Acc {
        novel: top1(head, test, |l| l >= old),
        old: top1(head, test, |l| l < old),
        all: top1(head, test, |_| true),
    }
}

fn quiet(_: arcface::Event<'_>) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// The head before enrolment: the program's digits recipe on the old classes.
fn base_head(data: &SeedData, seed: u64) -> ArcFaceHead<f64> {
    let cfg = HeadConfig::new(OLD, D).with_margins(Margins::Uniform(MARGIN));
    let head = ArcFaceHead::new(cfg, seed).expect("a valid head");
    let tcfg = TrainConfig {
        seed,
        train_accuracy: false,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head, tcfg).expect("a valid trainer");
    let (x, y) = &data.train_old;
    t.fit(Dataset::new(x, y), None, quiet).expect("trains");
    t.into_parts().0
}

/// Fine-tunes `head` (see the module docs) on the old training samples and
/// the shots (labels 0..3 of the new classes).
fn finetune(
    head: ArcFaceHead<f64>,
    data: &SeedData,
    shots: &(Vec<f64>, Vec<i64>),
    setup: &Setup,
    seed: u64,
) -> ArcFaceHead<f64> {
    let (mut x, mut y) = data.train_old.clone();
    x.extend_from_slice(&shots.0);
    y.extend(shots.1.iter().map(|l| l + OLD as i64));
    let tcfg = TrainConfig {
        epochs: setup.finetune_epochs,
        lr: setup.finetune_lr,
        schedule: LrSchedule::Constant,
        warmup_epochs: 0,
        seed,
        train_accuracy: false,
        train_classes: setup.freeze_old.then(|| (OLD..CLASSES).collect()),
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head, tcfg).expect("a valid trainer");
    t.fit(Dataset::new(&x, &y), None, quiet)
        .expect("fine-tunes");
    t.into_parts().0
}

/// Runs every seed and n of `setup`.
pub fn run(setup: &Setup) -> Vec<Outcome> {
    let all = digits::load();
    let mut out = Vec::new();
    for &seed in &setup.seeds {
        let data = seed_data(&all, seed);
        let base = base_head(&data, seed);
        let before = top1(&base, &data.test, |l| l < OLD as i64);
        for &n in &setup.shots {
            let mut sx = Vec::new();
            let mut sy = Vec::new();
            for (k, pool) in data.novel_pool.iter().enumerate() {
                let n = n.min(pool.len() / D);
                sx.extend_from_slice(&pool[..n * D]);
                sy.extend(std::iter::repeat_n(k as i64, n));
            }
            let shots = (sx, sy);
            let mut imprinted = base.clone();
            let how = Enrolment {
                seed,
                ..Enrolment::default()
            };
            imprinted
                .enrol_many(&shots.0, &shots.1, &how)
                .expect("enrols");
            // (c): the same grown head with the new rows drawn as a fresh head's
            let mut random = imprinted.clone();
            let fresh = ArcFaceHead::<f64>::new(HeadConfig::new(CLASSES, D), seed ^ 0x9E37)
                .expect("a valid head");
            let rows = OLD * D..CLASSES * D;
            random
                .update_weight(|w| w[rows.clone()].copy_from_slice(&fresh.weight()[rows.clone()]))
                .expect("finite");
            out.push(Outcome {
                n,
                before,
                imprint: accuracy(&imprinted, &data.test),
                imprint_ft: accuracy(&finetune(imprinted, &data, &shots, setup, seed), &data.test),
                random_ft: accuracy(&finetune(random, &data, &shots, setup, seed), &data.test),
            });
        }
    }
    out
}

/// Means over the seeds of each n, in `setup.shots` order: (n, before, (a), (b), (c)).
pub fn means(setup: &Setup, outcomes: &[Outcome]) -> Vec<(usize, f64, Acc, Acc, Acc)> {
    setup
        .shots
        .iter()
        .map(|&n| {
            let o: Vec<&Outcome> = outcomes.iter().filter(|o| o.n == n).collect();
            let k = o.len().max(1) as f64;
            let mean = |f: &dyn Fn(&Outcome) -> Acc| {
                let mut a = Acc::default();
                for x in &o {
                    let v = f(x);
                    a.novel += v.novel / k;
                    a.old += v.old / k;
                    a.all += v.all / k;
                }
                a
            };
            let before = o.iter().map(|x| x.before).sum::<f64>() / k;
            (
                n,
                before,
                mean(&|x| x.imprint),
                mean(&|x| x.imprint_ft),
                mean(&|x| x.random_ft),
            )
        })
        .collect()
}
