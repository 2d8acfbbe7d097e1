//! The three commands, each a sequence of named steps: [`train`], [`eval`],
//! [`predict`]. [`config`] turns train's flags into the library's
//! configurations; [`restore`] is what eval and predict share (the
//! checkpoint's head and the data to run it on).

mod config;
pub mod eval;
pub mod predict;
mod restore;
pub mod train;

use crate::args::{Builtin, DataArgs, SyntheticArgs};
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

/// The built-in set `--data` names (the digits when absent).
fn builtin_source(d: &DataArgs, s: &SyntheticArgs) -> Source {
    match d.data {
        Some(Builtin::Synthetic) => Source::Synthetic(s.params()),
        Some(Builtin::Digits) | None => Source::Digits,
    }
}

/// Puts the checkpoint's path into a checkpoint error from `to_head`.
fn relabel(e: arcface::Error, path: &str) -> CliError {
    match e {
        arcface::Error::Checkpoint { reason, .. } => CliError::input(path, reason),
        other => CliError::Lib(other),
    }
}
