//! `arcface clean`'s options: the checkpoint of a head trained with
//! sub-centres, the labelled data, the rule, and the outputs.

use super::{finite, CheckpointArgs, ComputeArgs, DataArgs, LabelsArgs, SyntheticArgs};
use arcface::{CleanConfig, CleanRule};
use clap::{Args, ValueEnum};

/// `--rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuleArg {
    /// The paper's: keep when the angle to the dominant sub-centre is below the threshold
    Official,
    /// Also drop samples nearest a non-dominant sub-centre of their class
    Strict,
}

impl From<RuleArg> for CleanRule {
    fn from(r: RuleArg) -> Self {
        match r {
            RuleArg::Official => CleanRule::Official,
            RuleArg::Strict => CleanRule::Strict,
        }
    }
}

#[derive(Args)]
#[command(next_help_heading = "Cleaning")]
pub struct CleanRuleArgs {
    /// Keep a sample when its angle to its class's dominant sub-centre is below this many degrees, in (0, 180)
    #[arg(long, allow_negative_numbers = true, value_name = "DEG", value_parser = finite,
          default_value_t = CleanConfig::DEFAULT_THRESHOLD_DEGREES)]
    pub threshold: f64,
    /// Which samples --keep and --write-kept keep (the report counts both)
    #[arg(long, value_enum, value_name = "RULE", ignore_case = true, default_value_t = RuleArg::Official)]
    pub rule: RuleArg,
}

#[derive(Args)]
#[command(next_help_heading = "Output (written together, only on success)")]
pub struct CleanOutputArgs {
    /// The keep mask: .npy of NumPy bool, one per sample (x[np.load(PATH)] selects the kept rows)
    #[arg(long, value_name = "PATH")]
    pub keep: Option<String>,
    /// Per-sample and per-class results as JSON
    #[arg(long, value_name = "PATH")]
    pub report: Option<String>,
    /// A K = 1 checkpoint of the dominant sub-centres (same margins, scale, standardisation)
    #[arg(long, value_name = "PATH")]
    pub single_centre: Option<String>,
    /// The kept samples as PREFIX.features.npy and PREFIX.labels.npy (features as read, for `arcface train`)
    #[arg(long, value_name = "PREFIX", requires = "features")]
    pub write_kept: Option<String>,
}

impl CleanOutputArgs {
    /// The files of `--write-kept`.
    pub fn kept_paths(&self) -> Option<(String, String)> {
        self.write_kept
            .as_ref()
            .map(|p| (format!("{p}.features.npy"), format!("{p}.labels.npy")))
    }
}

#[derive(Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub labels: LabelsArgs,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
    #[command(flatten)]
    pub rule: CleanRuleArgs,
    #[command(flatten)]
    pub output: CleanOutputArgs,
    #[command(flatten)]
    pub compute: ComputeArgs,
}
