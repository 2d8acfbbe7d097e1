//! `arcface enrol` and `arcface retire`: change a trained head's classes,
//! each a sequence of named steps: check every file, restore the head (and,
//! with `--save-optimizer`, its optimiser state), change it with the
//! library, write the new checkpoint (the input's metadata carried over) and
//! the state together, print what changed.
//!
//! Both work in f64 whatever the checkpoint's weight dtype, so that every
//! stored weight (f16, bf16, f32 or f64) comes back bit for bit, and write
//! the new checkpoint in the input's dtype: rows the command does not touch
//! are unchanged in the file.

mod names;

use super::{flag_error, relabel, restore};
use crate::args::{EnrolArgs, HeadOutputArgs, RetireArgs};
use crate::data::preprocess::Standardize;
use crate::data::{self, Split};
use crate::output::{Files, Outputs};
use crate::CliError;
use arcface::{load_optimizer, optimizer_path, save_optimizer, ArcFaceHead, Checkpoint, Optimizer};
use names::ClassNames;

/// The element type of the head the commands change (see the module docs).
type W = f64;

/// `--checkpoint`'s files and `--out`'s, checked together before any work.
fn files(ck: &str, margins: Option<&str>, out: &HeadOutputArgs) -> Files {
    let mut f = Files::new();
    f.input("--checkpoint", Some(ck))
        .input(
            "--checkpoint (its optimiser state)",
            out.save_optimizer.then(|| optimizer_path(ck)),
        )
        .input("--margins", margins)
        .output("--out", Some(&out.out))
        .output(
            "--save-optimizer",
            out.save_optimizer.then(|| optimizer_path(&out.out)),
        );
    f
}

/// The optimiser state saved beside `ck`, when `--save-optimizer` asks for it.
fn load_state(
    ck: &str,
    head: &ArcFaceHead<W>,
    out: &HeadOutputArgs,
) -> Result<Option<Optimizer<W>>, CliError> {
    if !out.save_optimizer {
        return Ok(None);
    }
    let p = optimizer_path(ck);
    let opt = load_optimizer(&p, head).map_err(|e| relabel(e, &p.display().to_string()))?;
    Ok(Some(opt))
}

/// Stages the checkpoint of `head` (in `input`'s dtype, with `input`'s
/// metadata and `names`), the optimiser state and the `extra` files, then
/// commits them together.
fn write(
    input: &Checkpoint,
    head: &ArcFaceHead<W>,
    names: &ClassNames,
    opt: Option<&Optimizer<W>>,
    out: &HeadOutputArgs,
    extra: &[(&str, Vec<u8>)],
) -> Result<(), CliError> {
    let mut ck = Checkpoint::from_head(head, input.dtype())?;
    for (k, v) in input.extra() {
        ck.set_extra(k.clone(), v.clone());
    }
    names.store(&mut ck);
    let mut outputs = Outputs::new();
    outputs.stage(&out.out, &ck.to_bytes()?)?;
    if let Some(opt) = opt {
        outputs.stage_with(optimizer_path(&out.out), |tmp| {
            Ok(save_optimizer(opt, head, tmp)?)
        })?;
    }
    for (p, bytes) in extra {
        outputs.stage(p, bytes)?;
    }
    outputs.commit()
}

/// `C classes (R retired) × K = k, D = d → out`.
fn head_line(head: &ArcFaceHead<W>, out: &str) -> String {
    let cfg = head.config();
    let retired = head.retired().len();
    let retired = if retired > 0 {
        format!(" ({retired} retired)")
    } else {
        String::new()
    };
    format!(
        "head: {} classes{retired} × K = {}, D = {} → {out}",
        cfg.num_classes, cfg.num_subcenters, cfg.in_channels
    )
}

/// The new classes' embeddings, standardised as the checkpoint records,
/// with their labels (all 0 without `--labels`).
fn embeddings(a: &EnrolArgs, ck: &Checkpoint, head: &ArcFaceHead<W>) -> Result<Split<W>, CliError> {
    let (ck_path, i) = (&a.checkpoint.checkpoint, &a.input);
    let mut split = match &i.labels {
        Some(lp) => data::load_labelled::<W>(&i.features, Some(lp), i.sep())?,
        None => {
            let mut s = data::load_features::<W>(&i.features, i.sep())?;
            s.y = vec![0; s.x.len() / s.d.max(1)];
            s
        }
    };
    let d = head.config().in_channels;
    if split.d != d {
        return Err(CliError::input(
            &i.features,
            format!(
                "has {} features per sample, the checkpoint's head expects in_channels = {d}",
                split.d
            ),
        ));
    }
    if let Some(s) = Standardize::from_checkpoint(ck, ck_path)? {
        s.apply(&mut split, &i.features, Some(ck_path))?;
    }
    Ok(split)
}

/// Runs `enrol`.
pub fn enrol(a: &EnrolArgs) -> Result<(), CliError> {
    let (ck_path, i, o) = (&a.checkpoint.checkpoint, &a.input, &a.output);
    let margins = a.checkpoint.shape.margins.as_ref().and_then(|m| m.file());
    let mut f = files(ck_path, margins, o);
    f.input("--features", Some(&i.features))
        .input("--labels", i.labels.as_ref());
    f.check()?;
    let (ck, mut head) = restore::head::<W>(&a.checkpoint, "enrol")?;
    let mut names = ClassNames::from_checkpoint(&ck, ck_path)?;
    let split = embeddings(a, &ck, &head)?;
    let m = if split.len() == 0 {
        1
    } else {
        split.max_label() as usize + 1
    };
    if !i.label_names.is_empty() && i.label_names.len() != m {
        return Err(CliError::Usage(format!(
            "{} --label-name given for {m} new class{}",
            i.label_names.len(),
            if m == 1 { "" } else { "es" }
        )));
    }
    let mut opt = load_state(ck_path, &head, o)?;
    let how = a.imprint.enrolment();
    let from = i.labels.as_deref().unwrap_or(&i.features);
    let new = match &i.labels {
        Some(_) => head.enrol_many(&split.x, &split.y, &how),
        None => head.enrol(&split.x, &how).map(|c| vec![c]),
    }
    .map_err(|e| match e {
        arcface::Error::InvalidConfig { .. } => flag_error("enrol", e),
        arcface::Error::NoEmbeddings { .. } => CliError::input(from, e.to_string()),
        other => CliError::input(&i.features, other.to_string()),
    })?;
    if let Some(opt) = &mut opt {
        opt.fit(&head)?;
    }
    for (c, name) in new.iter().zip(&i.label_names) {
        names.insert(*c, name);
    }
    write(&ck, &head, &names, opt.as_ref(), o, &[])?;
    for (j, &c) in new.iter().enumerate() {
        let n = split.y.iter().filter(|&&l| l == j as i64).count();
        println!(
            "enrolled class {} from {n} embedding{}",
            names.show(c),
            if n == 1 { "" } else { "s" }
        );
    }
    println!("{}", head_line(&head, &o.out));
    Ok(())
}

/// Runs `retire`.
pub fn retire(a: &RetireArgs) -> Result<(), CliError> {
    let (ck_path, o) = (&a.checkpoint.checkpoint, &a.output);
    let margins = a.checkpoint.shape.margins.as_ref().and_then(|m| m.file());
    let mut f = files(ck_path, margins, o);
    f.output("--mapping", a.mapping.as_ref());
    f.check()?;
    let (ck, mut head) = restore::head::<W>(&a.checkpoint, "retire")?;
    let names = ClassNames::from_checkpoint(&ck, ck_path)?;
    let mut opt = load_state(ck_path, &head, o)?;
    let bad =
        |e: arcface::Error| CliError::Usage(format!("invalid value for '--classes <C,…>': {e}"));
    let shown: Vec<String> = a.classes.iter().map(|&c| names.show(c)).collect();
    if !a.remove {
        head.retire(&a.classes).map_err(bad)?;
        write(&ck, &head, &names, opt.as_ref(), o, &[])?;
        println!(
            "retired classes {} (masked: kept in the weights, never predicted)",
            shown.join(", ")
        );
        println!("{}", head_line(&head, &o.out));
        return Ok(());
    }
    let map = head.remove_classes(&a.classes).map_err(bad)?;
    if let Some(opt) = &mut opt {
        opt.remap_classes(&map, &head)?;
    }
    let names = names.remap(&map);
    let mapping: Vec<serde_json::Value> = map.iter().map(|m| (*m).into()).collect();
    let json = serde_json::Value::from(mapping).to_string() + "\n";
    let extra: Vec<(&str, Vec<u8>)> = a
        .mapping
        .iter()
        .map(|p| (p.as_str(), json.clone().into_bytes()))
        .collect();
    write(&ck, &head, &names, opt.as_ref(), o, &extra)?;
    println!("removed classes {}", shown.join(", "));
    println!("renumbered: {}", renumbering(&map));
    println!("{}", head_line(&head, &o.out));
    Ok(())
}

/// The classes a removal moves, as runs: `4–6 → 3–5, 8 → 6`.
fn renumbering(map: &[Option<usize>]) -> String {
    let span = |a: usize, b: usize| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}–{b}")
        }
    };
    let mut runs = Vec::new();
    let mut i = 0;
    while i < map.len() {
        let Some(n) = map[i] else {
            i += 1;
            continue;
        };
        let start = i;
        while i + 1 < map.len() && map[i + 1] == Some(n + (i + 1 - start)) {
            i += 1;
        }
        if n != start {
            runs.push(format!("{} → {}", span(start, i), span(n, n + i - start)));
        }
        i += 1;
    }
    if runs.is_empty() {
        "no class moves".into()
    } else {
        runs.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::renumbering;

    #[test]
    fn a_removal_is_shown_as_the_runs_it_moves() {
        let map = [
            Some(0),
            Some(1),
            Some(2),
            None,
            Some(3),
            Some(4),
            Some(5),
            None,
            Some(6),
        ];
        assert_eq!(renumbering(&map), "4–6 → 3–5, 8 → 6");
        assert_eq!(renumbering(&[Some(0), Some(1), None]), "no class moves");
        assert_eq!(renumbering(&[None, Some(0)]), "1 → 0");
    }
}
