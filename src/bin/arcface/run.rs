//! The three commands: `train`, `eval`, `predict`.

use crate::args::{self, Args};
use crate::input::{self, Split, SynthParams};
use crate::output::{self, Progress};
use crate::{CliError, EVAL_GROUPS, PREDICT_GROUPS, TRAIN_GROUPS};
use arcface::{
    evaluate, load_optimizer, optimizer_path, save_optimizer, AdamW, AdaptiveMargins, ArcFaceHead,
    Checkpoint, EvalMetrics, Event, HeadConfig, LossConfig, LrSchedule, MarginGrad, Margins,
    OptimizerConfig, Real, Reduction, Sgd, SmoothMode, TrainConfig, Trainer, WeightDtype,
};
use std::ops::ControlFlow;
use std::time::Instant;

/// Labels above this need an explicit `--num-classes` (a guard against a
/// stray huge label silently asking for a gigantic head).
const MAX_INFERRED_CLASSES: i64 = 1_000_000;

/// The digits recipe's margin (every other default is upstream's).
pub const DIGITS_MARGIN: f64 = 0.2;

fn usage(m: impl Into<String>) -> CliError {
    CliError::Usage(m.into())
}

fn input_err(path: &str, reason: impl Into<String>) -> CliError {
    CliError::Input {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Runs `f` on a pool of `--threads` threads (the global pool for 0).
fn with_threads<R: Send>(a: &Args, f: impl FnOnce() -> R + Send) -> Result<R, CliError> {
    let n: usize = a.get_or("threads", 0)?;
    if n > 1024 {
        return Err(usage(format!("--threads {n}: at most 1024")));
    }
    if n == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| usage(format!("--threads {n}: {e}")))?;
    Ok(pool.install(f))
}

/// Where the data came from; recorded in the checkpoint so that `eval` and
/// `predict` can find a built-in test split again.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Digits,
    Synthetic(SynthParams),
    Files,
}

impl Source {
    fn tag(&self) -> String {
        match self {
            Source::Digits => "digits".into(),
            Source::Synthetic(p) => p.tag(),
            Source::Files => "files".into(),
        }
    }
    fn from_tag(t: &str) -> Option<Self> {
        match t {
            "digits" => Some(Source::Digits),
            "files" => Some(Source::Files),
            _ => SynthParams::from_tag(t).map(Source::Synthetic),
        }
    }
    fn describe(&self) -> String {
        match self {
            Source::Digits => "digits (UCI optical digits, CC BY 4.0)".into(),
            Source::Synthetic(p) => format!(
                "synthetic (long-tailed, {} classes, D = {})",
                p.classes, p.dim
            ),
            Source::Files => "files".into(),
        }
    }
}

fn synth_params(a: &Args) -> Result<SynthParams, CliError> {
    let p = SynthParams {
        classes: a.get_or("synthetic-classes", 1000)?,
        dim: a.get_or("synthetic-dim", 128)?,
        seed: a.get_or("synthetic-seed", 0)?,
    };
    if p.classes < 2 || p.dim < 2 {
        return Err(usage(
            "--synthetic-classes and --synthetic-dim must be at least 2",
        ));
    }
    if p.classes > input::SYNTH_MAX_CLASSES || p.dim > input::SYNTH_MAX_DIM {
        return Err(usage(format!(
            "--data synthetic is limited to {} classes and {} dimensions",
            input::SYNTH_MAX_CLASSES,
            input::SYNTH_MAX_DIM
        )));
    }
    Ok(p)
}

/// A built-in data set's (train, test) splits, raw (not standardised).
fn builtin<T: Real>(src: &Source) -> Result<(Split<T>, Split<T>), CliError> {
    match src {
        Source::Digits => input::digits(),
        Source::Synthetic(p) => Ok(input::synthetic(*p)),
        Source::Files => Err(usage("no built-in data set")),
    }
}

fn parse_builtin(a: &Args) -> Result<Source, CliError> {
    Ok(match a.choice("data", &["digits", "synthetic"], 0)? {
        0 => Source::Digits,
        _ => Source::Synthetic(synth_params(a)?),
    })
}

/// Per-column standardisation kept in the checkpoint.
#[derive(Debug, Clone)]
struct Standardize {
    mean: Vec<f64>,
    std: Vec<f64>,
}

fn json_floats(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(","))
}

impl Standardize {
    fn from_checkpoint(ck: &Checkpoint, path: &str) -> Result<Option<Self>, CliError> {
        let (Some(m), Some(s)) = (
            ck.extra().get("preprocess.mean"),
            ck.extra().get("preprocess.std"),
        ) else {
            return Ok(None);
        };
        let parse = |t: &str| -> Result<Vec<f64>, CliError> {
            let v: Vec<f64> = serde_json::from_str(t).map_err(|_| {
                input_err(
                    path,
                    "metadata preprocess.mean/std is not a list of numbers",
                )
            })?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(input_err(
                    path,
                    "metadata preprocess.mean/std holds a non-finite value",
                ));
            }
            Ok(v)
        };
        let (mean, std) = (parse(m)?, parse(s)?);
        if mean.len() != std.len() || std.iter().any(|&x| x <= 0.0) {
            return Err(input_err(
                path,
                "metadata preprocess.mean/std are inconsistent",
            ));
        }
        Ok(Some(Self { mean, std }))
    }

    fn apply<T: Real>(&self, s: &mut Split<T>, path: &str) -> Result<(), CliError> {
        if s.d != self.mean.len() {
            return Err(input_err(
                path,
                format!(
                    "has {} feature columns, the checkpoint's standardisation has {}",
                    s.d,
                    self.mean.len()
                ),
            ));
        }
        input::standardize(s, &self.mean, &self.std);
        Ok(())
    }
}

/// Every label in `0..c`, else an error naming the file and the sample.
fn check_labels<T: Copy>(s: &Split<T>, c: usize, path: &str, why: &str) -> Result<(), CliError> {
    if let Some((i, &l)) =
        s.y.iter()
            .enumerate()
            .find(|(_, &l)| l < 0 || l as u64 >= c as u64)
    {
        return Err(input_err(
            path,
            format!("label {l} of sample {i} is outside 0..{c} ({why})"),
        ));
    }
    Ok(())
}

fn parse_number_lines(path: &str, n: usize) -> Result<Vec<f64>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| input_err(path, e.to_string()))?;
    let mut v = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let x: f64 = t
            .parse()
            .map_err(|_| input_err(path, format!("line {}: {t:?} is not a number", k + 1)))?;
        if !x.is_finite() {
            return Err(input_err(
                path,
                format!("line {}: {t:?} is not finite", k + 1),
            ));
        }
        v.push(x);
    }
    if v.len() != n {
        return Err(input_err(
            path,
            format!("holds {} numbers, expected one per class ({n})", v.len()),
        ));
    }
    Ok(v)
}

/// The head configuration: `base` (upstream's defaults, or the configuration
/// of the checkpoint given to `--init`) with every head flag given applied.
fn head_config(a: &Args, base: HeadConfig) -> Result<HeadConfig, CliError> {
    let mut cfg = base;
    let c = cfg.num_classes;
    if let Some(k) = a.get("num-subcenters")? {
        cfg.num_subcenters = k;
    }
    if let Some(s) = a.get("scale")? {
        cfg.scale = s;
    }
    if a.has("easy-margin") {
        cfg.easy_margin = true;
    }
    if let Some(m) = a.str("margins") {
        cfg.margins = match m.parse::<f64>() {
            Ok(v) => Margins::Uniform(v),
            Err(_) => Margins::PerClass(arcface::load_margins_file(m, c)?),
        };
    }
    if a.has("margin-grad") {
        cfg.margin_grad = match a.choice(
            "margin-grad",
            &["exact", "straight-through", "straight_through"],
            0,
        )? {
            0 => MarginGrad::Exact,
            _ => MarginGrad::StraightThrough,
        };
    }
    if let Some(eps) = a.get::<f64>("label-smooth-val")? {
        let mode = match a.choice("mode", &["original", "classy_vision"], 0)? {
            0 => SmoothMode::Original,
            _ => SmoothMode::ClassyVision,
        };
        let base = cfg.loss.clone();
        cfg.loss = LossConfig::label_smooth(eps).with_smooth_mode(mode);
        cfg.loss.loss_weight = base.loss_weight;
        cfg.loss.class_weight = base.class_weight;
        cfg.loss.reduction = base.reduction;
    } else if a.has("mode") {
        return Err(usage("--mode needs --label-smooth-val"));
    }
    if let Some(w) = a.get("loss-weight")? {
        cfg.loss.loss_weight = w;
    }
    if a.has("reduction") {
        cfg.loss.reduction = match a.choice("reduction", &["mean", "sum"], 0)? {
            0 => Reduction::Mean,
            _ => Reduction::Sum,
        };
    }
    if let Some(p) = a.str("class-weight") {
        cfg.loss.class_weight = Some(parse_number_lines(p, c)?);
    }
    cfg.validate()?;
    Ok(cfg)
}

fn train_config(a: &Args) -> Result<TrainConfig, CliError> {
    let epochs: usize = a.get_or("epochs", 20)?;
    let adamw = a.choice("optimizer", &["SGD", "AdamW"], 0)? == 1;
    let optimizer = if adamw {
        for f in ["momentum", "dampening", "nesterov"] {
            if a.has(f) {
                return Err(usage(format!(
                    "--{f} is an SGD option; --optimizer is AdamW"
                )));
            }
        }
        let d = AdamW::default();
        let (beta1, beta2) = match a.str("betas") {
            None => (d.beta1, d.beta2),
            Some(s) => {
                let v: Vec<Result<f64, _>> =
                    s.split(',').map(|t| t.trim().parse::<f64>()).collect();
                match v.as_slice() {
                    [Ok(b1), Ok(b2)] => (*b1, *b2),
                    _ => {
                        return Err(usage(format!(
                            "--betas: {s:?} is not two numbers like 0.9,0.999"
                        )))
                    }
                }
            }
        };
        OptimizerConfig::AdamW(AdamW {
            beta1,
            beta2,
            eps: a.get_or("eps", d.eps)?,
            weight_decay: a.get_or("weight-decay", d.weight_decay)?,
        })
    } else {
        for f in ["betas", "eps"] {
            if a.has(f) {
                return Err(usage(format!(
                    "--{f} is an AdamW option; --optimizer is SGD"
                )));
            }
        }
        let d = Sgd::default();
        OptimizerConfig::Sgd(Sgd {
            momentum: a.get_or("momentum", d.momentum)?,
            dampening: a.get_or("dampening", d.dampening)?,
            nesterov: a.has("nesterov"),
            weight_decay: a.get_or("weight-decay", d.weight_decay)?,
        })
    };
    let schedule = match a.choice("lr-schedule", &["cosine", "step", "constant"], 0)? {
        0 => LrSchedule::Cosine {
            eta_min: a.get_or("eta-min", 0.0)?,
        },
        1 => LrSchedule::Step {
            step_size: a.get_or("step-size", (epochs / 3).max(1))?,
            gamma: a.get_or("gamma", 0.1)?,
        },
        _ => LrSchedule::Constant,
    };
    let adaptive = if a.has("adaptive-margins") {
        let d = AdaptiveMargins::default();
        Some(AdaptiveMargins {
            margin_min: a.get_or("margin-min", d.margin_min)?,
            margin_max: a.get_or("margin-max", d.margin_max)?,
            power: a.get_or("power", d.power)?,
        })
    } else {
        for f in ["margin-min", "margin-max", "power"] {
            if a.has(f) {
                return Err(usage(format!("--{f} needs --adaptive-margins")));
            }
        }
        None
    };
    let cfg = TrainConfig {
        epochs,
        batch_size: a.get_or("batch-size", 128)?,
        lr: a.get_or("lr", if adamw { 1e-3 } else { 0.1 })?,
        optimizer,
        schedule,
        warmup_epochs: a.get_or("warmup-epochs", 0)?,
        warmup_start_factor: a.get_or("warmup-start-factor", 0.001)?,
        seed: a.get_or("seed", 0)?,
        drop_last: a.has("drop-last"),
        adaptive_margins: adaptive,
        eval_every: a.get_or("eval-every", 1)?,
        train_accuracy: !a.has("no-train-accuracy"),
    };
    cfg.validate()?;
    Ok(cfg)
}

fn max_label<T: Copy>(splits: &[&Split<T>]) -> i64 {
    splits
        .iter()
        .flat_map(|s| s.y.iter().copied())
        .max()
        .unwrap_or(0)
}

struct TrainData<T> {
    train: Split<T>,
    val: Option<Split<T>>,
    source: Source,
    labels_path: String,
    val_labels_path: String,
}

fn load_train_data<T: Real>(a: &Args) -> Result<TrainData<T>, CliError> {
    if let Some(fp) = a.str("features") {
        if a.has("data") {
            return Err(usage("--data and --features cannot be combined"));
        }
        let lp = a.str("labels");
        let train = input::load_files::<T>(fp, lp)?;
        let labels_path = lp.unwrap_or(fp).to_string();
        let (train, val, val_labels_path) =
            match (a.str("val-features"), a.get::<f64>("val-fraction")?) {
                (Some(_), Some(_)) => {
                    return Err(usage(
                        "--val-features and --val-fraction cannot be combined",
                    ))
                }
                (Some(vf), None) => {
                    let vl = a.str("val-labels");
                    let val = input::load_files::<T>(vf, vl)?;
                    if val.d != train.d {
                        return Err(input_err(
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
                    if !(f > 0.0 && f < 1.0) {
                        return Err(usage(format!(
                            "--val-fraction {f}: must be between 0 and 1"
                        )));
                    }
                    if a.get::<usize>("num-classes")?.is_none()
                        && max_label(&[&train]) >= MAX_INFERRED_CLASSES
                    {
                        return Err(input_err(
                            &labels_path,
                            format!(
                                "holds label {}; pass --num-classes if that many classes are meant",
                                max_label(&[&train])
                            ),
                        ));
                    }
                    let (t, v) = input::stratified_split(&train, f, a.get_or("seed", 0)?);
                    if t.len() == 0 || v.len() == 0 {
                        return Err(usage(format!("--val-fraction {f} leaves an empty split")));
                    }
                    (t, Some(v), labels_path.clone())
                }
                (None, None) => {
                    if a.has("val-labels") {
                        return Err(usage("--val-labels needs --val-features"));
                    }
                    (train, None, String::new())
                }
            };
        return Ok(TrainData {
            train,
            val,
            source: Source::Files,
            labels_path,
            val_labels_path,
        });
    }
    for f in ["labels", "val-features", "val-labels", "val-fraction"] {
        if a.has(f) {
            return Err(usage(format!(
                "--{f} needs --features (built-in data sets have a fixed test split)"
            )));
        }
    }
    let source = parse_builtin(a)?;
    let (train, test) = builtin::<T>(&source)?;
    Ok(TrainData {
        train,
        val: Some(test),
        source,
        labels_path: "<built-in>".into(),
        val_labels_path: "<built-in>".into(),
    })
}

fn describe_head(cfg: &HeadConfig, adaptive: bool) -> String {
    let m = match &cfg.margins {
        _ if adaptive => "adaptive margins".to_string(),
        Margins::Uniform(m) => format!("margin {m}"),
        Margins::PerClass(v) if v.windows(2).all(|w| w[0] == w[1]) => format!("margin {}", v[0]),
        Margins::PerClass(_) => "per-class margins".to_string(),
    };
    let loss = match &cfg.loss.label_smooth {
        Some(ls) => format!("LabelSmoothLoss {}", ls.label_smooth_val),
        None => "CrossEntropyLoss".into(),
    };
    format!(
        "K {}, scale {}, {m}{}, {loss}",
        cfg.num_subcenters,
        cfg.scale,
        if cfg.easy_margin { ", easy" } else { "" }
    )
}

fn describe_opt(t: &TrainConfig) -> String {
    let o = match t.optimizer {
        OptimizerConfig::Sgd(s) => format!(
            "SGD lr {} momentum {}{} wd {}",
            t.lr,
            s.momentum,
            if s.nesterov { " nesterov" } else { "" },
            s.weight_decay
        ),
        OptimizerConfig::AdamW(a) => format!(
            "AdamW lr {} betas ({}, {}) wd {}",
            t.lr, a.beta1, a.beta2, a.weight_decay
        ),
    };
    let s = match t.schedule {
        LrSchedule::Constant => "constant".to_string(),
        LrSchedule::Step { step_size, gamma } => format!("step {step_size}×{gamma}"),
        LrSchedule::Cosine { .. } => "cosine".to_string(),
    };
    let w = if t.warmup_epochs > 0 {
        format!(" after {} warm-up epochs", t.warmup_epochs)
    } else {
        String::new()
    };
    format!("{o}, {s}{w}")
}

fn pct(x: f64) -> String {
    format!("{:6.2} %", 100.0 * x)
}

pub fn train(argv: &[String]) -> Result<(), CliError> {
    let a = args::parse("train", argv, &TRAIN_GROUPS)?;
    match a.choice("dtype", &["f32", "f64"], 0)? {
        0 => with_threads(&a, || train_t::<f32>(&a))?,
        _ => with_threads(&a, || train_t::<f64>(&a))?,
    }
}

fn train_t<T: Real>(a: &Args) -> Result<(), CliError> {
    let t_start = Instant::now();
    // Outputs are checked before any work so that a typo does not cost a run.
    for f in ["out", "metrics", "curves"] {
        if let Some(p) = a.str(f) {
            output::check_writable(p, f)?;
        }
    }
    if a.has("save-optimizer") && !a.has("out") {
        return Err(usage("--save-optimizer needs --out"));
    }
    if a.has("weight-dtype") && !a.has("out") {
        return Err(usage("--weight-dtype needs --out"));
    }
    let weight_dtype: WeightDtype = match a.str("weight-dtype") {
        Some(s) => s.parse().map_err(|_| {
            usage(format!(
                "--weight-dtype {s:?}: expected f32, f16, bf16 or f64"
            ))
        })?,
        None => WeightDtype::F32,
    };
    if a.has("init") && a.has("resume") {
        return Err(usage("--init and --resume cannot be combined"));
    }
    let resume = a.str("resume");
    if resume.is_some() {
        const ALLOWED: [&str; 4] = ["adaptive-margins", "margin-min", "margin-max", "power"];
        for o in crate::HEAD.opts {
            if a.has(o.name) && !ALLOWED.contains(&o.name) {
                return Err(usage(format!(
                    "--{} cannot be used with --resume, which keeps the checkpoint's head",
                    o.name
                )));
            }
        }
        for f in [
            "optimizer",
            "momentum",
            "dampening",
            "nesterov",
            "weight-decay",
            "betas",
            "eps",
        ] {
            if a.has(f) {
                return Err(usage(format!(
                    "--{f} cannot be used with --resume, which keeps the saved optimiser"
                )));
            }
        }
    }
    let tcfg = train_config(a)?;
    let mut data = load_train_data::<T>(a)?;

    // The starting checkpoint, if any.
    let start_path = resume.or(a.str("init"));
    let start = match start_path {
        Some(p) => Some(Checkpoint::load(p)?),
        None => None,
    };
    // Standardisation: the checkpoint's, or computed from the training split.
    let mut standardize = match (&start, start_path) {
        (Some(ck), Some(p)) => Standardize::from_checkpoint(ck, p)?,
        _ => None,
    };
    if standardize.is_none() && (data.source == Source::Digits || a.has("standardize")) {
        let (mean, std) = input::column_stats(&data.train);
        standardize = Some(Standardize { mean, std });
    }
    if let Some(s) = &standardize {
        let lp = data.labels_path.clone();
        s.apply(&mut data.train, &lp)?;
        if let Some(v) = &mut data.val {
            s.apply(v, &lp)?;
        }
    }

    // Classes.
    let d = data.train.d;
    let ck_cfg = start.as_ref().and_then(|c| c.config().cloned());
    let c = match (a.get::<usize>("num-classes")?, &ck_cfg) {
        (Some(c), _) => c,
        (None, Some(cfg)) => cfg.num_classes,
        (None, None) => {
            let m = max_label(&[&data.train]).max(data.val.as_ref().map_or(0, |v| max_label(&[v])));
            if m >= MAX_INFERRED_CLASSES {
                return Err(input_err(
                    &data.labels_path,
                    format!("holds label {m}; pass --num-classes if that many classes are meant"),
                ));
            }
            m as usize + 1
        }
    };
    if c == 0 {
        return Err(usage("--num-classes must be at least 1"));
    }
    let why = if a.has("num-classes") {
        "--num-classes"
    } else if ck_cfg.is_some() {
        "the checkpoint's num_classes"
    } else {
        "classes seen"
    };
    check_labels(&data.train, c, &data.labels_path, why)?;
    if let Some(v) = &data.val {
        check_labels(v, c, &data.val_labels_path, why)?;
    }

    // The head. The digits recipe keeps upstream's scale but a smaller margin:
    // with 64 pixel features, m = 0.5 stalls a K = 1 head near 94 % (see README).
    let margin_default = if data.source == Source::Digits {
        DIGITS_MARGIN
    } else {
        0.5
    };
    let fresh = HeadConfig::new(c, d).with_margins(Margins::Uniform(margin_default));
    if let (Some(n), Some(cfg), true) = (a.get::<usize>("num-classes")?, &ck_cfg, resume.is_some())
    {
        if n != cfg.num_classes {
            return Err(usage(format!(
                "--num-classes {n}: the checkpoint to resume has {} classes",
                cfg.num_classes
            )));
        }
    }
    let head: ArcFaceHead<T> = match (&start, start_path, resume.is_some()) {
        (Some(ck), Some(p), true) => {
            let head: ArcFaceHead<T> = ck.to_head(None).map_err(|e| relabel(e, p))?;
            if head.config().in_channels != d {
                return Err(input_err(
                    p,
                    format!(
                        "holds a head for D = {}, the data has D = {d}",
                        head.config().in_channels
                    ),
                ));
            }
            head
        }
        (Some(ck), Some(p), false) => {
            // fine-tuning keeps the checkpoint's configuration unless a flag changes it
            let base = match &ck_cfg {
                Some(cfg) if cfg.num_classes == c => cfg.clone(),
                _ => fresh,
            };
            ck.to_head(Some(head_config(a, base)?))
                .map_err(|e| relabel(e, p))?
        }
        _ => ArcFaceHead::new(head_config(a, fresh)?, tcfg.seed)?,
    };
    let head_desc = describe_head(head.config(), tcfg.adaptive_margins.is_some());
    let mut trainer = match resume {
        Some(p) => {
            let op = optimizer_path(p);
            let opt = load_optimizer(&op, &head)?;
            let mut t = tcfg.clone();
            t.optimizer = *opt.config();
            Trainer::with_optimizer(head, t, opt)?
        }
        None => Trainer::new(head, tcfg.clone())?,
    };
    let opt_desc = describe_opt(trainer.config());
    let shown_batch = tcfg.batch_size.min(data.train.len());
    let spe = if tcfg.drop_last {
        data.train.len() / tcfg.batch_size
    } else {
        data.train.len().div_ceil(tcfg.batch_size)
    };
    let quiet = a.has("quiet");
    let threads = rayon::current_num_threads();
    if !quiet {
        eprintln!(
            "arcface train: {}, {} train{}, D {d}, C {c}; {} epochs × {spe} steps of {}, {}, {threads} thread{}",
            data.source.describe(),
            data.train.len(),
            data.val.as_ref().map_or(String::new(), |v| format!(" / {} test", v.len())),
            tcfg.epochs,
            shown_batch,
            T::NAME,
            if threads == 1 { "" } else { "s" }
        );
        eprintln!("  head: {head_desc}; {opt_desc}");
    }

    let mut progress = Progress::new(quiet);
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

    // Final numbers.
    let t_eval = Instant::now();
    let head = trainer.head();
    let train_m = evaluate(head, data.train.dataset(), 1024)?;
    let val_m: Option<EvalMetrics> = match (report.history.last().and_then(|e| e.val), &data.val) {
        (Some(v), _) => Some(v),
        (None, Some(v)) => Some(evaluate(head, v.dataset(), 1024)?),
        (None, None) => None,
    };
    let eval_s = t_eval.elapsed().as_secs_f64();

    // Files: everything is built first, then written atomically.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(out) = a.str("out") {
        let mut ck = Checkpoint::from_head(head, weight_dtype)?;
        ck.set_extra("data", data.source.tag());
        ck.set_extra("program", format!("arcface {}", env!("CARGO_PKG_VERSION")));
        if let Some(s) = &standardize {
            ck.set_extra("preprocess.mean", json_floats(&s.mean));
            ck.set_extra("preprocess.std", json_floats(&s.std));
        }
        files.push((out.to_string(), ck.to_bytes()?));
    }
    let peak = output::peak_memory();
    let rate = report.samples as f64 / report.train_seconds.max(1e-9);
    if let Some(p) = a.str("metrics") {
        let mut s = String::new();
        for e in &report.history {
            s.push_str(&output::epoch_json(e));
            s.push('\n');
        }
        s.push_str(&format!(
            "{{\"event\":\"summary\",\"data\":{},\"epochs\":{},\"steps\":{},{}",
            output::jstr(&data.source.tag()),
            report.history.len(),
            report.steps,
            output::metrics_json("train", &train_m)
        ));
        if let Some(v) = &val_m {
            s.push_str(&format!(",{}", output::metrics_json("test", v)));
        }
        s.push_str(&format!(
            ",\"train_seconds\":{},\"embeddings_per_s\":{},\"peak_memory_bytes\":{}}}\n",
            output::jnum(report.train_seconds),
            output::jnum(rate),
            peak.map_or("null".into(), |b| b.to_string())
        ));
        files.push((p.to_string(), s.into_bytes()));
    }
    if let Some(p) = a.str("curves") {
        let title = format!("arcface train: {} ({head_desc})", data.source.describe());
        files.push((
            p.to_string(),
            output::curves_svg(&title, &report.history).into_bytes(),
        ));
    }
    for (p, bytes) in &files {
        output::write_atomic(p, bytes)?;
    }
    if a.has("save-optimizer") {
        if let Some(out) = a.str("out") {
            save_optimizer(trainer.optimizer(), head, optimizer_path(out))?;
        }
    }

    // The summary table.
    let cfg = head.config();
    println!();
    println!(
        "arcface train · {} · {} train{} · D {d} · C {c}",
        data.source.describe(),
        data.train.len(),
        data.val
            .as_ref()
            .map_or(String::new(), |v| format!(" / {} test", v.len()))
    );
    println!("  head       {head_desc}");
    println!(
        "  optimiser  {opt_desc}; {} epochs × {spe} steps of {}",
        report.history.len(),
        shown_batch
    );
    println!();
    let hdr = if val_m.is_some() { "      test" } else { "" };
    println!("  {:<16}{:>10}{hdr}", "", "train");
    let row = |name: &str, t: String, v: Option<String>| {
        println!(
            "  {name:<16}{t:>10}{}",
            v.map_or(String::new(), |v| format!("{v:>10}"))
        );
    };
    row(
        "loss",
        format!("{:.4}", train_m.loss),
        val_m.map(|v| format!("{:.4}", v.loss)),
    );
    row(
        "top-1 accuracy",
        pct(train_m.top1),
        val_m.map(|v| pct(v.top1)),
    );
    row(
        "top-5 accuracy",
        pct(train_m.top5),
        val_m.map(|v| pct(v.top5)),
    );
    println!();
    println!(
        "  time         {:.2} s training ({} embeddings/s) + {:.2} s evaluation; {:.2} s in all",
        report.train_seconds,
        output::human(rate),
        (report.seconds - report.train_seconds) + eval_s,
        t_start.elapsed().as_secs_f64()
    );
    println!("  peak memory  {}", output::fmt_bytes(peak));
    println!(
        "  threads      {threads} · {} · SIMD {}",
        T::NAME,
        head.simd_level()
    );
    match a.str("out") {
        Some(out) => println!(
            "  checkpoint   {out} ({} `{}` ({}, {}){})",
            weight_dtype.name(),
            arcface::WEIGHT_KEY,
            cfg.num_classes * cfg.num_subcenters,
            cfg.in_channels,
            if a.has("save-optimizer") {
                format!(", optimiser state in {}", optimizer_path(out).display())
            } else {
                String::new()
            }
        ),
        None => println!("  checkpoint   not written (use --out PATH)"),
    }
    for (flag, what) in [("metrics", "metrics"), ("curves", "curves")] {
        if let Some(p) = a.str(flag) {
            println!("  {what:<12} {p}");
        }
    }
    Ok(())
}

/// Puts the checkpoint's path into a checkpoint error from `to_head`.
fn relabel(e: arcface::Error, path: &str) -> CliError {
    match e {
        arcface::Error::Checkpoint { reason, .. } => input_err(path, reason),
        other => CliError::Lib(other),
    }
}

/// The checkpoint's head: its own configuration, or for a file without
/// metadata (a PyTorch export) one built from `--num-subcenters`,
/// `--scale`, `--margins`.
fn load_ckpt_head<T: Real>(a: &Args) -> Result<(Checkpoint, ArcFaceHead<T>, String), CliError> {
    let path = a
        .str("checkpoint")
        .ok_or_else(|| usage("--checkpoint PATH is required"))?
        .to_string();
    let ck = Checkpoint::load(&path)?;
    let head = match ck.config() {
        Some(_) => {
            for f in ["num-subcenters", "scale", "margins"] {
                if a.has(f) {
                    return Err(usage(format!(
                        "--{f}: {path} carries its own head configuration"
                    )));
                }
            }
            ck.to_head(None).map_err(|e| relabel(e, &path))?
        }
        None => {
            let (rows, d) = ck.shape();
            let k: usize = a.get_or("num-subcenters", 1)?;
            if k == 0 || rows % k != 0 {
                return Err(input_err(
                    &path,
                    format!("has {rows} weight rows, not a multiple of --num-subcenters {k}"),
                ));
            }
            let mut cfg = HeadConfig::new(rows / k, d)
                .with_subcenters(k)
                .with_scale(a.get_or("scale", 64.0)?);
            cfg.margins = Margins::Uniform(a.get_or("margins", 0.5)?);
            ck.to_head(Some(cfg)).map_err(|e| relabel(e, &path))?
        }
    };
    Ok((ck, head, path))
}

/// The features to evaluate or predict on: files, a named built-in set, or
/// the built-in set recorded in the checkpoint. Standardised as in training.
fn eval_data<T: Real>(
    a: &Args,
    ck: &Checkpoint,
    ck_path: &str,
    with_labels: bool,
) -> Result<(Split<T>, Paths), CliError> {
    let (mut split, paths) = if let Some(fp) = a.str("features") {
        if a.has("data") {
            return Err(usage("--data and --features cannot be combined"));
        }
        if with_labels {
            let lp = a.str("labels");
            let paths = Paths {
                features: fp.to_string(),
                labels: lp.unwrap_or(fp).to_string(),
            };
            (input::load_files::<T>(fp, lp)?, paths)
        } else {
            let paths = Paths {
                features: fp.to_string(),
                labels: String::new(),
            };
            (input::load_features::<T>(fp)?, paths)
        }
    } else {
        if a.has("labels") {
            return Err(usage("--labels needs --features"));
        }
        let src = if a.has("data") {
            parse_builtin(a)?
        } else {
            match ck.extra().get("data").and_then(|t| Source::from_tag(t)) {
                Some(Source::Files) | None => {
                    return Err(usage(if with_labels {
                        "give --features PATH and --labels PATH (or --data digits|synthetic)"
                    } else {
                        "give --features PATH (or --data digits|synthetic)"
                    }))
                }
                Some(s) => s,
            }
        };
        let (_, test) = builtin::<T>(&src)?;
        let name = format!("<{} test split>", src.tag());
        (
            test,
            Paths {
                features: name.clone(),
                labels: name,
            },
        )
    };
    if let Some(s) = Standardize::from_checkpoint(ck, ck_path)? {
        s.apply(&mut split, &paths.features)?;
    }
    Ok((split, paths))
}

/// Where evaluation features and labels came from, for messages.
struct Paths {
    features: String,
    labels: String,
}

pub fn eval(argv: &[String]) -> Result<(), CliError> {
    let a = args::parse("eval", argv, &EVAL_GROUPS)?;
    match a.choice("dtype", &["f32", "f64"], 0)? {
        0 => with_threads(&a, || eval_t::<f32>(&a))?,
        _ => with_threads(&a, || eval_t::<f64>(&a))?,
    }
}

fn check_dim<T: Real>(head: &ArcFaceHead<T>, s: &Split<T>, path: &str) -> Result<(), CliError> {
    let d = head.config().in_channels;
    if s.d != d {
        return Err(input_err(
            path,
            format!(
                "has {} features per sample, the checkpoint's head expects in_channels = {d}",
                s.d
            ),
        ));
    }
    Ok(())
}

fn eval_t<T: Real>(a: &Args) -> Result<(), CliError> {
    let json = a.choice("format", &["table", "json"], 0)? == 1;
    let batch: usize = a.get_or("batch-size", 1024)?;
    if batch == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    let (ck, head, ck_path) = load_ckpt_head::<T>(a)?;
    let (split, paths) = eval_data::<T>(a, &ck, &ck_path, true)?;
    check_dim(&head, &split, &paths.features)?;
    let c = head.config().num_classes;
    check_labels(&split, c, &paths.labels, "the checkpoint's num_classes")?;
    let t = Instant::now();
    let m = evaluate(&head, split.dataset(), batch)?;
    let secs = t.elapsed().as_secs_f64();
    if json {
        println!(
            "{{\"checkpoint\":{},\"samples\":{},\"loss\":{},\"top1\":{},\"top5\":{},\"seconds\":{}}}",
            output::jstr(&ck_path),
            m.samples,
            output::jnum(m.loss),
            output::jnum(m.top1),
            output::jnum(m.top5),
            output::jnum(secs)
        );
    } else {
        println!(
            "arcface eval · {ck_path} · {} samples from {}",
            m.samples, paths.features
        );
        println!("  loss            {:.4}", m.loss);
        println!("  top-1 accuracy  {}", pct(m.top1));
        println!("  top-5 accuracy  {}", pct(m.top5));
        println!(
            "  time            {secs:.3} s ({} embeddings/s)",
            output::human(m.samples as f64 / secs.max(1e-9))
        );
    }
    Ok(())
}

pub fn predict(argv: &[String]) -> Result<(), CliError> {
    let a = args::parse("predict", argv, &PREDICT_GROUPS)?;
    match a.choice("dtype", &["f32", "f64"], 0)? {
        0 => with_threads(&a, || predict_t::<f32>(&a))?,
        _ => with_threads(&a, || predict_t::<f64>(&a))?,
    }
}

fn predict_t<T: Real>(a: &Args) -> Result<(), CliError> {
    let csv = a.choice("format", &["json", "csv"], 0)? == 1;
    let k: usize = a.get_or("top-k", 5)?;
    if k == 0 {
        return Err(usage("--top-k must be at least 1"));
    }
    let batch: usize = a.get_or("batch-size", 1024)?;
    if batch == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    if let Some(p) = a.str("output") {
        output::check_writable(p, "output")?;
    }
    let (ck, head, ck_path) = load_ckpt_head::<T>(a)?;
    let (split, paths) = eval_data::<T>(a, &ck, &ck_path, false)?;
    check_dim(&head, &split, &paths.features)?;
    let d = split.d;
    let k = k.min(head.config().num_classes);
    let mut out = String::new();
    if csv {
        out.push_str("sample");
        for j in 1..=k {
            out.push_str(&format!(",label_{j},score_{j}"));
        }
        out.push('\n');
    } else {
        out.push_str("[\n");
    }
    let n = split.len().max(split.x.len() / d.max(1));
    let mut i = 0;
    for chunk in split.x.chunks(batch.min(n.max(1)).saturating_mul(d.max(1))) {
        let p = head.predict(chunk)?;
        for row in p.topk(k) {
            if csv {
                out.push_str(&i.to_string());
                for (c, s) in &row {
                    out.push_str(&format!(",{c},{}", output::short(s.to_f64())));
                }
                out.push('\n');
            } else {
                let labels: Vec<String> = row.iter().map(|(c, _)| c.to_string()).collect();
                let scores: Vec<String> =
                    row.iter().map(|(_, s)| output::short(s.to_f64())).collect();
                out.push_str(&format!(
                    "{{\"sample\":{i},\"labels\":[{}],\"scores\":[{}]}}{}\n",
                    labels.join(","),
                    scores.join(","),
                    if i + 1 < n { "," } else { "" }
                ));
            }
            i += 1;
        }
    }
    if !csv {
        out.push_str("]\n");
    }
    match a.str("output") {
        Some(p) => output::write_atomic(p, out.as_bytes())?,
        None => {
            use std::io::Write;
            let mut so = std::io::stdout().lock();
            // a closed pipe (`| head`) is not an error worth a message
            let _ = so.write_all(out.as_bytes());
        }
    }
    Ok(())
}
