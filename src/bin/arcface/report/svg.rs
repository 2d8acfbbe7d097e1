//! `--curves`: loss and accuracy per epoch as an SVG figure, two panels
//! side by side, written by hand (a few dozen elements; no plotting crate).

use arcface::EpochInfo;
use std::fmt::Write;

/// One line of a panel.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    dash: bool,
    points: Vec<(f64, f64)>,
}

impl Series<'_> {
    fn dash_attr(&self) -> &'static str {
        if self.dash {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        }
    }
}

/// A round tick step (1, 2 or 5 × 10ⁿ) giving about five ticks over `span`.
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

/// Margins of the plot area inside a panel: left, right, top, bottom.
const MARGINS: (f64, f64, f64, f64) = (58.0, 14.0, 30.0, 42.0);

/// A panel's geometry: the plot area in figure coordinates and the value
/// ranges it maps from.
struct Panel {
    x0: f64,
    y0: f64,
    px: f64,
    py: f64,
    pw: f64,
    ph: f64,
    lo: f64,
    hi: f64,
    ystep: f64,
    xmax: f64,
}

impl Panel {
    /// The panel at (`x0`, `y0`) of size `w`×`h` whose y axis spans
    /// `y_range` (or the series' range), rounded out to whole ticks.
    fn new(
        (x0, y0, w, h): (f64, f64, f64, f64),
        series: &[Series<'_>],
        y_range: Option<(f64, f64)>,
        epochs: usize,
    ) -> Self {
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
        let (ml, mr, mt, mb) = MARGINS;
        Panel {
            x0,
            y0,
            px: x0 + ml,
            py: y0 + mt,
            pw: w - ml - mr,
            ph: h - mt - mb,
            lo: (lo / ystep).floor() * ystep,
            hi: (hi / ystep).ceil() * ystep,
            ystep,
            xmax: epochs.max(2) as f64,
        }
    }

    fn sx(&self, e: f64) -> f64 {
        self.px + (e - 1.0) / (self.xmax - 1.0) * self.pw
    }

    fn sy(&self, v: f64) -> f64 {
        self.py + self.ph - (v - self.lo) / (self.hi - self.lo) * self.ph
    }

    /// The title, the frame, and the y grid with its labels.
    fn frame(&self, out: &mut String, title: &str) {
        let (px, py, pw, ph) = (self.px, self.py, self.pw, self.ph);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{title}</text>",
            px,
            self.y0 + 18.0
        );
        let _ = writeln!(
            out,
            "<rect x=\"{px:.1}\" y=\"{py:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#999\"/>"
        );
        let mut v = self.lo;
        while v <= self.hi + self.ystep * 1e-6 {
            let y = self.sy(v);
            let _ = writeln!(
                out,
                "<line x1=\"{px:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                px + pw,
                px - 6.0,
                y + 4.0,
                tick_label(v, self.ystep)
            );
            v += self.ystep;
        }
    }

    /// The epoch ticks and both axis labels.
    fn axes(&self, out: &mut String, ylabel: &str) {
        let (px, py, pw, ph) = (self.px, self.py, self.pw, self.ph);
        let xstep = nice_step((self.xmax - 1.0).max(1.0)).max(1.0);
        let mut ticks = vec![1.0];
        let mut e = xstep;
        while e <= self.xmax + 1e-9 {
            if e > 1.0 + xstep / 2.0 {
                ticks.push(e);
            }
            e += xstep;
        }
        for e in ticks {
            let x = self.sx(e);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                py + ph,
                py + ph + 4.0,
                py + ph + 17.0,
                e as usize
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">epoch</text>",
            px + pw / 2.0,
            py + ph + 34.0
        );
        let (lx, ly) = (self.x0 + 14.0, py + ph / 2.0);
        let _ = writeln!(
            out,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {lx:.1} {ly:.1})\">{ylabel}</text>"
        );
    }

    /// Each series as a polyline with a dot per epoch.
    fn lines(&self, out: &mut String, shown: &[&Series<'_>]) {
        for s in shown {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|(e, v)| format!("{:.1},{:.1}", self.sx(*e), self.sy(*v)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                path.join(" "),
                s.color,
                s.dash_attr()
            );
            for (e, v) in &s.points {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                    self.sx(*e),
                    self.sy(*v),
                    s.color
                );
            }
        }
    }

    /// The legend's top-left corner, in the top or bottom right corner of
    /// the plot, for `n` entries.
    fn legend_origin(&self, n: usize, bottom: bool) -> (f64, f64) {
        let lx = self.px + self.pw - 136.0;
        if bottom {
            (lx, self.py + self.ph - 10.0 - 16.0 * n as f64)
        } else {
            (lx, self.py + 6.0)
        }
    }

    /// The legend's box (drawn under the lines).
    fn legend_box(&self, out: &mut String, n: usize, bottom: bool) {
        let (lx, ly0) = self.legend_origin(n, bottom);
        let _ = writeln!(
            out,
            "<rect x=\"{lx:.1}\" y=\"{ly0:.1}\" width=\"128\" height=\"{:.1}\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>",
            16.0 * n as f64 + 6.0
        );
    }

    /// The legend's entries (drawn over the lines).
    fn legend_entries(&self, out: &mut String, shown: &[&Series<'_>], bottom: bool) {
        let (lx, ly0) = self.legend_origin(shown.len(), bottom);
        for (k, s) in shown.iter().enumerate() {
            let ly = ly0 + 17.0 + 16.0 * k as f64;
            let lx = lx + 6.0;
            let _ = writeln!(
                out,
                "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                ly - 4.0,
                lx + 20.0,
                ly - 4.0,
                s.color,
                s.dash_attr(),
                lx + 26.0,
                ly,
                s.name
            );
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `(epoch, value)` for every epoch where `f` has a value.
fn points(history: &[EpochInfo], f: impl Fn(&EpochInfo) -> Option<f64>) -> Vec<(f64, f64)> {
    history
        .iter()
        .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
        .collect()
}

fn series<'a>(name: &'a str, color: &'a str, dash: bool, points: Vec<(f64, f64)>) -> Series<'a> {
    Series {
        name,
        color,
        dash,
        points,
    }
}

/// Loss and accuracy per epoch, two panels side by side.
pub fn curves(title: &str, history: &[EpochInfo]) -> String {
    let (w, h) = (960.0, 380.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{:.1}\" y=\"20\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
        w / 2.0,
        xml_escape(title)
    );
    let epochs = history.last().map_or(1, |e| e.epochs);
    let (blue, orange, green) = ("#1f77b4", "#ff7f0e", "#2ca02c");
    let loss = [
        series(
            "train loss",
            blue,
            false,
            points(history, |e| Some(e.train_loss)),
        ),
        series(
            "test loss",
            orange,
            false,
            points(history, |e| e.val.map(|v| v.loss)),
        ),
    ];
    let pct = |f: fn(&EpochInfo) -> Option<f64>| points(history, move |e| f(e).map(|v| 100.0 * v));
    let acc = [
        series("train top-1", blue, false, pct(|e| e.train_top1)),
        series("test top-1", orange, false, pct(|e| e.val.map(|v| v.top1))),
        series("test top-5", green, true, pct(|e| e.val.map(|v| v.top5))),
    ];
    let values = |s: &[Series<'_>]| -> Vec<f64> {
        s.iter()
            .flat_map(|s| s.points.iter())
            .map(|p| p.1)
            .collect()
    };
    let loss_hi = values(&loss).into_iter().fold(0.0f64, f64::max);
    let acc_lo = values(&acc).into_iter().fold(100.0f64, f64::min);
    let panels = [
        (
            "Loss",
            "loss (per sample)",
            &loss[..],
            (0.0, loss_hi),
            0.0,
            false,
        ),
        (
            "Accuracy",
            "accuracy (%)",
            &acc[..],
            (acc_lo.clamp(0.0, 90.0), 100.0),
            w / 2.0,
            true,
        ),
    ];
    for (title, ylabel, s, range, x0, legend_bottom) in panels {
        let p = Panel::new((x0, 24.0, w / 2.0, h - 24.0), s, Some(range), epochs);
        let shown: Vec<&Series<'_>> = s.iter().filter(|s| !s.points.is_empty()).collect();
        p.frame(&mut out, title);
        p.axes(&mut out, ylabel);
        p.legend_box(&mut out, shown.len(), legend_bottom);
        p.lines(&mut out, &shown);
        p.legend_entries(&mut out, &shown, legend_bottom);
    }
    out.push_str("</svg>\n");
    out
}
