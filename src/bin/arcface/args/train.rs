//! `arcface train`'s options: data and held-out data, the head and its
//! loss, adaptive margins, the optimiser, the schedule, training and outputs.

use super::{
    dflt, finite, name, num, ComputeArgs, DataArgs, LabelsArgs, ShapeArgs, SyntheticArgs,
    DATA_HEADING,
};
use arcface::{
    AdamW, AdaptiveMargins, HeadConfig, LossConfig, LrSchedule, MarginGrad, OptimizerConfig,
    Reduction, Sgd, SmoothMode, TrainConfig, WeightDtype,
};
use clap::{Args, ValueEnum};

/// `--lr-schedule step`'s decay factor when `--gamma` is not given (mmengine's `StepLR`).
pub const STEP_GAMMA: f64 = 0.1;

/// AdamW's learning rate when `--lr` is not given (PyTorch's `lr=1e-3`).
pub const ADAMW_LR: f64 = 1e-3;

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub labels: LabelsArgs,
    #[command(flatten)]
    pub held_out: HeldOutArgs,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    #[command(flatten)]
    pub loss: LossArgs,
    #[command(flatten)]
    pub adaptive: AdaptiveArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[command(flatten)]
    pub output: TrainOutputArgs,
}

/// A fraction strictly between 0 and 1.
fn fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if f > 0.0 && f < 1.0 {
        Ok(f)
    } else {
        Err("must be between 0 and 1".into())
    }
}

#[derive(Args)]
#[command(next_help_heading = DATA_HEADING)]
pub struct HeldOutArgs {
    /// Held-out embeddings, as --features
    #[arg(
        long,
        value_name = "PATH",
        requires = "features",
        conflicts_with = "val_fraction"
    )]
    pub val_features: Option<String>,
    /// Held-out labels, as --labels
    #[arg(long, value_name = "PATH", requires = "val_features")]
    pub val_labels: Option<String>,
    /// Hold out this fraction of each class of --features [default: none]
    #[arg(long, allow_negative_numbers = true, value_name = "F", requires = "features", value_parser = fraction)]
    pub val_fraction: Option<f64>,
    /// Number of classes [default: largest label + 1]
    #[arg(long, allow_negative_numbers = true, value_name = "C", value_parser = super::between(1, u64::MAX))]
    pub num_classes: Option<usize>,
    /// Standardise feature columns with the training mean/std (kept in the checkpoint; always on for digits)
    #[arg(long)]
    pub standardize: bool,
}

/// A command-line enum for a subset of a library enum's variants, with the
/// conversion to it and the name a library value has on the command line.
macro_rules! value_enum_of {
    ($(#[$m:meta])* $name:ident => $lib:ident { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl From<$name> for $lib {
            fn from(v: $name) -> Self {
                match v { $($name::$v => $lib::$v),+ }
            }
        }
        impl $name {
            /// The command-line name of `v` (empty if the command line lacks it).
            #[allow(unreachable_patterns)]
            fn name_of(v: $lib) -> String {
                match v {
                    $($lib::$v => name($name::$v),)+
                    _ => String::new(),
                }
            }
        }
    };
}

value_enum_of!(
    /// `--margin-grad`.
    MarginGradArg => MarginGrad { Exact, #[value(alias = "straight_through")] StraightThrough }
);
value_enum_of!(
    /// `--mode`.
    SmoothModeArg => SmoothMode { Original, #[value(name = "classy_vision")] ClassyVision }
);
value_enum_of!(
    /// `--reduction`.
    ReductionArg => Reduction { Mean, Sum }
);

#[derive(Args)]
#[command(next_help_heading = "Head (mmpretrain ArcFaceClsHead; upstream names and defaults)")]
pub struct LossArgs {
    /// easy_margin=True
    #[arg(long)]
    pub easy_margin: bool,
    #[arg(long, value_enum, value_name = "RULE", ignore_case = true,
          help = dflt("Margin derivative (straight-through: deviation D2)",
                      MarginGradArg::name_of(HeadConfig::new(1, 1).margin_grad)))]
    pub margin_grad: Option<MarginGradArg>,
    /// Use LabelSmoothLoss with this epsilon [default: CrossEntropyLoss]
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "EPS")]
    pub label_smooth_val: Option<f64>,
    #[arg(long, value_enum, value_name = "MODE", ignore_case = true, requires = "label_smooth_val",
          help = dflt("LabelSmoothLoss mode",
                      SmoothModeArg::name_of(SmoothMode::default())))]
    pub mode: Option<SmoothModeArg>,
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "W", help = dflt("loss_weight", num(LossConfig::default().loss_weight)))]
    pub loss_weight: Option<f64>,
    /// class_weight: one number per class, one per line
    #[arg(long, value_name = "FILE")]
    pub class_weight: Option<String>,
    #[arg(long, value_enum, value_name = "R", ignore_case = true,
          help = dflt("Loss reduction", ReductionArg::name_of(LossConfig::default().reduction)))]
    pub reduction: Option<ReductionArg>,
}

#[derive(Args)]
#[command(next_help_heading = "Head (mmpretrain ArcFaceClsHead; upstream names and defaults)")]
pub struct AdaptiveArgs {
    /// SetAdaptiveMarginsHook: per-class margins from the training label counts
    #[arg(long)]
    pub adaptive_margins: bool,
    /// Adaptive margin of the most frequent class
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "M", requires = "adaptive_margins",
          default_value_t = AdaptiveMargins::default().margin_min)]
    pub margin_min: f64,
    /// Adaptive margin of the rarest class
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "M", requires = "adaptive_margins",
          default_value_t = AdaptiveMargins::default().margin_max)]
    pub margin_max: f64,
    /// Adaptive margins' exponent on the counts
    #[arg(long, value_parser = finite, value_name = "P", requires = "adaptive_margins", allow_negative_numbers = true,
          default_value_t = AdaptiveMargins::default().power)]
    pub power: f64,
}

/// `--optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerName {
    #[value(name = "SGD")]
    Sgd,
    #[value(name = "AdamW")]
    AdamW,
}

impl From<&OptimizerConfig> for OptimizerName {
    fn from(c: &OptimizerConfig) -> Self {
        match c {
            OptimizerConfig::Sgd(_) => OptimizerName::Sgd,
            OptimizerConfig::AdamW(_) => OptimizerName::AdamW,
        }
    }
}

/// `--betas B1,B2`.
fn betas(s: &str) -> Result<(f64, f64), String> {
    let v: Vec<Result<f64, _>> = s.split(',').map(finite).collect();
    match v.as_slice() {
        [Ok(b1), Ok(b2)] => Ok((*b1, *b2)),
        _ => Err("expected two numbers like 0.9,0.999".into()),
    }
}

#[derive(Args)]
#[command(next_help_heading = "Optimiser (torch.optim)")]
pub struct OptimizerArgs {
    /// The optimiser
    #[arg(long, value_enum, value_name = "NAME", ignore_case = true,
          default_value_t = OptimizerName::from(&OptimizerConfig::default()))]
    pub optimizer: OptimizerName,
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "M", help = dflt("SGD momentum", num(Sgd::default().momentum)))]
    pub momentum: Option<f64>,
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "D", help = dflt("SGD dampening", num(Sgd::default().dampening)))]
    pub dampening: Option<f64>,
    /// SGD with Nesterov momentum
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "WD",
          help = dflt("Weight decay", format!("{} for SGD, {} for AdamW",
                                              num(Sgd::default().weight_decay), num(AdamW::default().weight_decay))))]
    pub weight_decay: Option<f64>,
    #[arg(long, allow_hyphen_values = true, value_name = "B1,B2", value_parser = betas,
          help = dflt("AdamW betas", format!("{},{}", num(AdamW::default().beta1), num(AdamW::default().beta2))))]
    pub betas: Option<(f64, f64)>,
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "EPS", help = dflt("AdamW eps", num(AdamW::default().eps)))]
    pub eps: Option<f64>,
}

/// `--lr-schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleName {
    Cosine,
    Step,
    Constant,
}

impl From<&LrSchedule> for ScheduleName {
    fn from(s: &LrSchedule) -> Self {
        match s {
            LrSchedule::Cosine { .. } => ScheduleName::Cosine,
            LrSchedule::Step { .. } => ScheduleName::Step,
            LrSchedule::Constant => ScheduleName::Constant,
        }
    }
}

/// The cosine schedule's final rate in [`LrSchedule::default`].
fn default_eta_min() -> f64 {
    match LrSchedule::default() {
        LrSchedule::Cosine { eta_min } => eta_min,
        _ => 0.0,
    }
}

#[derive(Args)]
#[command(next_help_heading = "Schedule (mmengine)")]
pub struct ScheduleArgs {
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "LR",
          help = dflt("Base learning rate", format!("{} for SGD, {} for AdamW", num(TrainConfig::default().lr), num(ADAMW_LR))))]
    pub lr: Option<f64>,
    /// The schedule after the warm-up
    #[arg(long, value_enum, value_name = "NAME", ignore_case = true,
          default_value_t = ScheduleName::from(&LrSchedule::default()))]
    pub lr_schedule: ScheduleName,
    /// Cosine: final learning rate
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "LR", default_value_t = default_eta_min())]
    pub eta_min: f64,
    /// Step: epochs between decays [default: a third of --epochs]
    #[arg(long, allow_negative_numbers = true, value_name = "EPOCHS")]
    pub step_size: Option<usize>,
    /// Step: decay factor
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "G", default_value_t = STEP_GAMMA)]
    pub gamma: f64,
    /// Linear warm-up epochs
    #[arg(long, allow_negative_numbers = true, value_name = "E", default_value_t = TrainConfig::default().warmup_epochs)]
    pub warmup_epochs: usize,
    /// Warm-up's first learning-rate factor
    #[arg(long, value_parser = finite, allow_negative_numbers = true, value_name = "F", default_value_t = TrainConfig::default().warmup_start_factor)]
    pub warmup_start_factor: f64,
}

#[derive(Args)]
#[command(next_help_heading = "Training")]
pub struct TrainingArgs {
    /// Passes over the training set
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Samples per step
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// Seed of the weight init, the shuffling and --val-fraction's split
    #[arg(long, allow_negative_numbers = true, value_name = "S", default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Drop each epoch's last, smaller batch
    #[arg(long)]
    pub drop_last: bool,
    /// Evaluate on the test split every N epochs, 0 = only at the end
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = TrainConfig::default().eval_every)]
    pub eval_every: usize,
    /// Skip the training accuracy (saves a third of the work)
    #[arg(long)]
    pub no_train_accuracy: bool,
    /// PartialFC: keep this fraction of the classes per step (the batch's
    /// classes and a uniform sample of the others), updating only their rows
    #[arg(long, allow_negative_numbers = true, value_name = "R", default_value_t = TrainConfig::default().sample_rate)]
    pub sample_rate: f64,
    /// Start from these weights (e.g. exported from PyTorch)
    #[arg(long, value_name = "CKPT")]
    pub init: Option<String>,
    /// Continue a run: weights, head configuration and CKPT's .optim.safetensors
    /// (so no head or optimiser flags)
    #[arg(long, value_name = "CKPT", conflicts_with_all = ["init", "ShapeArgs", "LossArgs", "OptimizerArgs"])]
    pub resume: Option<String>,
    /// Train only these classes' rows (e.g. 7,8,9); the others stay bit for bit
    /// as --init or --resume gives them (needs one of the two)
    #[arg(long, value_name = "C,…", value_delimiter = ',')]
    pub train_classes: Option<Vec<usize>>,
}

/// `--weight-dtype`: the library's names (f32, f16, bf16, f64 and aliases).
fn weight_dtype(s: &str) -> Result<WeightDtype, String> {
    s.parse().map_err(|e: arcface::Error| e.to_string())
}

#[derive(Args)]
#[command(next_help_heading = "Output (written together, only on success)")]
pub struct TrainOutputArgs {
    /// Write the checkpoint (safetensors, loads into mmpretrain)
    #[arg(long, value_name = "PATH")]
    pub out: Option<String>,
    #[arg(long, value_name = "T", requires = "out", value_parser = weight_dtype,
          help = dflt("Checkpoint weight dtype: f32, f16, bf16 or f64",
                      WeightDtype::default().name().to_ascii_lowercase()))]
    pub weight_dtype: Option<WeightDtype>,
    /// Also write the optimiser state beside the checkpoint, as .optim.safetensors
    #[arg(long, requires = "out")]
    pub save_optimizer: bool,
    /// Write per-epoch metrics as JSON lines
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<String>,
    /// Write the training curves (loss, accuracy per epoch) as SVG
    #[arg(long, value_name = "PATH")]
    pub curves: Option<String>,
    /// No progress output
    #[arg(long)]
    pub quiet: bool,
}
