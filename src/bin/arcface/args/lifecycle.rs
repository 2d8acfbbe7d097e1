//! `arcface enrol`'s and `arcface retire`'s options: the checkpoint (and the
//! head's shape for one without metadata), the new classes' embeddings, the
//! classes to retire, and the outputs.

use super::{dflt, finite, CheckpointArgs, DelimiterArg};
use crate::data::Delimiter;
use arcface::Enrolment;
use clap::Args;

#[derive(Args)]
#[command(next_help_heading = "New classes")]
pub struct EnrolInputArgs {
    /// Embeddings of the new classes: .npy (float32/float16/float64, (N, D)) or .csv, standardised as the checkpoint records
    #[arg(long, value_name = "PATH")]
    pub features: String,
    /// The new class of each row, 0..m for m new classes (.npy int64 or one per line) [default: every row one new class]
    #[arg(long, value_name = "PATH")]
    pub labels: Option<String>,
    /// The field separator of CSV files [default: the first line's]
    #[arg(long, value_enum, value_name = "SEP", ignore_case = true)]
    pub delimiter: Option<DelimiterArg>,
    /// A name for each new class, in order (repeat the flag; stored in the checkpoint's metadata `class_names`)
    #[arg(long = "label-name", value_name = "NAME")]
    pub label_names: Vec<String>,
}

impl EnrolInputArgs {
    /// `--delimiter`, as the readers take it.
    pub fn sep(&self) -> Option<Delimiter> {
        self.delimiter.map(Delimiter::from)
    }
}

#[derive(Args)]
#[command(next_help_heading = "Imprinting")]
pub struct ImprintArgs {
    #[arg(long, allow_negative_numbers = true, value_name = "S",
          help = dflt("Seed of the sub-centres' spherical k-means (K > 1)", Enrolment::default().seed))]
    pub seed: Option<u64>,
    #[arg(long, allow_negative_numbers = true, value_name = "N",
          help = dflt("Most Lloyd iterations of the spherical k-means", Enrolment::default().kmeans_iters))]
    pub kmeans_iters: Option<usize>,
    /// Margin of the new classes [default: the head's uniform margin]
    #[arg(long, allow_negative_numbers = true, value_name = "M", value_parser = finite)]
    pub margin: Option<f64>,
}

impl ImprintArgs {
    /// The library's enrolment settings: its defaults, with the flags given.
    pub fn enrolment(&self) -> Enrolment {
        let d = Enrolment::default();
        Enrolment {
            seed: self.seed.unwrap_or(d.seed),
            kmeans_iters: self.kmeans_iters.unwrap_or(d.kmeans_iters),
            margin: self.margin.or(d.margin),
            ..d
        }
    }
}

#[derive(Args)]
#[command(next_help_heading = "Output (written together, only on success)")]
pub struct HeadOutputArgs {
    /// The new checkpoint (in the weight dtype of --checkpoint, its metadata carried over)
    #[arg(long, value_name = "PATH")]
    pub out: String,
    /// Also carry the optimiser state saved beside --checkpoint (.optim.safetensors) over to beside --out, fitted to the new head
    #[arg(long)]
    pub save_optimizer: bool,
}

#[derive(Args)]
pub struct EnrolArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub input: EnrolInputArgs,
    #[command(flatten)]
    pub imprint: ImprintArgs,
    #[command(flatten)]
    pub output: HeadOutputArgs,
}

#[derive(Args)]
pub struct RetireArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// The classes to retire, e.g. 3,7
    #[arg(
        long,
        value_name = "C,…",
        value_delimiter = ',',
        required = true,
        help_heading = "Classes"
    )]
    pub classes: Vec<usize>,
    /// Remove the classes' rows and renumber the classes after them, instead of masking them out of predictions
    #[arg(long, help_heading = "Classes")]
    pub remove: bool,
    /// With --remove: write the label mapping as JSON, a list giving each old class its new index (null: removed)
    #[arg(
        long,
        value_name = "PATH",
        requires = "remove",
        help_heading = "Output (written together, only on success)"
    )]
    pub mapping: Option<String>,
    #[command(flatten)]
    pub output: HeadOutputArgs,
}
