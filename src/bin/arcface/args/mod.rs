//! The command line, declared with clap's derive. Argument groups shared by
//! the commands are declared once and flattened into each: data and
//! synthetic data, the head's shape (`--num-subcenters`, `--scale`,
//! `--margins`), arithmetic and threads.
//!
//! Defaults come from the library's configuration types. An option whose
//! absence means "keep the base configuration" (the checkpoint's when
//! fine-tuning, or the library's defaults) is an `Option` without a clap
//! default, and its help states the default instead.

mod infer;
mod train;

pub use infer::*;
pub use train::*;

use crate::data::builtin::{SynthParams, DIGITS_MARGIN};
use arcface::{HeadConfig, Margins};
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
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
}

#[derive(Args)]
#[command(next_help_heading = DATA_HEADING)]
pub struct SyntheticArgs {
    /// Classes of --data synthetic
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = SynthParams::DEFAULT.classes,
          value_parser = between(SynthParams::MIN as u64, SynthParams::MAX_CLASSES as u64))]
    pub synthetic_classes: usize,
    /// Dimension of --data synthetic
    #[arg(long, allow_negative_numbers = true, value_name = "D", default_value_t = SynthParams::DEFAULT.dim,
          value_parser = between(SynthParams::MIN as u64, SynthParams::MAX_DIM as u64))]
    pub synthetic_dim: usize,
    /// Seed of --data synthetic
    #[arg(long, allow_negative_numbers = true, value_name = "S", default_value_t = SynthParams::DEFAULT.seed)]
    pub synthetic_seed: u64,
}

impl SyntheticArgs {
    pub fn params(&self) -> SynthParams {
        SynthParams {
            classes: self.synthetic_classes,
            dim: self.synthetic_dim,
            seed: self.synthetic_seed,
        }
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
    /// A number is a margin; anything else names a margins file.
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.parse::<f64>() {
            Ok(m) => MarginsArg::Uniform(m),
            Err(_) => MarginsArg::File(s.to_string()),
        })
    }

    /// The margins of a head of `num_classes` classes (reading the file).
    pub fn resolve(&self, num_classes: usize) -> arcface::Result<Margins> {
        Ok(match self {
            MarginsArg::Uniform(m) => Margins::Uniform(*m),
            MarginsArg::File(p) => Margins::PerClass(arcface::load_margins_file(p, num_classes)?),
        })
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
    #[arg(long, allow_negative_numbers = true, value_name = "S", help = dflt("Logit scale", num(HeadConfig::DEFAULT_SCALE)))]
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
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
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
