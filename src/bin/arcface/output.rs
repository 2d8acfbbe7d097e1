//! What the program shows and writes: the progress bar, JSON lines, the
//! summary table, the SVG training curves, and atomic file writes.

use crate::CliError;
use arcface::{EpochInfo, EvalMetrics, StepInfo};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

/// Writes `bytes` to `path` atomically (temporary sibling, then rename).
pub fn write_atomic(path: &str, bytes: &[u8]) -> Result<(), CliError> {
    let p = Path::new(path);
    let io = |e: std::io::Error| CliError::Input {
        path: path.to_string(),
        reason: format!("cannot write: {e}"),
    };
    let name = p
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("{path:?} is not a file path")))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = p.with_file_name(tmp);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, p)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Checks, before any work, that `path` can be written later: its directory
/// exists and it is not a directory itself.
pub fn check_writable(path: &str, flag: &str) -> Result<(), CliError> {
    let p = Path::new(path);
    if p.is_dir() {
        return Err(CliError::Usage(format!("--{flag} {path}: is a directory")));
    }
    if p.file_name().is_none() {
        return Err(CliError::Usage(format!(
            "--{flag} {path:?}: not a file path"
        )));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--{flag} {path}: directory {} does not exist",
            dir.display()
        )));
    }
    Ok(())
}

/// A JSON number, or `null` when not finite.
pub fn jnum(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// A probability for people and parsers: 7 significant digits, JSON-valid.
pub fn short(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if (1e-4..1e6).contains(&x.abs()) {
        let s = format!("{x:.7}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return s.to_string();
    }
    format!("{x:.6e}")
}

/// A JSON string literal.
pub fn jstr(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `12.3k`, `4.56M`: a rate for humans.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`).
pub fn peak_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn fmt_bytes(b: Option<u64>) -> String {
    match b {
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        None => "n/a".into(),
    }
}

/// The live progress bar (stderr, redrawn in place with `\r` when stderr is
/// a terminal) and one line per epoch.
pub struct Progress {
    tty: bool,
    quiet: bool,
    last: Option<Instant>,
    width: usize,
    epoch_loss: f64,
    epoch_correct: usize,
    epoch_seen: usize,
    train_seconds: f64,
    samples: usize,
    last_val: Option<EvalMetrics>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            quiet,
            last: None,
            width: 0,
            epoch_loss: 0.0,
            epoch_correct: 0,
            epoch_seen: 0,
            train_seconds: 0.0,
            samples: 0,
            last_val: None,
        }
    }

    pub fn step(&mut self, s: &StepInfo) {
        self.epoch_loss += s.loss * s.batch_len as f64;
        self.epoch_correct += s.batch_correct.unwrap_or(0);
        self.epoch_seen += s.batch_len;
        if self.quiet || !self.tty {
            return;
        }
        let now = Instant::now();
        if let Some(t) = self.last {
            if now.duration_since(t).as_millis() < 80 && s.step != s.steps_per_epoch {
                return;
            }
        }
        self.last = Some(now);
        const BAR: usize = 24;
        let frac = s.step as f64 / s.steps_per_epoch as f64;
        let filled = (frac * BAR as f64).round() as usize;
        let bar: String = "█".repeat(filled) + &"░".repeat(BAR - filled);
        let rate = (self.samples + self.epoch_seen) as f64 / s.elapsed.max(1e-9);
        let acc = if s.batch_correct.is_some() {
            format!(
                " acc {:5.1}%",
                100.0 * self.epoch_correct as f64 / self.epoch_seen.max(1) as f64
            )
        } else {
            String::new()
        };
        let val = match self.last_val {
            Some(v) => format!(" val {:5.1}%", 100.0 * v.top1),
            None => String::new(),
        };
        let line = format!(
            "epoch {:>w$}/{} {bar} {:3.0}% loss {:.4}{acc}{val} {} emb/s",
            s.epoch,
            s.epochs,
            100.0 * frac,
            self.epoch_loss / self.epoch_seen.max(1) as f64,
            human(rate),
            w = digits(s.epochs)
        );
        let pad = self.width.saturating_sub(line.chars().count());
        self.width = line.chars().count();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        let _ = err.flush();
    }

    pub fn epoch(&mut self, e: &EpochInfo) {
        self.samples += e.samples;
        self.train_seconds += e.train_seconds;
        if e.val.is_some() {
            self.last_val = e.val;
        }
        let mut line = String::new();
        self.epoch_loss = 0.0;
        self.epoch_correct = 0;
        self.epoch_seen = 0;
        if self.quiet {
            return;
        }
        line.push_str(&format!(
            "epoch {:>w$}/{}  loss {:.4}",
            e.epoch,
            e.epochs,
            e.train_loss,
            w = digits(e.epochs)
        ));
        if let Some(t) = e.train_top1 {
            line.push_str(&format!("  train top-1 {:5.1}%", 100.0 * t));
        }
        if let Some(v) = e.val {
            line.push_str(&format!(
                "  test loss {:.4} top-1 {:5.1}% top-5 {:5.1}%",
                v.loss,
                100.0 * v.top1,
                100.0 * v.top5
            ));
        }
        line.push_str(&format!(
            "  lr {:.3e}  {} emb/s",
            e.lr,
            human(e.samples as f64 / e.train_seconds.max(1e-9))
        ));
        let mut err = std::io::stderr().lock();
        if self.tty {
            let pad = self.width.saturating_sub(line.chars().count());
            let _ = writeln!(err, "\r{line}{}", " ".repeat(pad));
            self.width = 0;
        } else {
            let _ = writeln!(err, "{line}");
        }
        self.last = None;
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// One JSON line per epoch.
pub fn epoch_json(e: &EpochInfo) -> String {
    let mut s = format!(
        "{{\"event\":\"epoch\",\"epoch\":{},\"epochs\":{},\"lr\":{},\"train_loss\":{}",
        e.epoch,
        e.epochs,
        jnum(e.lr),
        jnum(e.train_loss)
    );
    if let Some(t) = e.train_top1 {
        s.push_str(&format!(",\"train_top1\":{}", jnum(t)));
    }
    if let Some(v) = e.val {
        s.push_str(&format!(
            ",\"val_loss\":{},\"val_top1\":{},\"val_top5\":{}",
            jnum(v.loss),
            jnum(v.top1),
            jnum(v.top5)
        ));
    }
    s.push_str(&format!(
        ",\"samples\":{},\"seconds\":{},\"embeddings_per_s\":{}}}",
        e.samples,
        jnum(e.seconds),
        jnum(e.samples as f64 / e.train_seconds.max(1e-9))
    ));
    s
}

/// Metrics as JSON fields `"<prefix>_loss":…,"<prefix>_top1":…,"<prefix>_top5":…`.
pub fn metrics_json(prefix: &str, m: &EvalMetrics) -> String {
    format!(
        "\"{prefix}_loss\":{},\"{prefix}_top1\":{},\"{prefix}_top5\":{},\"{prefix}_samples\":{}",
        jnum(m.loss),
        jnum(m.top1),
        jnum(m.top5),
        m.samples
    )
}

// ---------------------------------------------------------------- SVG

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    dash: bool,
    points: Vec<(f64, f64)>,
}

fn nice_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    let m = if r < 1.5 {
        1.0
    } else if r < 3.0 {
        2.0
    } else if r < 7.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    title: &str,
    ylabel: &str,
    series: &[Series<'_>],
    y_range: Option<(f64, f64)>,
    epochs: usize,
    legend_bottom: bool,
) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut lo, mut hi) = pts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    if let Some((a, b)) = y_range {
        (lo, hi) = (a, b);
    }
    if !lo.is_finite() || !hi.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let ystep = nice_step(hi - lo);
    let lo = (lo / ystep).floor() * ystep;
    let hi = (hi / ystep).ceil() * ystep;
    let (ml, mr, mt, mb) = (58.0, 14.0, 30.0, 42.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let (px, py) = (x0 + ml, y0 + mt);
    let xmax = epochs.max(2) as f64;
    let sx = |e: f64| px + (e - 1.0) / (xmax - 1.0) * pw;
    let sy = |v: f64| py + ph - (v - lo) / (hi - lo) * ph;
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{title}</text>\n",
        px,
        y0 + 18.0
    ));
    out.push_str(&format!(
        "<rect x=\"{px:.1}\" y=\"{py:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#999\"/>\n"
    ));
    let mut v = lo;
    while v <= hi + ystep * 1e-6 {
        let y = sy(v);
        out.push_str(&format!(
            "<line x1=\"{px:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n",
            px + pw,
            px - 6.0,
            y + 4.0,
            tick_label(v, ystep)
        ));
        v += ystep;
    }
    let xstep = nice_step((xmax - 1.0).max(1.0)).max(1.0);
    let mut ticks = vec![1.0];
    let mut e = xstep;
    while e <= xmax + 1e-9 {
        if e > 1.0 + xstep / 2.0 {
            ticks.push(e);
        }
        e += xstep;
    }
    for e in ticks {
        let x = sx(e);
        out.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n",
            py + ph,
            py + ph + 4.0,
            py + ph + 17.0,
            e as usize
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">epoch</text>\n",
        px + pw / 2.0,
        py + ph + 34.0
    ));
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {:.1} {:.1})\">{ylabel}</text>\n",
        x0 + 14.0,
        py + ph / 2.0,
        x0 + 14.0,
        py + ph / 2.0
    ));
    let shown = series.iter().filter(|s| !s.points.is_empty()).count();
    let (lx, ly0) = (
        px + pw - 136.0,
        if legend_bottom {
            py + ph - 10.0 - 16.0 * shown as f64
        } else {
            py + 6.0
        },
    );
    out.push_str(&format!(
        "<rect x=\"{lx:.1}\" y=\"{ly0:.1}\" width=\"128\" height=\"{:.1}\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
        16.0 * shown as f64 + 6.0
    ));
    for s in series.iter() {
        if s.points.is_empty() {
            continue;
        }
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(e, v)| format!("{:.1},{:.1}", sx(*e), sy(*v)))
            .collect();
        let dash = if s.dash {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        out.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\n",
            path.join(" "),
            s.color
        ));
        for (e, v) in &s.points {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>\n",
                sx(*e),
                sy(*v),
                s.color
            ));
        }
    }
    for (k, s) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
        let dash = if s.dash {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let ly = ly0 + 17.0 + 16.0 * k as f64;
        let lx = lx + 6.0;
        out.push_str(&format!(
            "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>\n",
            ly - 4.0,
            lx + 20.0,
            ly - 4.0,
            s.color,
            lx + 26.0,
            ly,
            s.name
        ));
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Loss and accuracy per epoch, two panels side by side.
pub fn curves_svg(title: &str, history: &[EpochInfo]) -> String {
    let (w, h) = (960.0, 380.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{:.1}\" y=\"20\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
        w / 2.0,
        xml_escape(title)
    );
    let ep = |f: &dyn Fn(&EpochInfo) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    let epochs = history.last().map_or(1, |e| e.epochs);
    let loss = [
        Series {
            name: "train loss",
            color: "#1f77b4",
            dash: false,
            points: ep(&|e| Some(e.train_loss)),
        },
        Series {
            name: "test loss",
            color: "#ff7f0e",
            dash: false,
            points: ep(&|e| e.val.map(|v| v.loss)),
        },
    ];
    let acc = [
        Series {
            name: "train top-1",
            color: "#1f77b4",
            dash: false,
            points: ep(&|e| e.train_top1.map(|v| 100.0 * v)),
        },
        Series {
            name: "test top-1",
            color: "#ff7f0e",
            dash: false,
            points: ep(&|e| e.val.map(|v| 100.0 * v.top1)),
        },
        Series {
            name: "test top-5",
            color: "#2ca02c",
            dash: true,
            points: ep(&|e| e.val.map(|v| 100.0 * v.top5)),
        },
    ];
    let mut body = String::new();
    let loss_hi = loss
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.1)
        .fold(0.0f64, f64::max);
    panel(
        &mut body,
        0.0,
        24.0,
        w / 2.0,
        h - 24.0,
        "Loss",
        "loss (per sample)",
        &loss,
        Some((0.0, loss_hi)),
        epochs,
        false,
    );
    let acc_lo = acc
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.1)
        .fold(100.0f64, f64::min);
    panel(
        &mut body,
        w / 2.0,
        24.0,
        w / 2.0,
        h - 24.0,
        "Accuracy",
        "accuracy (%)",
        &acc,
        Some((acc_lo.clamp(0.0, 90.0), 100.0)),
        epochs,
        true,
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}
