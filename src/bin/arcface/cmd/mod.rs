//! The commands, each a sequence of named steps: [`train`], [`eval`],
//! [`predict`], and [`lifecycle`]'s `enrol` and `retire`. [`config`] turns train's flags into the library's
//! configurations; [`restore`] is what eval and predict share (the
//! checkpoint's head and the data to run it on); [`footprint`] estimates
//! the memory each asks of the library before it asks.

pub mod clean;
mod config;
pub mod eval;
mod footprint;
pub mod lifecycle;
pub mod predict;
mod restore;
pub mod train;

use crate::args::{self, Builtin, DataArgs, SyntheticArgs};
use crate::data::builtin::Source;
use crate::CliError;

/// Runs `f` on a pool of `threads` threads (the global pool for 0).
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, CliError> {
    if threads == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CliError::Usage(format!("--threads {threads}: {e}")))?;
    Ok(pool.install(f))
}

/// Runs `$f::<f32>(args)` or `$f::<f64>(args)` as `--dtype` says, on `--threads` threads.
macro_rules! run_typed {
    ($compute:expr, $f:ident($($arg:expr),*)) => {
        match $compute.dtype {
            $crate::args::Dtype::F32 => super::with_threads($compute.threads, || $f::<f32>($($arg),*))?,
            $crate::args::Dtype::F64 => super::with_threads($compute.threads, || $f::<f64>($($arg),*))?,
        }
    };
}
use run_typed;

/// The built-in set `--data` names (the digits when absent); a
/// `--synthetic-*` flag without `--data synthetic` is a usage error.
fn builtin_source(d: &DataArgs, s: &SyntheticArgs) -> Result<Source, CliError> {
    let params = s.params(d.data).map_err(CliError::Usage)?;
    Ok(match (d.data, params) {
        (Some(Builtin::Synthetic), Some(p)) => Source::Synthetic(p),
        _ => Source::Digits,
    })
}

/// An error about the checkpoint at `path` (its weights, its metadata, the
/// head it holds), naming it.
fn relabel(e: arcface::Error, path: &str) -> CliError {
    match e {
        arcface::Error::Checkpoint { reason, .. } => CliError::input(path, reason),
        arcface::Error::Io { message, .. } => CliError::input(path, message),
        other => CliError::input(path, other.to_string()),
    }
}

/// A configuration error from the library about a value `command` took
/// from a flag: a usage error naming the flag (as clap names its own), for
/// example `invalid value for '--lr <LR>': is -1, must be finite and >= 0`.
/// Other errors pass through.
fn flag_error(command: &str, e: arcface::Error) -> CliError {
    if let arcface::Error::InvalidConfig { field, reason } = &e {
        if let Some(flag) = args::flag_of(command, field) {
            return CliError::Usage(format!("invalid value for '{flag}': {reason}"));
        }
    }
    // a class list given on the command line (`train --train-classes`)
    if let arcface::Error::UnknownClass { what, .. } | arcface::Error::DuplicateClass { what, .. } =
        &e
    {
        if let Some(flag) = args::flag_of(command, what) {
            return CliError::Usage(format!("invalid value for '{flag}': {e}"));
        }
    }
    // `--resume` with a flag that does not continue the saved run
    if let arcface::Error::ResumeMismatch { field, .. } = &e {
        let field = if *field == "schedule" {
            "lr_schedule"
        } else {
            field
        };
        let flag = args::flag_of(command, field).unwrap_or_else(|| field.to_string());
        return CliError::Usage(format!("--resume with {flag}: {e}"));
    }
    CliError::Lib(e)
}
