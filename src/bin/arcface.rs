//! `arcface`: fine-tune an ArcFace head (mmpretrain's `ArcFaceClsHead`) on
//! embeddings, evaluate it, and predict with it.
//!
//! ```text
//! arcface train                       # the embedded UCI digits set, a few seconds
//! arcface train --data synthetic --num-subcenters 3 --adaptive-margins
//! arcface train --features x.npy --labels y.npy --val-fraction 0.1 --out head.safetensors
//! arcface eval --checkpoint head.safetensors --features x.npy --labels y.npy
//! arcface predict --checkpoint head.safetensors --features x.npy --top-k 5 --format csv
//! ```
//!
//! Run `arcface help` or `arcface <command> --help` for every option.

#[path = "arcface/args.rs"]
mod args;
#[path = "arcface/gz.rs"]
mod gz;
#[path = "arcface/input.rs"]
mod input;
#[path = "arcface/output.rs"]
mod output;
#[path = "arcface/run.rs"]
mod run;

use args::{Group, Opt};
use std::fmt;

/// Why the program stopped.
#[derive(Debug)]
pub enum CliError {
    /// Bad command line (exit status 2).
    Usage(String),
    /// A bad input file (exit status 1).
    Input { path: String, reason: String },
    /// An error from the library (exit status 1).
    Lib(arcface::Error),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Input { path, reason } => write!(f, "{path}: {reason}"),
            CliError::Lib(e) => write!(f, "{e}"),
        }
    }
}

impl From<arcface::Error> for CliError {
    fn from(e: arcface::Error) -> Self {
        CliError::Lib(e)
    }
}

macro_rules! opt {
    ($name:literal, $meta:literal, $help:literal) => {
        Opt {
            name: $name,
            meta: $meta,
            help: $help,
        }
    };
}

const DATA: Group = Group {
    title: "Data (default: the embedded UCI digits set)",
    opts: &[
        opt!("data", "NAME", "built-in data: digits (1797 UCI digits, CC BY 4.0) or synthetic"),
        opt!("features", "PATH", "embeddings: .npy (float32/float16/float64, (N, D)) or .csv"),
        opt!("labels", "PATH", "labels: .npy (int64, (N,)) or .csv/.txt, one per line [default: a CSV's last column]"),
        opt!("val-features", "PATH", "held-out embeddings, as --features"),
        opt!("val-labels", "PATH", "held-out labels, as --labels"),
        opt!("val-fraction", "F", "hold out this fraction of each class of --features [default: 0]"),
        opt!("num-classes", "C", "number of classes [default: largest label + 1]"),
        opt!("standardize", "", "standardise feature columns with the training mean/std (kept in the checkpoint; always on for digits)"),
        opt!("synthetic-classes", "N", "classes of --data synthetic [default: 1000]"),
        opt!("synthetic-dim", "D", "dimension of --data synthetic [default: 128]"),
        opt!("synthetic-seed", "S", "seed of --data synthetic [default: 0]"),
    ],
};

const HEAD: Group = Group {
    title: "Head (mmpretrain ArcFaceClsHead; upstream names and defaults)",
    opts: &[
        opt!("num-subcenters", "K", "sub-centres per class [default: 1]"),
        opt!("scale", "S", "logit scale [default: 64]"),
        opt!(
            "margins",
            "M|FILE",
            "additive angular margin, or a file with one per class [default: 0.5; digits: 0.2]"
        ),
        opt!("easy-margin", "", "easy_margin=True"),
        opt!(
            "adaptive-margins",
            "",
            "SetAdaptiveMarginsHook: per-class margins from the training label counts"
        ),
        opt!(
            "margin-min",
            "M",
            "adaptive margin of the most frequent class [default: 0.05]"
        ),
        opt!(
            "margin-max",
            "M",
            "adaptive margin of the rarest class [default: 0.5]"
        ),
        opt!(
            "power",
            "P",
            "adaptive margins' exponent on the counts [default: -0.25]"
        ),
        opt!(
            "margin-grad",
            "RULE",
            "exact or straight-through (deviation D2) [default: exact]"
        ),
        opt!(
            "label-smooth-val",
            "EPS",
            "use LabelSmoothLoss with this epsilon [default: CrossEntropyLoss]"
        ),
        opt!(
            "mode",
            "MODE",
            "LabelSmoothLoss mode: original or classy_vision [default: original]"
        ),
        opt!("loss-weight", "W", "loss_weight [default: 1.0]"),
        opt!(
            "class-weight",
            "FILE",
            "class_weight: one number per class, one per line"
        ),
        opt!("reduction", "R", "mean or sum [default: mean]"),
    ],
};

const OPTIM: Group = Group {
    title: "Optimiser (torch.optim) and schedule (mmengine)",
    opts: &[
        opt!("optimizer", "NAME", "SGD or AdamW [default: SGD]"),
        opt!(
            "lr",
            "LR",
            "base learning rate [default: 0.1 for SGD, 0.001 for AdamW]"
        ),
        opt!("momentum", "M", "SGD momentum [default: 0.9]"),
        opt!("dampening", "D", "SGD dampening [default: 0]"),
        opt!("nesterov", "", "SGD with Nesterov momentum"),
        opt!(
            "weight-decay",
            "WD",
            "weight decay [default: 0.0001 for SGD, 0.01 for AdamW]"
        ),
        opt!("betas", "B1,B2", "AdamW betas [default: 0.9,0.999]"),
        opt!("eps", "EPS", "AdamW eps [default: 1e-8]"),
        opt!(
            "lr-schedule",
            "NAME",
            "cosine, step or constant [default: cosine]"
        ),
        opt!("eta-min", "LR", "cosine: final learning rate [default: 0]"),
        opt!(
            "step-size",
            "EPOCHS",
            "step: epochs between decays [default: a third of --epochs]"
        ),
        opt!("gamma", "G", "step: decay factor [default: 0.1]"),
        opt!("warmup-epochs", "E", "linear warm-up epochs [default: 0]"),
        opt!(
            "warmup-start-factor",
            "F",
            "warm-up's first learning-rate factor [default: 0.001]"
        ),
    ],
};

const TRAINING: Group = Group {
    title: "Training",
    opts: &[
        opt!("epochs", "N", "passes over the training set [default: 20]"),
        opt!("batch-size", "N", "samples per step [default: 128]"),
        opt!(
            "seed",
            "S",
            "seed of the weight init and the shuffling [default: 0]"
        ),
        opt!("threads", "N", "worker threads, 0 = all cores [default: 0]"),
        opt!("dtype", "T", "arithmetic: f32 or f64 [default: f32]"),
        opt!("drop-last", "", "drop each epoch's last, smaller batch"),
        opt!(
            "eval-every",
            "N",
            "evaluate on the test split every N epochs, 0 = only at the end [default: 1]"
        ),
        opt!(
            "no-train-accuracy",
            "",
            "skip the training accuracy (saves a third of the work)"
        ),
        opt!(
            "init",
            "CKPT",
            "start from these weights (e.g. exported from PyTorch)"
        ),
        opt!(
            "resume",
            "CKPT",
            "continue a run: weights, configuration and CKPT's .optim.safetensors"
        ),
    ],
};

const OUTPUT: Group = Group {
    title: "Output (each file written atomically, only on success)",
    opts: &[
        opt!(
            "out",
            "PATH",
            "write the checkpoint (safetensors, loads into mmpretrain)"
        ),
        opt!(
            "weight-dtype",
            "T",
            "checkpoint weight dtype: f32, f16, bf16 or f64 [default: f32]"
        ),
        opt!(
            "save-optimizer",
            "",
            "also write the optimiser state to <out>.optim.safetensors"
        ),
        opt!("metrics", "PATH", "write per-epoch metrics as JSON lines"),
        opt!(
            "curves",
            "PATH",
            "write the training curves (loss, accuracy per epoch) as SVG"
        ),
        opt!("quiet", "", "no progress output"),
    ],
};

pub static TRAIN_GROUPS: [Group; 5] = [DATA, HEAD, OPTIM, TRAINING, OUTPUT];

const EVAL_CKPT: Group = Group {
    title: "Checkpoint",
    opts: &[
        opt!(
            "checkpoint",
            "PATH",
            "a safetensors checkpoint (from `arcface train` or PyTorch)"
        ),
        opt!(
            "num-subcenters",
            "K",
            "for a checkpoint without arcface metadata [default: 1]"
        ),
        opt!(
            "scale",
            "S",
            "for a checkpoint without arcface metadata [default: 64]"
        ),
        opt!(
            "margins",
            "M",
            "for a checkpoint without arcface metadata [default: 0.5]"
        ),
    ],
};

const EVAL_DATA: Group = Group {
    title: "Data (default: the data set the checkpoint was trained on, when built in)",
    opts: &[
        opt!(
            "data",
            "NAME",
            "built-in data: digits or synthetic (its test split)"
        ),
        opt!("features", "PATH", "embeddings: .npy or .csv"),
        opt!(
            "labels",
            "PATH",
            "labels: .npy or .csv/.txt [default: a CSV's last column]"
        ),
        opt!(
            "synthetic-classes",
            "N",
            "classes of --data synthetic [default: 1000]"
        ),
        opt!(
            "synthetic-dim",
            "D",
            "dimension of --data synthetic [default: 128]"
        ),
        opt!(
            "synthetic-seed",
            "S",
            "seed of --data synthetic [default: 0]"
        ),
    ],
};

const EVAL_OUT: Group = Group {
    title: "Output",
    opts: &[
        opt!("format", "FMT", "table or json [default: table]"),
        opt!(
            "batch-size",
            "N",
            "samples per forward pass [default: 1024]"
        ),
        opt!("dtype", "T", "arithmetic: f32 or f64 [default: f32]"),
        opt!("threads", "N", "worker threads, 0 = all cores [default: 0]"),
    ],
};

pub static EVAL_GROUPS: [Group; 3] = [EVAL_CKPT, EVAL_DATA, EVAL_OUT];

const PRED_DATA: Group = Group {
    title: "Data (default: the test split of the built-in data set the checkpoint was trained on)",
    opts: &[
        opt!(
            "data",
            "NAME",
            "built-in data: digits or synthetic (its test split)"
        ),
        opt!(
            "features",
            "PATH",
            "embeddings: .npy or .csv (every column a feature)"
        ),
        opt!(
            "synthetic-classes",
            "N",
            "classes of --data synthetic [default: 1000]"
        ),
        opt!(
            "synthetic-dim",
            "D",
            "dimension of --data synthetic [default: 128]"
        ),
        opt!(
            "synthetic-seed",
            "S",
            "seed of --data synthetic [default: 0]"
        ),
    ],
};

const PRED_OUT: Group = Group {
    title: "Output",
    opts: &[
        opt!("top-k", "K", "labels and scores per sample [default: 5]"),
        opt!("format", "FMT", "json or csv [default: json]"),
        opt!(
            "output",
            "PATH",
            "write here (atomically) instead of standard output"
        ),
        opt!(
            "batch-size",
            "N",
            "samples per forward pass [default: 1024]"
        ),
        opt!("dtype", "T", "arithmetic: f32 or f64 [default: f32]"),
        opt!("threads", "N", "worker threads, 0 = all cores [default: 0]"),
    ],
};

pub static PREDICT_GROUPS: [Group; 3] = [EVAL_CKPT, PRED_DATA, PRED_OUT];

const USAGE: &str = "\
arcface: fine-tune mmpretrain's ArcFace head on embeddings, on the CPU

Usage: arcface <command> [options]

Commands:
  train      train a head (no options: the embedded UCI digits set, a few seconds)
  eval       loss, top-1 and top-5 of a checkpoint on labelled data
  predict    top-k labels and scores of a checkpoint, as JSON or CSV
  help       this text, or `arcface help <command>`

Examples:
  arcface train
  arcface train --data synthetic --num-subcenters 3 --adaptive-margins
  arcface train --features x.npy --labels y.npy --val-fraction 0.1 --out head.safetensors
  arcface eval --checkpoint head.safetensors --features x.npy --labels y.npy
  arcface predict --checkpoint head.safetensors --features x.npy --format csv

Data: UCI Optical Recognition of Handwritten Digits, E. Alpaydin and C. Kaynak (1998),
CC BY 4.0, https://doi.org/10.24432/C50P49
";

fn command_help(cmd: &str) -> Option<String> {
    Some(match cmd {
        "train" => args::help(
            "arcface train [options]",
            "Train an ArcFace head; prints progress to stderr and a summary table to stdout.",
            &TRAIN_GROUPS,
        ),
        "eval" => args::help(
            "arcface eval --checkpoint PATH [--features PATH --labels PATH | --data NAME]",
            "Evaluate a checkpoint: mean loss, top-1 and top-5 accuracy.",
            &EVAL_GROUPS,
        ),
        "predict" => args::help(
            "arcface predict --checkpoint PATH [--features PATH | --data NAME]",
            "Predict the top-k labels and softmax scores of each sample.",
            &PREDICT_GROUPS,
        ),
        _ => return None,
    })
}

fn real_main(argv: &[String]) -> Result<(), CliError> {
    let Some(cmd) = argv.first() else {
        print!("{USAGE}");
        return Ok(());
    };
    let rest = &argv[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        match command_help(cmd) {
            Some(h) => print!("{h}"),
            None => print!("{USAGE}"),
        }
        return Ok(());
    }
    match cmd.as_str() {
        "train" => run::train(rest),
        "eval" => run::eval(rest),
        "predict" => run::predict(rest),
        "help" | "--help" | "-h" => {
            match rest.first().and_then(|c| command_help(c)) {
                Some(h) => print!("{h}"),
                None => print!("{USAGE}"),
            }
            Ok(())
        }
        "--version" | "-V" | "version" => {
            println!("arcface {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(CliError::Usage(format!(
            "unknown command {other:?}; expected train, eval, predict or help"
        ))),
    }
}

fn main() {
    let mut argv = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(a) => {
                eprintln!("error: argument {a:?} is not valid UTF-8");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = real_main(&argv) {
        eprintln!("error: {e}");
        if let CliError::Usage(_) = e {
            let cmd = argv.first().map_or("", String::as_str);
            if command_help(cmd).is_some() {
                eprintln!("(see `arcface {cmd} --help`)");
            }
            std::process::exit(2);
        }
        std::process::exit(1);
    }
}
