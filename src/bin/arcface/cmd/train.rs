//! `arcface train`: fits a head, in the steps [`train`] lists: check the
//! outputs, configure, load the data and the starting checkpoint,
//! standardise, size and build the head, fit, evaluate, write every output
//! together, print the summary.

use super::{builtin_source, config, relabel, run_typed};
use crate::args::{TrainArgs, EVAL_BATCH};
use crate::data::builtin::{Source, DIGITS_MARGIN};
use crate::data::preprocess::Standardize;
use crate::data::{self, split, Split};
use crate::output::{check_writable, Outputs};
use crate::report::table::TrainSummary;
use crate::report::{self, json, progress::Progress, svg};
use crate::CliError;
use arcface::{
    evaluate, load_optimizer, optimizer_path, save_optimizer, ArcFaceHead, Checkpoint, EvalMetrics,
    Event, HeadConfig, Margins, Real, TrainConfig, TrainReport, Trainer,
};
use std::ops::ControlFlow;
use std::time::Instant;

/// Labels above this need an explicit `--num-classes` (a guard against a
/// stray huge label silently asking for a gigantic head).
const MAX_INFERRED_CLASSES: i64 = 1_000_000;

/// Runs `train`.
pub fn run(a: &TrainArgs) -> Result<(), CliError> {
    run_typed!(a.compute, train(a))
}

/// The training data, and where its labels came from (for messages).
struct TrainData<T> {
    train: Split<T>,
    val: Option<Split<T>>,
    source: Source,
    labels_path: String,
    val_labels_path: String,
}

/// The checkpoint a run starts from: `--init` (fine-tuning) or `--resume`.
struct Start {
    ck: Checkpoint,
    path: String,
    resume: bool,
}

fn train<T: Real>(a: &TrainArgs) -> Result<(), CliError> {
    let t_start = Instant::now();
    check_outputs(a)?;
    let tcfg = config::train_config(a)?;
    let mut data = load_data::<T>(a)?;
    let start = load_start(a)?;
    let standardize = standardize(a, start.as_ref(), &mut data)?;
    let c = num_classes(a, start.as_ref(), &data)?;
    let head = build_head::<T>(a, start.as_ref(), &data, c, tcfg.seed)?;
    let head_desc = report::describe_head(head.config(), tcfg.adaptive_margins.is_some());
    let mut trainer = match start.as_ref().filter(|s| s.resume) {
        Some(s) => resume_trainer(head, &tcfg, &s.path)?,
        None => Trainer::new(head, tcfg.clone())?,
    };
    let run = RunShape::new(&tcfg, &data, c);
    let opt_desc = report::describe_optimizer(trainer.config());
    let mut progress = Progress::new(a.output.quiet);
    progress.header(&run.header::<T>(&data), &format!("{head_desc}; {opt_desc}"));
    let report = trainer.fit(
        data.train.dataset(),
        data.val.as_ref().map(|v| v.dataset()),
        |e| {
            match e {
                Event::Step(s) => progress.step(s),
                Event::Epoch(ep) => progress.epoch(ep),
            }
            ControlFlow::Continue(())
        },
    )?;
    let t_eval = Instant::now();
    let (train_m, val_m) = final_metrics(trainer.head(), &data, &report)?;
    let eval_seconds = t_eval.elapsed().as_secs_f64();
    let peak = write_outputs(
        a,
        &trainer,
        &data,
        standardize.as_ref(),
        &report,
        &head_desc,
        (&train_m, val_m.as_ref()),
    )?;
    let summary = TrainSummary {
        data: run.data_line(&data),
        head: &head_desc,
        optimizer: &opt_desc,
        epochs: report.history.len(),
        steps_per_epoch: run.steps_per_epoch,
        batch: run.batch,
        train: train_m,
        test: val_m,
        train_seconds: report.train_seconds,
        embeddings_per_s: report::rate(report.samples, report.train_seconds),
        eval_seconds: (report.seconds - report.train_seconds) + eval_seconds,
        total_seconds: t_start.elapsed().as_secs_f64(),
        peak_memory: peak,
        threads: run.threads,
        dtype: T::NAME,
        simd: trainer.head().simd_level(),
        checkpoint: checkpoint_line(a, trainer.head()),
        files: [("metrics", &a.output.metrics), ("curves", &a.output.curves)]
            .into_iter()
            .filter_map(|(what, p)| p.as_deref().map(|p| (what, p)))
            .collect(),
    };
    summary.print();
    Ok(())
}

/// Output paths are checked before any work, so that a typo does not cost a run.
fn check_outputs(a: &TrainArgs) -> Result<(), CliError> {
    let o = &a.output;
    for (flag, path) in [
        ("out", &o.out),
        ("metrics", &o.metrics),
        ("curves", &o.curves),
    ] {
        if let Some(p) = path {
            check_writable(p, flag)?;
        }
    }
    Ok(())
}

/// Files (`--features`, with `--val-features` or `--val-fraction`), or a
/// built-in set with its fixed test split.
fn load_data<T: Real>(a: &TrainArgs) -> Result<TrainData<T>, CliError> {
    let Some(fp) = &a.data.features else {
        let source = builtin_source(&a.data, &a.synthetic);
        let (train, test) = source.load::<T>()?;
        return Ok(TrainData {
            train,
            val: Some(test),
            source,
            labels_path: "<built-in>".into(),
            val_labels_path: "<built-in>".into(),
        });
    };
    let lp = a.labels.labels.as_deref();
    let train = data::load_labelled::<T>(fp, lp)?;
    let labels_path = lp.unwrap_or(fp).to_string();
    let held = &a.held_out;
    let (train, val, val_labels_path) = match (&held.val_features, held.val_fraction) {
        (Some(vf), _) => {
            let vl = held.val_labels.as_deref();
            let val = data::load_labelled::<T>(vf, vl)?;
            if val.d != train.d {
                return Err(CliError::input(
                    vf,
                    format!(
                        "has {} columns but the training features have {}",
                        val.d, train.d
                    ),
                ));
            }
            (train, Some(val), vl.unwrap_or(vf).to_string())
        }
        (None, Some(f)) => {
            if held.num_classes.is_none() {
                check_inferable(train.max_label(), &labels_path)?;
            }
            let (t, v) = split::stratified(&train, f, a.training.seed);
            if t.len() == 0 || v.len() == 0 {
                return Err(CliError::Usage(format!(
                    "--val-fraction {f} leaves an empty split"
                )));
            }
            (t, Some(v), labels_path.clone())
        }
        (None, None) => (train, None, String::new()),
    };
    Ok(TrainData {
        train,
        val,
        source: Source::Files,
        labels_path,
        val_labels_path,
    })
}

/// Without `--num-classes`, the largest label `m` sizes the head: refuse one
/// that asks for more than [`MAX_INFERRED_CLASSES`].
fn check_inferable(m: i64, labels_path: &str) -> Result<(), CliError> {
    if m >= MAX_INFERRED_CLASSES {
        return Err(CliError::input(
            labels_path,
            format!("holds label {m}; pass --num-classes if that many classes are meant"),
        ));
    }
    Ok(())
}

fn load_start(a: &TrainArgs) -> Result<Option<Start>, CliError> {
    let t = &a.training;
    let (path, resume) = match (&t.resume, &t.init) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        (None, None) => return Ok(None),
    };
    Ok(Some(Start {
        ck: Checkpoint::load(path)?,
        path: path.clone(),
        resume,
    }))
}

/// The starting checkpoint's standardisation, or (digits, `--standardize`)
/// one fitted on the training split; applied to both splits.
fn standardize<T: Real>(
    a: &TrainArgs,
    start: Option<&Start>,
    data: &mut TrainData<T>,
) -> Result<Option<Standardize>, CliError> {
    let mut st = match start {
        Some(s) => Standardize::from_checkpoint(&s.ck, &s.path)?,
        None => None,
    };
    if st.is_none() && (data.source == Source::Digits || a.held_out.standardize) {
        st = Some(Standardize::fit(&data.train));
    }
    if let Some(s) = &st {
        s.apply(&mut data.train, &data.labels_path)?;
        if let Some(v) = &mut data.val {
            s.apply(v, &data.labels_path)?;
        }
    }
    Ok(st)
}

/// `--num-classes`, else the checkpoint's, else the largest label + 1; every
/// label is checked against it.
fn num_classes<T: Real>(
    a: &TrainArgs,
    start: Option<&Start>,
    data: &TrainData<T>,
) -> Result<usize, CliError> {
    let ck_classes = start.and_then(|s| s.ck.config()).map(|c| c.num_classes);
    let (c, why) = match (a.held_out.num_classes, ck_classes) {
        (Some(c), _) => (c, "--num-classes"),
        (None, Some(c)) => (c, "the checkpoint's num_classes"),
        (None, None) => {
            let m = data
                .train
                .max_label()
                .max(data.val.as_ref().map_or(0, |v| v.max_label()));
            check_inferable(m, &data.labels_path)?;
            (m as usize + 1, "classes seen")
        }
    };
    if c == 0 {
        return Err(CliError::Usage("--num-classes must be at least 1".into()));
    }
    data.train.check_labels(c, &data.labels_path, why)?;
    if let Some(v) = &data.val {
        v.check_labels(c, &data.val_labels_path, why)?;
    }
    Ok(c)
}

/// The head: the checkpoint's as it is (`--resume`), the checkpoint's
/// weights with its configuration and the flags (`--init`), or a fresh one.
fn build_head<T: Real>(
    a: &TrainArgs,
    start: Option<&Start>,
    data: &TrainData<T>,
    c: usize,
    seed: u64,
) -> Result<ArcFaceHead<T>, CliError> {
    let d = data.train.d;
    let mut fresh = HeadConfig::new(c, d);
    if data.source == Source::Digits {
        fresh = fresh.with_margins(Margins::Uniform(DIGITS_MARGIN));
    }
    let Some(s) = start else {
        return Ok(ArcFaceHead::new(config::head_config(a, fresh)?, seed)?);
    };
    let ck_cfg = s.ck.config();
    if !s.resume {
        // fine-tuning keeps the checkpoint's configuration unless a flag changes it
        let base = match ck_cfg {
            Some(cfg) if cfg.num_classes == c => cfg.clone(),
            _ => fresh,
        };
        let cfg = config::head_config(a, base)?;
        return s.ck.to_head(Some(cfg)).map_err(|e| relabel(e, &s.path));
    }
    if let (Some(n), Some(cfg)) = (a.held_out.num_classes, ck_cfg) {
        if n != cfg.num_classes {
            return Err(CliError::Usage(format!(
                "--num-classes {n}: the checkpoint to resume has {} classes",
                cfg.num_classes
            )));
        }
    }
    let head: ArcFaceHead<T> = s.ck.to_head(None).map_err(|e| relabel(e, &s.path))?;
    if head.config().in_channels != d {
        return Err(CliError::input(
            &s.path,
            format!(
                "holds a head for D = {}, the data has D = {d}",
                head.config().in_channels
            ),
        ));
    }
    Ok(head)
}

/// A trainer that continues from the optimiser state saved beside `path`.
fn resume_trainer<T: Real>(
    head: ArcFaceHead<T>,
    tcfg: &TrainConfig,
    path: &str,
) -> Result<Trainer<T>, CliError> {
    let opt = load_optimizer(optimizer_path(path), &head)?;
    let cfg = TrainConfig {
        optimizer: *opt.config(),
        ..tcfg.clone()
    };
    Ok(Trainer::with_optimizer(head, cfg, opt)?)
}

/// The run's shape, as the header and the summary show it.
struct RunShape {
    d: usize,
    c: usize,
    epochs: usize,
    steps_per_epoch: usize,
    /// The batch size, or the whole training split when smaller.
    batch: usize,
    threads: usize,
}

impl RunShape {
    fn new<T: Real>(t: &TrainConfig, data: &TrainData<T>, c: usize) -> Self {
        let n = data.train.len();
        RunShape {
            d: data.train.d,
            c,
            epochs: t.epochs,
            steps_per_epoch: if t.drop_last {
                n / t.batch_size
            } else {
                n.div_ceil(t.batch_size)
            },
            batch: t.batch_size.min(n),
            threads: rayon::current_num_threads(),
        }
    }

    fn sizes<T: Real>(&self, data: &TrainData<T>) -> String {
        let test = data
            .val
            .as_ref()
            .map_or(String::new(), |v| format!(" / {} test", v.len()));
        format!("{} train{test}", data.train.len())
    }

    /// The first line of the progress output.
    fn header<T: Real>(&self, data: &TrainData<T>) -> String {
        format!(
            "arcface train: {}, {}, D {}, C {}; {} epochs × {} steps of {}, {}, {} thread{}",
            data.source.describe(),
            self.sizes(data),
            self.d,
            self.c,
            self.epochs,
            self.steps_per_epoch,
            self.batch,
            T::NAME,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }

    /// The summary table's first line.
    fn data_line<T: Real>(&self, data: &TrainData<T>) -> String {
        format!(
            "{} · {} · D {} · C {}",
            data.source.describe(),
            self.sizes(data),
            self.d,
            self.c
        )
    }
}

/// Metrics of the final head on both splits (the last epoch's held-out
/// metrics when the trainer has them).
fn final_metrics<T: Real>(
    head: &ArcFaceHead<T>,
    data: &TrainData<T>,
    report: &TrainReport,
) -> Result<(EvalMetrics, Option<EvalMetrics>), CliError> {
    let train = evaluate(head, data.train.dataset(), EVAL_BATCH)?;
    let val = match (report.history.last().and_then(|e| e.val), &data.val) {
        (Some(v), _) => Some(v),
        (None, Some(v)) => Some(evaluate(head, v.dataset(), EVAL_BATCH)?),
        (None, None) => None,
    };
    Ok((train, val))
}

/// Stages the checkpoint, the optimiser state, the metrics and the curves,
/// then commits them together. Returns the peak memory (as the metrics say).
fn write_outputs<T: Real>(
    a: &TrainArgs,
    trainer: &Trainer<T>,
    data: &TrainData<T>,
    standardize: Option<&Standardize>,
    report: &TrainReport,
    head_desc: &str,
    (train_m, val_m): (&EvalMetrics, Option<&EvalMetrics>),
) -> Result<Option<u64>, CliError> {
    let o = &a.output;
    let head = trainer.head();
    let mut outputs = Outputs::new();
    if let Some(out) = &o.out {
        let mut ck = Checkpoint::from_head(head, o.weight_dtype.unwrap_or_default())?;
        ck.set_extra("data", data.source.tag());
        ck.set_extra("program", format!("arcface {}", env!("CARGO_PKG_VERSION")));
        if let Some(s) = standardize {
            s.store(&mut ck);
        }
        outputs.stage(out, &ck.to_bytes()?)?;
    }
    let peak = report::peak_memory();
    if let (Some(out), true) = (&o.out, o.save_optimizer) {
        outputs.stage_with(optimizer_path(out), |tmp| {
            Ok(save_optimizer(trainer.optimizer(), head, tmp)?)
        })?;
    }
    if let Some(p) = &o.metrics {
        let mut s = String::new();
        for e in &report.history {
            s.push_str(&json::epoch_line(e));
            s.push('\n');
        }
        s.push_str(&json::summary_line(
            &data.source.tag(),
            report,
            train_m,
            val_m,
            peak,
        ));
        s.push('\n');
        outputs.stage(p, s.as_bytes())?;
    }
    if let Some(p) = &o.curves {
        let title = format!("arcface train: {} ({head_desc})", data.source.describe());
        outputs.stage(p, svg::curves(&title, &report.history).as_bytes())?;
    }
    outputs.commit()?;
    Ok(peak)
}

/// The summary's checkpoint line: path, dtype, tensor and shape.
fn checkpoint_line<T: Real>(a: &TrainArgs, head: &ArcFaceHead<T>) -> Option<String> {
    let o = &a.output;
    let out = o.out.as_ref()?;
    let cfg = head.config();
    let optim = if o.save_optimizer {
        format!(", optimiser state in {}", optimizer_path(out).display())
    } else {
        String::new()
    };
    Some(format!(
        "{out} ({} `{}` ({}, {}){optim})",
        o.weight_dtype.unwrap_or_default().name(),
        arcface::WEIGHT_KEY,
        cfg.num_classes * cfg.num_subcenters,
        cfg.in_channels,
    ))
}
