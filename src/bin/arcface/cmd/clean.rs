//! `arcface clean`: sub-centre cleaning of a labelled set with a head
//! trained with K > 1 (dominant sub-centres, angles, keep masks), then the
//! keep mask, the JSON report, a K = 1 checkpoint of the dominant
//! sub-centres and the kept samples, all written together.

use super::{flag_error, relabel, restore, run_typed};
use crate::args::CleanArgs;
use crate::data::{self, npy_write};
use crate::output::{Files, Outputs};
use crate::report::clean::{self as report, Run};
use crate::CliError;
use arcface::{ArcFaceHead, Checkpoint, CleanConfig, Cleaning, Real};
use std::time::Instant;

/// Runs `clean`.
pub fn run(a: &CleanArgs) -> Result<(), CliError> {
    run_typed!(a.compute, clean(a))
}

fn clean<T: Real>(a: &CleanArgs) -> Result<(), CliError> {
    check_files(a)?;
    let cfg = CleanConfig::new(a.rule.threshold);
    cfg.validate().map_err(|e| flag_error("clean", e))?;
    a.synthetic.params(a.data.data).map_err(CliError::Usage)?;
    let ck_path = &a.checkpoint.checkpoint;
    let (ck, head) = restore::head::<T>(&a.checkpoint, "clean")?;
    let k = head.config().num_subcenters;
    if k < 2 {
        return Err(CliError::input(
            ck_path,
            format!(
                "holds a head with K = {k} sub-centre per class; cleaning needs one trained \
                 with --num-subcenters 2 or more (the paper uses 3)"
            ),
        ));
    }
    let input = restore::labelled_input::<T>(
        &a.data,
        &a.synthetic,
        a.labels.labels.as_deref(),
        (&ck, ck_path),
        &head,
    )?;
    let t = Instant::now();
    let r = head.clean(&input.split.x, &input.split.y, &cfg)?;
    let secs = t.elapsed().as_secs_f64();
    let run = Run {
        checkpoint: ck_path,
        features: &input.features,
        rule: a.rule.rule.into(),
    };
    write_outputs(a, &run, &r, (&ck, &head))?;
    print!("{}", report::summary(&run, &r, secs));
    Ok(())
}

/// The outputs against each other and the inputs, before any work.
fn check_files(a: &CleanArgs) -> Result<(), CliError> {
    let o = &a.output;
    let kept = o.kept_paths();
    let mut files = Files::new();
    files
        .input("--checkpoint", Some(&a.checkpoint.checkpoint))
        .input("--features", a.data.features.as_ref())
        .input("--labels", a.labels.labels.as_ref())
        .input(
            "--margins",
            a.checkpoint.shape.margins.as_ref().and_then(|m| m.file()),
        )
        .output("--keep", o.keep.as_ref())
        .output("--report", o.report.as_ref())
        .output("--single-centre", o.single_centre.as_ref())
        .output("--write-kept", kept.as_ref().map(|p| &p.0))
        .output("--write-kept", kept.as_ref().map(|p| &p.1));
    files.check()
}

/// Stages every requested output, then commits them together.
fn write_outputs<T: Real>(
    a: &CleanArgs,
    run: &Run<'_>,
    r: &Cleaning,
    (ck, head): (&Checkpoint, &ArcFaceHead<T>),
) -> Result<(), CliError> {
    let o = &a.output;
    let keep = r.keep(run.rule);
    let mut out = Outputs::new();
    if let Some(p) = &o.keep {
        out.stage(p, &npy_write::bools(keep))?;
    }
    if let Some(p) = &o.report {
        out.stage(p, report::json(run, r).as_bytes())?;
    }
    if let Some(p) = &o.single_centre {
        let ck_path = &a.checkpoint.checkpoint;
        let single = head
            .to_single_centre(&r.dominant)
            .map_err(|e| relabel(e, ck_path))?;
        let mut one = Checkpoint::from_head(&single, ck.dtype())?;
        for (key, value) in ck.extra() {
            one.set_extra(key.clone(), value.clone());
        }
        out.stage(p, &one.to_bytes()?)?;
    }
    if let (Some((fp, lp)), Some(features)) = (o.kept_paths(), &a.data.features) {
        // the features as read, before the checkpoint's standardisation:
        // `arcface train` standardises its own input
        let raw = data::load_labelled::<T>(features, a.labels.labels.as_deref(), a.data.sep())?;
        let d = raw.d;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (i, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
            x.extend_from_slice(&raw.x[i * d..(i + 1) * d]);
            y.push(raw.y[i]);
        }
        out.stage(fp, &npy_write::matrix(&x, d))?;
        out.stage(lp, &npy_write::int64(&y))?;
    }
    out.commit()
}
