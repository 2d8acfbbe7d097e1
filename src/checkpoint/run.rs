//! The run record ([`RunRecord`]) in an optimiser-state file's metadata, as
//! the object `run` (absent in files of optimisers stepped by hand, and in
//! files written before runs were recorded):
//! `{"sample_rate", "lr", "warmup_epochs", "warmup_start_factor",
//! "schedule": {"type": "constant" | "step" | "cosine", "step_size",
//! "gamma" | "eta_min"}}`.

use super::metadata::Obj;
use crate::error::Result;
use crate::optim::LrSchedule;
use crate::train::RunRecord;
use serde_json::{Map, Value};

/// The metadata key of the record.
pub(super) const RUN_KEY: &str = "run";

/// The record as JSON.
pub(super) fn run_to_json(r: &RunRecord) -> Value {
    let mut s = Map::new();
    match r.schedule {
        LrSchedule::Constant => {
            s.insert("type".into(), Value::from("constant"));
        }
        LrSchedule::Step { step_size, gamma } => {
            s.insert("type".into(), Value::from("step"));
            s.insert("step_size".into(), Value::from(step_size));
            s.insert("gamma".into(), Value::from(gamma));
        }
        LrSchedule::Cosine { eta_min } => {
            s.insert("type".into(), Value::from("cosine"));
            s.insert("eta_min".into(), Value::from(eta_min));
        }
    }
    let mut m = Map::new();
    m.insert("sample_rate".into(), Value::from(r.sample_rate));
    m.insert("lr".into(), Value::from(r.lr));
    m.insert("warmup_epochs".into(), Value::from(r.warmup_epochs));
    m.insert(
        "warmup_start_factor".into(),
        Value::from(r.warmup_start_factor),
    );
    m.insert("schedule".into(), Value::Object(s));
    Value::Object(m)
}

/// The record of the top-level object `top`, `None` when it has none.
pub(super) fn parse_run(top: &Obj<'_>) -> Result<Option<RunRecord>> {
    if !top.map.contains_key(RUN_KEY) {
        return Ok(None);
    }
    let o = top.obj(RUN_KEY, "run.")?;
    let s = o.obj("schedule", "run.schedule.")?;
    let schedule = match s.str("type")? {
        "constant" => LrSchedule::Constant,
        "step" => LrSchedule::Step {
            step_size: s.usize("step_size")?,
            gamma: s.f64("gamma")?,
        },
        "cosine" => LrSchedule::Cosine {
            eta_min: s.f64("eta_min")?,
        },
        t => {
            return Err(s.err(
                "type",
                &format!("is {t:?}, expected \"constant\", \"step\" or \"cosine\""),
            ))
        }
    };
    Ok(Some(RunRecord {
        sample_rate: o.f64("sample_rate")?,
        lr: o.f64("lr")?,
        schedule,
        warmup_epochs: o.usize("warmup_epochs")?,
        warmup_start_factor: o.f64("warmup_start_factor")?,
    }))
}
