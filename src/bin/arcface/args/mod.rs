//! The command line, declared with clap's derive. Argument groups shared by
//! the commands are declared once and flattened into each: data and
//! synthetic data, the head's shape (`--num-subcenters`, `--scale`,
//! `--margins`), arithmetic and threads.
//!
//! Defaults come from the library's configuration types. An option whose
//! absence means "keep the base configuration" (the checkpoint's when
//! fine-tuning, or the library's defaults) is an `Option` without a clap
//! default, and its help states the default instead.

mod clean;
mod infer;
mod lifecycle;
mod train;

pub use clean::*;
pub use infer::*;
pub use lifecycle::*;
pub use train::*;

use crate::data::builtin::{SynthParams, DIGITS_MARGIN};
use crate::data::Delimiter;
use crate::CliError;
use arcface::{HeadConfig, Margins};
use clap::builder::RangedU64ValueParser;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::fmt::Display;

/// The most worker threads `--threads` accepts.
const MAX_THREADS: u64 = 1024;

const ABOUT: &str = "arcface: fine-tune mmpretrain's ArcFace head on embeddings, on the CPU";

const AFTER_HELP: &str = "\
Examples:
  arcface train
  arcface train --data synthetic --num-subcenters 3 --adaptive-margins
  arcface train --features x.npy --labels y.npy --val-fraction 0.1 --out head.safetensors
  arcface eval --checkpoint head.safetensors --features x.npy --labels y.npy
  arcface predict --checkpoint head.safetensors --features x.npy --format csv
  arcface enrol --checkpoint head.safetensors --features new.npy --label-name ada --out head2.safetensors
  arcface retire --checkpoint head2.safetensors --classes 3,7 --out head3.safetensors
  arcface clean --checkpoint k3.safetensors --features x.npy --labels y.npy --keep keep.npy

Data: UCI Optical Recognition of Handwritten Digits, E. Alpaydin and C. Kaynak (1998),
CC BY 4.0, https://doi.org/10.24432/C50P49";

/// `text [default: value]`: the help of an option without a clap default.
fn dflt(text: &str, value: impl Display) -> String {
    format!("{text} [default: {value}]")
}

/// A default number as people write it: `64`, `0.5`, `1e-8`.
fn num(x: f64) -> String {
    let (plain, sci) = (format!("{x}"), format!("{x:?}"));
    if sci.len() < plain.len() {
        sci
    } else {
        plain
    }
}

/// The heading of the data options.
const DATA_HEADING: &str =
    "Data (default: the embedded UCI digits set; eval and predict: the checkpoint's built-in set)";

/// The name a value enum shows on the command line.
fn name<E: ValueEnum>(e: E) -> String {
    e.to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// Integers in `lo..=hi`; a value outside is an error naming the flag.
fn between(lo: u64, hi: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(lo..=hi)
}

/// How clap shows the option of `command` that sets the library's
/// configuration field `field` (`lr` → `--lr <LR>`, `beta1` → `--betas
/// <B1,B2>`, `nesterov` → `--nesterov`), if the command has one.
pub fn flag_of(command: &str, field: &str) -> Option<String> {
    let long = match field {
        "beta1" | "beta2" => "betas".to_string(),
        f => f.replace('_', "-"),
    };
    let cli = Cli::command();
    let arg = cli
        .find_subcommand(command)?
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))?;
    let takes_value = arg.get_action().takes_values();
    Some(match arg.get_value_names() {
        Some(names) if takes_value => format!("--{long} <{}>", names.join(" ")),
        _ => format!("--{long}"),
    })
}

/// A finite number (every number flag; the library checks each one's range).
fn finite(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err("must be a finite number".into())
    }
}

#[derive(Parser)]
#[command(name = "arcface", bin_name = "arcface", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a head: progress on stderr, a summary table on stdout (no options: the embedded UCI digits set, a few seconds)
    Train(Box<TrainArgs>),
    /// Loss, top-1 and top-5 accuracy of a checkpoint on labelled data
    Eval(EvalArgs),
    /// Top-k labels and softmax scores of each sample, as JSON or CSV
    Predict(PredictArgs),
    /// Add classes to a trained head from a few embeddings each (weight imprinting)
    Enrol(Box<EnrolArgs>),
    /// Retire classes of a trained head: mask them out of predictions, or remove them
    Retire(RetireArgs),
    /// Find label noise with a sub-centre head: dominant sub-centres, angles, keep mask, K = 1 head
    Clean(Box<CleanArgs>),
    /// Print the version
    #[command(hide = true)]
    Version,
}

/// A built-in data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Builtin {
    Digits,
    Synthetic,
}

#[derive(Args)]
#[command(next_help_heading = DATA_HEADING)]
pub struct DataArgs {
    /// Built-in data: digits (1797 UCI digits, CC BY 4.0) or synthetic; eval and predict use its test split
    #[arg(
        long,
        value_enum,
        value_name = "NAME",
        ignore_case = true,
        conflicts_with = "features"
    )]
    pub data: Option<Builtin>,
    /// Embeddings: .npy (float32/float16/float64, (N, D)) or .csv
    #[arg(long, value_name = "PATH")]
    pub features: Option<String>,
    /// The field separator of CSV files [default: the first line's: ';', else a tab, else ',', else spaces]
    #[arg(long, value_enum, value_name = "SEP", ignore_case = true)]
    pub delimiter: Option<DelimiterArg>,
}

/// `--delimiter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DelimiterArg {
    #[value(alias = ",")]
    Comma,
    #[value(alias = ";")]
    Semicolon,
    Tab,
    Space,
}

impl From<DelimiterArg> for Delimiter {
    fn from(d: DelimiterArg) -> Self {
        match d {
            DelimiterArg::Comma => Delimiter::Comma,
            DelimiterArg::Semicolon => Delimiter::Semicolon,
            DelimiterArg::Tab => Delimiter::Tab,
            DelimiterArg::Space => Delimiter::Space,
        }
    }
}

impl DataArgs {
    /// `--delimiter`, as the readers take it.
    pub fn sep(&self) -> Option<Delimiter> {
        self.delimiter.map(Delimiter::from)
    }
}

/// The synthetic set's options: only with `--data synthetic` (checked by
/// [`SyntheticArgs::params`]), so they have no clap defaults.
#[derive(Args)]
#[command(next_help_heading = DATA_HEADING)]
pub struct SyntheticArgs {
    #[arg(long, visible_alias = "classes", allow_negative_numbers = true, value_name = "N",
          value_parser = between(SynthParams::MIN as u64, SynthParams::MAX_CLASSES as u64),
          help = dflt("Classes of --data synthetic", SynthParams::DEFAULT.classes))]
    pub synthetic_classes: Option<usize>,
    #[arg(long, allow_negative_numbers = true, value_name = "D",
          value_parser = between(SynthParams::MIN as u64, SynthParams::MAX_DIM as u64),
          help = dflt("Dimension of --data synthetic", SynthParams::DEFAULT.dim))]
    pub synthetic_dim: Option<usize>,
    #[arg(long, allow_negative_numbers = true, value_name = "S",
          help = dflt("Seed of --data synthetic", SynthParams::DEFAULT.seed))]
    pub synthetic_seed: Option<u64>,
}

impl SyntheticArgs {
    /// The first `--synthetic-*` flag given, if any.
    fn given(&self) -> Option<&'static str> {
        [
            ("--synthetic-classes", self.synthetic_classes.is_some()),
            ("--synthetic-dim", self.synthetic_dim.is_some()),
            ("--synthetic-seed", self.synthetic_seed.is_some()),
        ]
        .into_iter()
        .find_map(|(f, g)| g.then_some(f))
    }

    /// The synthetic set's parameters (defaults where not given), or
    /// `None` when `data` is not `synthetic`; a `--synthetic-*` flag then
    /// is a usage error.
    pub fn params(&self, data: Option<Builtin>) -> Result<Option<SynthParams>, String> {
        if data != Some(Builtin::Synthetic) {
            return match self.given() {
                Some(f) => Err(format!("{f} applies to --data synthetic only")),
                None => Ok(None),
            };
        }
        let d = SynthParams::DEFAULT;
        Ok(Some(SynthParams {
            classes: self.synthetic_classes.unwrap_or(d.classes),
            dim: self.synthetic_dim.unwrap_or(d.dim),
            seed: self.synthetic_seed.unwrap_or(d.seed),
        }))
    }
}

#[derive(Args)]
#[command(next_help_heading = DATA_HEADING)]
pub struct LabelsArgs {
    /// Labels: .npy (int64, (N,)) or .csv/.txt, one per line [default: a CSV's last column]
    #[arg(long, value_name = "PATH", requires = "features")]
    pub labels: Option<String>,
}

/// `--margins`: one margin for every class, or a margins file.
#[derive(Debug, Clone, PartialEq)]
pub enum MarginsArg {
    Uniform(f64),
    File(String),
}

impl MarginsArg {
    /// A number is a margin (it must be finite); anything else names a
    /// margins file.
    fn parse(s: &str) -> Result<Self, String> {
        match s.parse::<f64>() {
            Ok(_) => finite(s).map(MarginsArg::Uniform),
            Err(_) => Ok(MarginsArg::File(s.to_string())),
        }
    }

    /// The margins of a head of `num_classes` classes (reading the file;
    /// its errors name it).
    pub fn resolve(&self, num_classes: usize) -> Result<Margins, CliError> {
        Ok(match self {
            MarginsArg::Uniform(m) => Margins::Uniform(*m),
            MarginsArg::File(p) => Margins::PerClass(
                arcface::load_margins_file(p, num_classes).map_err(|e| match e {
                    arcface::Error::Io { message, .. } => CliError::input(p, message),
                    other => CliError::input(p, other.to_string()),
                })?,
            ),
        })
    }

    /// The file it names, if any.
    pub fn file(&self) -> Option<&str> {
        match self {
            MarginsArg::File(p) => Some(p),
            MarginsArg::Uniform(_) => None,
        }
    }
}

/// The head's shape. `eval` and `predict` use them only for a checkpoint
/// without arcface metadata (a PyTorch export).
#[derive(Args)]
#[command(next_help_heading = "Head (mmpretrain ArcFaceClsHead; upstream names and defaults)")]
pub struct ShapeArgs {
    #[arg(long, allow_negative_numbers = true, value_name = "K",
          help = dflt("Sub-centres per class (eval, predict: for a checkpoint without arcface metadata)",
                      HeadConfig::new(1, 1).num_subcenters))]
    pub num_subcenters: Option<usize>,
    #[arg(long, allow_negative_numbers = true, value_name = "S", value_parser = finite,
          help = dflt("Logit scale", num(HeadConfig::DEFAULT_SCALE)))]
    pub scale: Option<f64>,
    #[arg(long, allow_negative_numbers = true, value_name = "M|FILE", value_parser = MarginsArg::parse,
          help = dflt("Additive angular margin, or a file with one per class",
                      format!("{}; train on digits: {}", num(HeadConfig::DEFAULT_MARGIN), num(DIGITS_MARGIN))))]
    pub margins: Option<MarginsArg>,
}

/// Arithmetic precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    F64,
}

#[derive(Args)]
#[command(next_help_heading = "Computation")]
pub struct ComputeArgs {
    /// Arithmetic
    #[arg(long, value_enum, value_name = "T", ignore_case = true, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Worker threads, 0 = all cores
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = 0, value_parser = between(0, MAX_THREADS))]
    pub threads: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcface::{AdaptiveMargins, TrainConfig};

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn library_fields_map_to_their_flags() {
        assert_eq!(flag_of("train", "lr").as_deref(), Some("--lr <LR>"));
        assert_eq!(
            flag_of("train", "batch_size").as_deref(),
            Some("--batch-size <N>")
        );
        assert_eq!(
            flag_of("train", "beta2").as_deref(),
            Some("--betas <B1,B2>")
        );
        assert_eq!(flag_of("train", "nesterov").as_deref(), Some("--nesterov"));
        assert_eq!(flag_of("eval", "scale").as_deref(), Some("--scale <S>"));
        assert_eq!(flag_of("eval", "lr"), None);
        assert_eq!(flag_of("train", "in_channels"), None);
    }

    #[test]
    fn margins_are_a_number_or_a_file() {
        assert_eq!(MarginsArg::parse("0.3"), Ok(MarginsArg::Uniform(0.3)));
        assert_eq!(
            MarginsArg::parse("m.txt"),
            Ok(MarginsArg::File("m.txt".into()))
        );
        assert_eq!(
            MarginsArg::Uniform(0.3).resolve(4).unwrap(),
            Margins::Uniform(0.3)
        );
        assert!(MarginsArg::parse("nan").is_err() && MarginsArg::parse("-inf").is_err());
        let e = MarginsArg::File("no-such-margins.txt".into())
            .resolve(4)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no-such-margins.txt: "), "{e}");
    }

    #[test]
    fn defaults_are_the_library_s() {
        let cli = Cli::try_parse_from(["arcface", "train"]).unwrap();
        let Some(Command::Train(a)) = cli.command else {
            panic!("not train")
        };
        let d = TrainConfig::default();
        assert_eq!(
            (a.training.epochs, a.training.batch_size, a.training.seed),
            (d.epochs, d.batch_size, d.seed)
        );
        assert_eq!(a.adaptive.power, AdaptiveMargins::default().power);
        assert_eq!(a.optimizer.optimizer, OptimizerName::Sgd);
        assert_eq!(a.schedule.lr_schedule, ScheduleName::Cosine);
    }
}
