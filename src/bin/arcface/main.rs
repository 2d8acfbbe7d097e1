//! `arcface`: fine-tune an ArcFace head (mmpretrain's `ArcFaceClsHead`) on
//! embeddings, evaluate it, and predict with it.
//!
//! ```text
//! arcface train                       # the embedded UCI digits set, a few seconds
//! arcface train --data synthetic --num-subcenters 3 --adaptive-margins
//! arcface train --features x.npy --labels y.npy --val-fraction 0.1 --out head.safetensors
//! arcface eval --checkpoint head.safetensors --features x.npy --labels y.npy
//! arcface predict --checkpoint head.safetensors --features x.npy --top-k 5 --format csv
//! arcface enrol --checkpoint head.safetensors --features new.npy --out head2.safetensors
//! arcface retire --checkpoint head2.safetensors --classes 3,7 --out head3.safetensors
//! ```
//!
//! Run `arcface help` or `arcface <command> --help` for every option.
//!
//! The data flow: [`args`] (the command line) → [`cmd`] (one module per
//! command) reading through [`data`], training or evaluating with the
//! library, and handing what it shows to [`report`] and what it writes to
//! [`output`].

mod args;
mod cmd;
mod data;
mod memory;
mod output;
mod report;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};
use std::fmt;
use std::process::ExitCode;

/// Why the program stopped.
#[derive(Debug)]
pub enum CliError {
    /// A bad combination of options (exit status 2, like clap's own errors).
    Usage(String),
    /// A bad input file (exit status 1).
    Input { path: String, reason: String },
    /// An error from the library (exit status 1).
    Lib(arcface::Error),
    /// More memory than the machine can give (exit status 1).
    Memory(String),
}

impl CliError {
    /// A problem with the file at `path`.
    pub fn input(path: &str, reason: impl Into<String>) -> Self {
        CliError::Input {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Memory(m) => write!(f, "{m}"),
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

fn main() -> ExitCode {
    // clap prints --help, --version and its own errors (status 2) itself
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        None => {
            let _ = Cli::command().print_help();
            return ExitCode::SUCCESS;
        }
        Some(Command::Version) => {
            println!("arcface {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(Command::Train(a)) => ("train", cmd::train::run(&a)),
        Some(Command::Eval(a)) => ("eval", cmd::eval::run(&a)),
        Some(Command::Predict(a)) => ("predict", cmd::predict::run(&a)),
        Some(Command::Enrol(a)) => ("enrol", cmd::lifecycle::enrol(&a)),
        Some(Command::Retire(a)) => ("retire", cmd::lifecycle::retire(&a)),
        Some(Command::Clean(a)) => ("clean", cmd::clean::run(&a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let CliError::Usage(_) = e {
                eprintln!("(see `arcface {name} --help`)");
                return ExitCode::from(2);
            }
            ExitCode::from(1)
        }
    }
}
