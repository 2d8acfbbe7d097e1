//! `arcface eval`'s and `arcface predict`'s options: the checkpoint (and
//! the head's shape for one without metadata), data, output, computation.

use super::{between, ComputeArgs, DataArgs, LabelsArgs, ShapeArgs, SyntheticArgs};
use clap::{Args, ValueEnum};

/// Samples per forward pass of `eval` and `predict`.
pub const EVAL_BATCH: usize = 1024;

#[derive(Args)]
#[command(next_help_heading = "Checkpoint")]
pub struct CheckpointArgs {
    /// A safetensors checkpoint (from `arcface train` or PyTorch)
    #[arg(long, value_name = "PATH")]
    pub checkpoint: String,
    /// Classes, for a checkpoint without arcface metadata (C·K weight rows)
    #[arg(long, allow_negative_numbers = true, value_name = "C", value_parser = between(1, u64::MAX),
          help_heading = "Head (mmpretrain ArcFaceClsHead; upstream names and defaults)")]
    pub num_classes: Option<usize>,
    #[command(flatten)]
    pub shape: ShapeArgs,
}

#[derive(Args)]
#[command(next_help_heading = "Computation")]
pub struct InferArgs {
    /// Samples per forward pass
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = EVAL_BATCH, value_parser = between(1, u64::MAX))]
    pub batch_size: usize,
    #[command(flatten)]
    pub compute: ComputeArgs,
}

/// `eval --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub labels: LabelsArgs,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
    /// Output format
    #[arg(long, value_enum, value_name = "FMT", ignore_case = true, default_value_t = EvalFormat::Table,
          help_heading = "Output")]
    pub format: EvalFormat,
    #[command(flatten)]
    pub infer: InferArgs,
}

/// `predict --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PredictFormat {
    Json,
    Csv,
}

#[derive(Args)]
#[command(next_help_heading = "Output")]
pub struct PredictOutputArgs {
    /// Labels and scores per sample
    #[arg(long, allow_negative_numbers = true, value_name = "K", default_value_t = 5, value_parser = between(1, u64::MAX))]
    pub top_k: usize,
    /// Output format
    #[arg(long, value_enum, value_name = "FMT", ignore_case = true, default_value_t = PredictFormat::Json)]
    pub format: PredictFormat,
    /// Write here (together with nothing else, only on success) instead of standard output
    #[arg(long, value_name = "PATH")]
    pub output: Option<String>,
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
    #[command(flatten)]
    pub output: PredictOutputArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}
