//! `train`'s head and trainer: the head's configuration (fresh, from
//! `--init`, or as `--resume`d), the memory the run will need, checked
//! against what the machine can give before anything is built, then the
//! head and the trainer.

use super::load::{Start, TrainData};
use crate::cmd::footprint::{self, Shape};
use crate::cmd::{config, flag_error, relabel};
use crate::data::builtin::{Source, DIGITS_MARGIN};
use crate::CliError;
use arcface::{
    load_optimizer, optimizer_path, ArcFaceHead, HeadConfig, Margins, OptimizerConfig, Real,
    TrainConfig, Trainer,
};

/// The head a run trains, by where it comes from, with its configuration.
pub enum Plan {
    /// New weights (`--seed`).
    Fresh(HeadConfig),
    /// `--init`'s weights with this configuration.
    Init(HeadConfig),
    /// `--resume`'s head as it is.
    Resume(HeadConfig),
}

impl Plan {
    pub fn config(&self) -> &HeadConfig {
        match self {
            Plan::Fresh(c) | Plan::Init(c) | Plan::Resume(c) => c,
        }
    }
}

/// The head's configuration: the flags over the library's defaults (a
/// fresh head), over the checkpoint's configuration (`--init`), or the
/// checkpoint's as it is (`--resume`); the checkpoint's width must be the
/// data's.
pub fn plan<T: Real>(
    a: &crate::args::TrainArgs,
    start: Option<&Start>,
    data: &TrainData<T>,
    c: usize,
) -> Result<Plan, CliError> {
    let d = data.train.d;
    let mut fresh = HeadConfig::new(c, d);
    if data.source == Source::Digits {
        fresh = fresh.with_margins(Margins::Uniform(DIGITS_MARGIN));
    }
    let Some(s) = start else {
        return Ok(Plan::Fresh(config::head_config(a, fresh)?));
    };
    let (_, ck_d) = s.ck.shape();
    if ck_d != d {
        return Err(CliError::input(
            &data.features_path,
            format!(
                "has {d} features per sample, the checkpoint {} holds a head for D = {ck_d}",
                s.path
            ),
        ));
    }
    let ck_cfg = s.ck.config();
    if !s.resume {
        // fine-tuning keeps the checkpoint's configuration unless a flag changes it
        let base = match ck_cfg {
            Some(cfg) if cfg.num_classes == c => cfg.clone(),
            _ => fresh,
        };
        return Ok(Plan::Init(config::head_config(a, base)?));
    }
    let Some(cfg) = ck_cfg else {
        return Err(CliError::input(
            &s.path,
            "holds no arcface metadata: --resume continues a run of arcface train \
             (start from a PyTorch export with --init and the head flags)",
        ));
    };
    if let Some(n) = a.held_out.num_classes {
        if n != cfg.num_classes {
            return Err(CliError::Usage(format!(
                "--num-classes {n}: the checkpoint to resume has {} classes",
                cfg.num_classes
            )));
        }
    }
    Ok(Plan::Resume(cfg.clone()))
}

/// The memory the whole run asks of the library (see
/// [`footprint::training`]) fits what the machine can give; else an error
/// saying how much it needs.
pub fn check_memory<T: Real>(
    a: &crate::args::TrainArgs,
    plan: &Plan,
    tcfg: &TrainConfig,
    data: &TrainData<T>,
) -> Result<(), CliError> {
    let shape = Shape::of::<T>(plan.config());
    let mut t = tcfg.clone();
    if let Plan::Resume(_) = plan {
        // the optimiser comes from the state file: count AdamW's two buffers
        t.optimizer = OptimizerConfig::AdamW(Default::default());
    }
    let o = &a.output;
    let out = o
        .out
        .as_ref()
        .map(|_| (o.weight_dtype.unwrap_or_default(), o.save_optimizer));
    let n_val = data.val.as_ref().map_or(0, |v| v.len());
    let need = footprint::training(
        &shape,
        &t,
        (data.train.len(), n_val),
        t.batch_size,
        rayon::current_num_threads(),
        out,
    );
    need.check(
        &format!("training {}", shape.describe(T::NAME)),
        &footprint::hint::<T>(true),
    )
}

/// The head of `plan`.
pub fn build<T: Real>(
    plan: Plan,
    start: Option<&Start>,
    seed: u64,
) -> Result<ArcFaceHead<T>, CliError> {
    let from_flags = |e: arcface::Error, path: &str| match e {
        arcface::Error::InvalidConfig { .. } => flag_error("train", e),
        other => relabel(other, path),
    };
    match (plan, start) {
        (Plan::Fresh(cfg), _) => ArcFaceHead::new(cfg, seed).map_err(|e| flag_error("train", e)),
        (Plan::Init(cfg), Some(s)) => s.ck.to_head(Some(cfg)).map_err(|e| from_flags(e, &s.path)),
        (Plan::Resume(_), Some(s)) => s.ck.to_head(None).map_err(|e| relabel(e, &s.path)),
        (_, None) => unreachable!("a checkpoint's plan comes with its checkpoint"),
    }
}

/// A fresh trainer, or (`--resume`) one that continues from the optimiser
/// state saved beside the checkpoint.
///
/// A resumed run continues where the saved one stopped: the optimiser
/// state records its steps, which give the epochs already run (with the
/// same data and `--batch-size`), and `--epochs` counts the whole run, so
/// the learning-rate schedule and the shuffles go on as if never stopped.
pub fn trainer<T: Real>(
    head: ArcFaceHead<T>,
    tcfg: &TrainConfig,
    start: Option<&Start>,
    n_train: usize,
) -> Result<Trainer<T>, CliError> {
    let Some(s) = start.filter(|s| s.resume) else {
        return Trainer::new(head, tcfg.clone()).map_err(|e| flag_error("train", e));
    };
    let opt_path = optimizer_path(&s.path);
    let opt = load_optimizer(&opt_path, &head)
        .map_err(|e| relabel(e, &opt_path.display().to_string()))?;
    let per_epoch = tcfg.steps_per_epoch(n_train).max(1) as u64;
    if opt.steps() % per_epoch != 0 {
        return Err(CliError::Usage(format!(
            "--resume: {} records {} steps, not a whole number of epochs of {per_epoch} steps \
             ({n_train} samples in batches of {}); resume with the data and --batch-size of \
             the run that saved it",
            opt_path.display(),
            opt.steps(),
            tcfg.batch_size
        )));
    }
    let done = usize::try_from(opt.steps() / per_epoch).unwrap_or(usize::MAX);
    if done >= tcfg.epochs {
        return Err(CliError::Usage(format!(
            "--epochs {}: the run to resume has already trained {done} epochs; --epochs counts \
             the whole run, so ask for more than {done}",
            tcfg.epochs
        )));
    }
    let cfg = TrainConfig {
        optimizer: *opt.config(),
        start_epoch: done,
        ..tcfg.clone()
    };
    Trainer::with_optimizer(head, cfg, opt).map_err(|e| flag_error("train", e))
}
