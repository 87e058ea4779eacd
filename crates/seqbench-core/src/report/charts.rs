//! Charts (plotters, SVG and PNG): training-loss curves, accuracy against training throughput with the
//! Pareto front, accuracy against model width when `model.d_model` is swept (Zoology's figure),
//! and — when the suite sweeps a task's length (`seq_len`, LRA's `max_length`, …) — throughput, memory and accuracy
//! against sequence length. Axes spanning more than a decade are drawn in log scale.
use super::row::Row;
use super::{entry, insert};
use crate::metric::{Metric, Unit, METRICS};
use crate::record::{ForecastSample, Record, Status};
use crate::tasks::TaskFacts;
use crate::units::human_rate;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

mod staged;

/// Colours that stay apart on white and for colour-blind readers: Okabe & Ito's (no yellow),
/// then Paul Tol's muted scheme, then black.
const PALETTE: [RGBColor; 15] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(51, 34, 136),
    RGBColor(17, 119, 51),
    RGBColor(136, 34, 85),
    RGBColor(153, 153, 51),
    RGBColor(68, 170, 153),
    RGBColor(170, 68, 153),
    RGBColor(204, 102, 119),
    RGBColor(136, 204, 238),
    RGBColor(0, 0, 0),
];

thread_local! {
    /// While a report's charts are drawn: each model's place in the palette, so that a model
    /// has one colour in every chart.
    static MODEL_COLOURS: RefCell<BTreeMap<String, usize>> = const { RefCell::new(BTreeMap::new()) };
}

/// The colours of a chart's series: by model when each series is a different model (the name
/// before the first space of its label), else one per series.
fn series_colours(series: &[Series]) -> Vec<RGBColor> {
    let models: Vec<&str> = series.iter().map(|(label, _)| label.split(' ').next().unwrap_or(label)).collect();
    let distinct = models.iter().collect::<BTreeSet<_>>().len() == models.len();
    MODEL_COLOURS.with(|known| {
        let known = known.borrow();
        models
            .iter()
            .enumerate()
            .map(|(i, model)| {
                let index = if distinct { known.get(*model).copied().unwrap_or(i) } else { i };
                PALETTE[index % PALETTE.len()]
            })
            .collect()
    })
}

pub struct Chart {
    /// File stem under `charts/`.
    pub name: String,
    pub svg: String,
    pub png: Vec<u8>,
    /// What the chart shows, as JSON for report.html's interactive chart (title, axes, series
    /// with their colours and points): the same data as the SVG and PNG.
    pub spec: serde_json::Value,
}

/// Pixel size of every chart: the plot, and to its right the legend (kept off the data).
const SIZE: (u32, u32) = (1000, 500);
const LEGEND_WIDTH: u32 = 200;

/// Bitmaps need a font file (SVG names the family and leaves glyphs to the viewer): DejaVu Sans
/// is compiled in, so PNGs look the same on machines without fonts installed.
fn register_font() {
    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        let bytes = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_err() {
            tracing::warn!("the bundled chart font did not load; PNG charts will have no text");
        }
    });
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().and_then(|mut w| w.write_image_data(rgb)).map_err(|e| anyhow!("encoding PNG: {e}"))?;
    Ok(out)
}

/// One series: legend label and points.
pub(super) type Series = (String, Vec<(f64, f64)>);

/// Error bars, per series and point: (x, y) standard deviations over seeds. Empty: none.
type Spread = Vec<Vec<(f64, f64)>>;

struct Axis<'a> {
    label: &'a str,
    log: bool,
}

fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let (lo, hi) = values.filter(|v| *v > 0.0).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    lo > 0.0 && hi / lo >= 10.0
}

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let v: Vec<f64> = values.map(|x| if log { x.log10() } else { x }).filter(|x| x.is_finite()).collect();
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if v.is_empty() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(if log { 0.05 } else { hi.abs().max(1e-9) * 0.05 });
    (lo - pad, hi + pad)
}

fn tick(v: f64, log: bool) -> String {
    let x = if log { 10f64.powf(v) } else { v };
    if x.abs() >= 1000.0 {
        human_rate(x)
    } else if x.abs() >= 10.0 || x == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// A chart's data for report.html's interactive chart: title, axes, series with their colours
/// and points, and a thin black `line` with its legend label.
fn spec_json(
    title: &str,
    x: &Axis,
    y: &Axis,
    (series, spread): (&[Series], &Spread),
    points_only: bool,
    (line, line_label): (&[(f64, f64)], &str),
) -> serde_json::Value {
    let finite = |pts: &[(f64, f64)]| -> Vec<[f64; 2]> {
        pts.iter().filter(|(a, b)| a.is_finite() && b.is_finite()).map(|&(a, b)| [a, b]).collect()
    };
    // A point is [x, y], or [x, y, x std, y std] where it has an error bar.
    let points = |i: usize, pts: &[(f64, f64)]| -> Vec<Vec<f64>> {
        pts.iter()
            .enumerate()
            .filter(|(_, (a, b))| a.is_finite() && b.is_finite())
            .map(|(j, &(a, b))| match spread.get(i).and_then(|s| s.get(j)) {
                Some(&(sx, sy)) if sx > 0.0 || sy > 0.0 => vec![a, b, sx, sy],
                _ => vec![a, b],
            })
            .collect()
    };
    serde_json::json!({
        "title": title,
        "x": { "label": x.label, "log": x.log },
        "y": { "label": y.label, "log": y.log },
        "points_only": points_only,
        "series": series.iter().zip(series_colours(series)).enumerate().map(|(i, ((label, pts), c))| serde_json::json!({
            "label": label,
            "color": format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2),
            "points": points(i, pts),
        })).collect::<Vec<_>>(),
        "front": finite(line),
        "front_label": line_label,
    })
}

/// [`spec_json`] on linear axes, for pages drawn only interactively (compare.html).
pub(super) fn spec(
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    points_only: bool,
    line: (&[(f64, f64)], &str),
) -> serde_json::Value {
    let axis = |label| Axis { label, log: false };
    spec_json(title, &axis(x_label), &axis(y_label), (series, &Spread::new()), points_only, line)
}

/// The chart drawn as SVG and PNG, and its data for the interactive chart.
struct Drawn {
    svg: String,
    png: Vec<u8>,
    spec: serde_json::Value,
}

impl Drawn {
    fn named(self, name: String) -> Chart {
        Chart { name, svg: self.svg, png: self.png, spec: self.spec }
    }
}

fn plot(
    title: &str,
    x: Axis,
    y: Axis,
    series: &[Series],
    spread: &Spread,
    points_only: bool,
    front: &[(f64, f64)],
) -> Result<Drawn> {
    register_font();
    let mut svg = String::new();
    let data = (series, spread);
    draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(), title, &x, &y, data, points_only, front)?;
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw(BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(), title, &x, &y, data, points_only, front)?;
    let spec = spec_json(title, &x, &y, data, points_only, (front, "Pareto front"));
    Ok(Drawn { svg, png: encode_png(&rgb)?, spec })
}

/// Draws lines (or points only) with a legend; `front` is drawn as a thin black line.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x: &Axis,
    y: &Axis,
    (series, spread): (&[Series], &Spread),
    points_only: bool,
    front: &[(f64, f64)],
) -> Result<()> {
    // Every point, and the ends of its error bars, fit in the axes.
    let all = || {
        series.iter().enumerate().flat_map(move |(i, (_, pts))| {
            pts.iter().enumerate().flat_map(move |(j, &(px, py))| {
                let (sx, sy) = spread.get(i).and_then(|s| s.get(j)).copied().unwrap_or_default();
                [(px, py), (px - sx, py - sy), (px + sx, py + sy)]
            })
        })
    };
    let tx = |v: f64| if x.log { v.log10() } else { v };
    let ty = |v: f64| if y.log { v.log10() } else { v };
    let (x0, x1) = range(all().map(|p| p.0), x.log);
    let (y0, y1) = range(all().map(|p| p.1), y.log);
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {title}: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let x_desc = format!("{}{}", x.label, if x.log { " (log scale)" } else { "" });
        let y_desc = format!("{}{}", y.label, if y.log { " (log scale)" } else { "" });
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| tick(*v, x.log))
            .y_label_formatter(&|v| tick(*v, y.log))
            .draw()
            .map_err(err)?;
        let mut legend: Vec<(String, ShapeStyle)> = Vec::new();
        for (i, ((label, pts), color)) in series.iter().zip(series_colours(series)).enumerate() {
            let color = color.to_rgba();
            // Error bars: ± one standard deviation over seeds, in x and in y.
            for (&(px, py), &(sx, sy)) in pts.iter().zip(spread.get(i).into_iter().flatten()) {
                let whiskers = [((px - sx, py), (px + sx, py), sx), ((px, py - sy), (px, py + sy), sy)];
                for (a, b, _) in whiskers.into_iter().filter(|w| w.2 > 0.0) {
                    let (a, b) = ((tx(a.0), ty(a.1)), (tx(b.0), ty(b.1)));
                    if [a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
                        chart
                            .draw_series(std::iter::once(PathElement::new(vec![a, b], color.stroke_width(1))))
                            .map_err(err)?;
                    }
                }
            }
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(a, b)| (tx(a), ty(b))).collect();
            if points_only {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, color.filled()))).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2))).map_err(err)?;
                // A sweep's few points are its data: mark them (a loss curve's many are not).
                if pts.len() <= 12 {
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(err)?;
                }
            }
            legend.push((label.clone(), color.stroke_width(3)));
        }
        if front.len() > 1 {
            let pts: Vec<(f64, f64)> = front.iter().map(|&(a, b)| (tx(a), ty(b))).collect();
            chart.draw_series(LineSeries::new(pts, BLACK.stroke_width(1))).map_err(err)?;
            legend.push(("Pareto front".into(), BLACK.stroke_width(1)));
        }
        // The legend in its own column: inside the plot it would hide points and lines.
        let step = (440 / legend.len().max(1) as i32).clamp(10, 18);
        for (i, (label, style)) in legend.iter().enumerate() {
            let y = 50 + step * i as i32;
            legend_area.draw(&PathElement::new(vec![(6, y), (26, y)], *style)).map_err(err)?;
            let text: String = if label.chars().count() > 26 {
                label.chars().take(25).chain(['…']).collect()
            } else {
                label.clone()
            };
            legend_area.draw(&Text::new(text, (32, y - 6), ("sans-serif", 12))).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(())
}

/// Configuration label: model plus the swept parameters other than `skip`, written into `label`
/// (a buffer reused from record to record: this runs for every record of a report).
fn config_label<'l>(r: &Row, skip: impl Fn(&str) -> bool, label: &'l mut String) -> &'l str {
    use std::fmt::Write;
    label.clear();
    label.push_str(&r.model);
    for k in r.swept.iter().filter(|k| !skip(k)) {
        label.push(' ');
        label.push_str(k.split_once('.').map_or(&**k, |(_, s)| s));
        label.push('=');
        match r.params.get(k) {
            Some(serde_json::Value::String(v)) => label.push_str(v),
            Some(serde_json::Value::Null) | None => {}
            Some(v) => write!(label, "{v}").expect("writing to a String"),
        }
    }
    label
}

/// A running mean: (sum, count).
#[derive(Clone, Copy, Default)]
struct Mean(f64, f64, f64);

impl Mean {
    fn of(v: f64) -> Self {
        Mean(v, 1.0, v * v)
    }
    fn add(&mut self, v: f64) {
        self.merge(Mean::of(v));
    }
    fn merge(&mut self, other: Mean) {
        *self = Mean(self.0 + other.0, self.1 + other.1, self.2 + other.2);
    }
    fn get(self) -> f64 {
        self.0 / self.1
    }
    /// The sample standard deviation over seeds (0 for one run): the error bar.
    fn std(self) -> f64 {
        if self.1 < 2.0 {
            return 0.0;
        }
        ((self.2 - self.0 * self.0 / self.1) / (self.1 - 1.0)).max(0.0).sqrt()
    }
}

/// Configuration label → x → mean of y.
type Groups<X, M = Mean> = BTreeMap<String, BTreeMap<X, M>>;

/// Mean loss per step, sorted by step. Runs of one configuration share their step schedule,
/// so adding a run is one pass over the points.
#[derive(Default)]
struct MeanCurve(Vec<(u64, Mean)>);

impl MeanCurve {
    fn add(&mut self, points: impl ExactSizeIterator<Item = (u64, Mean)> + Clone) {
        let same_steps = self.0.len() == points.len() && self.0.iter().zip(points.clone()).all(|(a, b)| a.0 == b.0);
        if same_steps {
            for (into, (_, m)) in self.0.iter_mut().zip(points) {
                into.1.merge(m);
            }
            return;
        }
        for (step, m) in points {
            match self.0.binary_search_by_key(&step, |p| p.0) {
                Ok(i) => self.0[i].1.merge(m),
                Err(i) => self.0.insert(i, (step, m)),
            }
        }
    }
}

/// The `i`-th metric's groups out of groups of every metric (runs without it left out).
fn metric_groups<X: Ord + Copy>(all: &Groups<X, Vec<Mean>>, i: usize) -> Groups<X> {
    all.iter()
        .map(|(label, by_x)| {
            let by_x = by_x.iter().map(|(x, means)| (*x, means[i])).filter(|(_, m)| m.1 > 0.0).collect();
            (label.clone(), by_x)
        })
        .filter(|(_, by_x): &(String, BTreeMap<X, Mean>)| !by_x.is_empty())
        .collect()
}

fn merge_groups<X: Ord>(into: &mut Groups<X>, from: Groups<X>) {
    for (label, by_x) in from {
        let to = into.entry(label).or_default();
        for (x, m) in by_x {
            to.entry(x).or_default().merge(m);
        }
    }
}

/// The lines of `groups` (mean over seeds at each x) and their error bars (std over seeds).
fn groups_series<X>(groups: Groups<X>, x: impl Fn(X) -> f64) -> (Vec<Series>, Spread) {
    groups
        .into_iter()
        .map(|(label, by_x)| {
            let (points, spread) = by_x.into_iter().map(|(k, m)| ((x(k), m.get()), (0.0, m.std()))).unzip();
            ((label, points), spread)
        })
        .unzip()
}

/// One line per configuration of `groups` (the mean over seeds at each x, with its spread), or
/// None when there is nothing to draw. The x axis is logarithmic as `x_log` says, or (None) when
/// its values span a decade or more.
fn lines_chart(
    groups: Groups<i64>,
    title: String,
    (x_label, x_log): (&str, Option<bool>),
    y_label: &str,
    name: String,
) -> Result<Option<Chart>> {
    let (series, spread) = groups_series(groups, |x| x as f64);
    if series.is_empty() {
        return Ok(None);
    }
    let log = x_log.unwrap_or_else(|| spans_decades(series.iter().flat_map(|s| s.1.iter().map(|p| p.0))));
    let x = Axis { label: x_label, log };
    let drawn = plot(&title, x, Axis { label: y_label, log: false }, &series, &spread, false, &[])?;
    Ok(Some(drawn.named(name)))
}

/// Most lines a chart draws: beyond it a legend is unreadable and rendering slows.
const MAX_LINES: usize = 30;

/// What one task's charts need, gathered record by record (and merged chunk by chunk).
#[derive(Default)]
struct TaskCharts {
    /// Loss curves of the first runs (one line per run while there are at most [`MAX_LINES`]).
    run_curves: Vec<Series>,
    runs_with_curve: usize,
    /// Per configuration and step, the mean loss over seeds.
    mean_curves: BTreeMap<String, MeanCurve>,
    /// Per configuration, mean training throughput and mean accuracy (%).
    accuracy_vs_throughput: BTreeMap<String, (Mean, Mean)>,
    seq_len_swept: bool,
    width_swept: bool,
    /// Every one of [`vs_seq_len_metrics`] against sequence length, in that order (one map for
    /// all of them: a report adds a million records, each looked up once); accuracy against
    /// width.
    vs_seq_len: Groups<i64, Vec<Mean>>,
    vs_width: Groups<i64>,
    /// Accuracy against the state a step carries (rounded), per architecture.
    vs_state: Groups<i64>,
    /// Accuracy on each `len=N` evaluation split against N (length generalisation).
    vs_test_length: Groups<i64>,
    /// Passkey retrieval: accuracy against the key's depth (%), per configuration and length.
    vs_depth: Groups<i64>,
    /// Language modelling: test loss against position in the context.
    vs_position: Groups<i64>,
    /// This piece's sums per configuration, not yet in the maps above.
    staged: staged::Staged,
}

/// The metrics drawn against sequence length, with their chart name and axis label.
fn vs_seq_len_metrics() -> impl Iterator<Item = (&'static Metric, &'static str, &'static str)> {
    METRICS.iter().filter_map(|m| m.vs_seq_len.map(|(name, axis)| (m, name, axis)))
}

impl TaskCharts {
    /// Adds a record; returns whether its configuration is new to this piece.
    fn add(&mut self, r: &Row, task: Option<&TaskFacts>) -> bool {
        let TaskCharts { staged, run_curves, runs_with_curve, vs_test_length, vs_depth, vs_position, .. } = self;
        let (slot, new) = staged.slot(r, task);
        let curve = &r.measurements.loss_curve;
        if !curve.is_empty() {
            *runs_with_curve += 1;
            if run_curves.len() < MAX_LINES {
                let pts = curve.iter().map(|p| (p.step as f64, p.loss)).collect();
                run_curves.push((format!("{} seed={}", slot.label, r.seed), pts));
            }
            slot.mean_curve.add(curve.iter().map(|p| (p.step, Mean::of(p.loss))));
        }
        if r.status == Status::Ok {
            if let (Some(t), Some(a)) = (r.measurements.train_tokens_per_s, r.measurements.accuracy) {
                let e = slot.accuracy_vs_throughput.get_or_insert_default();
                e.0.add(t);
                e.1.add(100.0 * a);
            }
            add_vs_test_length(r, &slot.label, vs_test_length, vs_depth);
            for p in &r.measurements.loss_by_position {
                entry(vs_position, &slot.label).entry(p.position as i64).or_default().add(p.loss);
            }
            add_vs_params(r, task, slot);
            self.seq_len_swept |= slot.length_swept;
            self.width_swept |= slot.width_swept;
        }
        new
    }

    /// Moves the staged sums into the maps by label, configuration by configuration.
    fn unstage(&mut self) {
        for slot in self.staged.take() {
            if !slot.mean_curve.0.is_empty() {
                entry(&mut self.mean_curves, &slot.label).add(slot.mean_curve.0.into_iter());
            }
            if let Some((t, a)) = slot.accuracy_vs_throughput {
                let e = entry(&mut self.accuracy_vs_throughput, &slot.label);
                e.0.merge(t);
                e.1.merge(a);
            }
            if !slot.vs_seq_len.is_empty() {
                merge_metric_means(entry(&mut self.vs_seq_len, &slot.label_without_length), slot.vs_seq_len);
            }
            for (groups, by_x) in [(&mut self.vs_width, slot.vs_width), (&mut self.vs_state, slot.vs_state)] {
                if !by_x.is_empty() {
                    let into = entry(groups, &slot.label_without_width);
                    by_x.into_iter().for_each(|(x, m)| into.entry(x).or_default().merge(m));
                }
            }
        }
    }

    fn merge(&mut self, mut later: TaskCharts) {
        self.unstage();
        later.unstage();
        let room = MAX_LINES.saturating_sub(self.run_curves.len());
        self.run_curves.extend(later.run_curves.into_iter().take(room));
        self.runs_with_curve += later.runs_with_curve;
        for (label, curve) in later.mean_curves {
            entry(&mut self.mean_curves, &label).add(curve.0.into_iter());
        }
        for (label, (t, a)) in later.accuracy_vs_throughput {
            let e = self.accuracy_vs_throughput.entry(label).or_default();
            e.0.merge(t);
            e.1.merge(a);
        }
        self.seq_len_swept |= later.seq_len_swept;
        self.width_swept |= later.width_swept;
        for (label, by_x) in later.vs_seq_len {
            merge_metric_means(self.vs_seq_len.entry(label).or_default(), by_x);
        }
        merge_groups(&mut self.vs_width, later.vs_width);
        merge_groups(&mut self.vs_state, later.vs_state);
        merge_groups(&mut self.vs_test_length, later.vs_test_length);
        merge_groups(&mut self.vs_position, later.vs_position);
        merge_groups(&mut self.vs_depth, later.vs_depth);
    }

    /// Loss curves: one line per run when there are few runs, else the mean over seeds per
    /// configuration (at most [`MAX_LINES`], the title says how many were left out).
    fn loss_curves(&mut self) -> (Vec<Series>, String) {
        if self.runs_with_curve <= MAX_LINES {
            return (std::mem::take(&mut self.run_curves), String::new());
        }
        let configs = self.mean_curves.len();
        let series = std::mem::take(&mut self.mean_curves)
            .into_iter()
            .take(MAX_LINES)
            .map(|(label, curve)| (label, curve.0.into_iter().map(|(step, m)| (step as f64, m.get())).collect()))
            .collect();
        let note = if configs > MAX_LINES {
            format!(" (mean over seeds; first {MAX_LINES} of {configs} configurations)")
        } else {
            " (mean over seeds)".to_string()
        };
        (series, note)
    }
}

/// Accuracy at each evaluated length (`len=N` splits) of a run that ended `ok`.
fn add_vs_test_length(r: &Row, label: &str, vs_test_length: &mut Groups<i64>, vs_depth: &mut Groups<i64>) {
    for (name, scores) in &r.measurements.evals {
        // `len=N`, or `len=N depth=D` (passkey): averaged over the depths of a length.
        let mut parts = name.split(' ');
        let Some(length) = parts.next().and_then(|p| p.strip_prefix("len=")).and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        entry(vs_test_length, label).entry(length).or_default().add(100.0 * scores.accuracy);
        if let Some(depth) = parts.next().and_then(|p| p.strip_prefix("depth=")).and_then(|d| d.parse::<f64>().ok()) {
            let line = format!("{label} len={length}");
            entry(vs_depth, &line).entry((100.0 * depth).round() as i64).or_default().add(100.0 * scores.accuracy);
        }
    }
}

/// Metrics against sequence length and accuracy against width, for a run that ended `ok`.
fn add_vs_params(r: &Row, task: Option<&TaskFacts>, slot: &mut staged::Slot) {
    // Records from before `seq_len` was recorded: the length parameter, when there is one.
    let from_param = || match task.map_or(&[][..], |t| t.length_params) {
        [one] => r.params.0.iter().rfind(|(k, _)| k.strip_prefix("task.") == Some(one)).and_then(|(_, v)| v.as_i64()),
        _ => None,
    };
    if let Some(x) = r.measurements.seq_len.map(|l| l as i64).or_else(from_param) {
        let means = slot.vs_seq_len.entry(x).or_insert_with(|| vec![Mean::default(); vs_seq_len_metrics().count()]);
        for ((metric, _, _), mean) in vs_seq_len_metrics().zip(means) {
            if let Some(v) = (metric.get)(&r.measurements, r.wall_s) {
                mean.add(metric.unit.shown(v));
            }
        }
    }
    if let (Some(x), Some(a)) = (r.params.get("model.d_model").and_then(|v| v.as_i64()), r.measurements.accuracy) {
        slot.vs_width.entry(x).or_default().add(100.0 * a);
        if let Some(state) = r.measurements.state_size {
            slot.vs_state.entry(state.round() as i64).or_default().add(100.0 * a);
        }
    }
}

/// Adds `later`'s means of every metric against x into `into`.
fn merge_metric_means(into: &mut BTreeMap<i64, Vec<Mean>>, later: BTreeMap<i64, Vec<Mean>>) {
    for (x, means) in later {
        match into.get_mut(&x) {
            Some(kept) => kept.iter_mut().zip(means).for_each(|(k, m)| k.merge(m)),
            None => {
                into.insert(x, means);
            }
        }
    }
}

/// Points maximal in both coordinates (higher x and higher y better), sorted by x.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(x, y)| !points.iter().any(|&(a, b)| a >= x && b >= y && (a > x || b > y)))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    front.dedup();
    front
}

pub fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// The lowest-seed forecast of one model (the first record wins a tie).
struct Forecast {
    seed: u64,
    sample: ForecastSample,
}

/// (task label, swept task parameters) → model → forecast.
type Forecasts = BTreeMap<(String, String), BTreeMap<String, Forecast>>;

/// Everything the charts need from the records, gathered one record at a time so that a
/// million records are never held at once.
#[derive(Default)]
pub struct ChartData {
    tasks: BTreeMap<String, TaskCharts>,
    forecasts: Forecasts,
    /// Every model name, for one colour per model across the charts.
    models: BTreeSet<String>,
}

impl ChartData {
    /// Adds a record of `task` (its registry entry; None for a task this build does not know).
    pub fn add(&mut self, r: &Row, task: Option<&TaskFacts>) {
        if entry(&mut self.tasks, &r.task_label).add(r, task) {
            insert(&mut self.models, &r.model);
        }
        let Some(sample) = r.measurements.forecast_sample.as_ref().filter(|_| r.status == Status::Ok) else {
            return;
        };
        let config = r.swept_task_params().join(" ");
        let by_model = self.forecasts.entry((r.task_label.to_string(), config)).or_default();
        if by_model.get(&*r.model).is_none_or(|kept| r.seed < kept.seed) {
            by_model.insert(r.model.to_string(), Forecast { seed: r.seed, sample: sample.clone() });
        }
    }

    /// Adds the records gathered in `later`, which come after this one's in the file.
    pub fn merge(&mut self, later: ChartData) {
        self.models.extend(later.models);
        for (task, charts) in later.tasks {
            match self.tasks.get_mut(&task) {
                Some(into) => into.merge(charts),
                None => {
                    self.tasks.insert(task, charts);
                }
            }
        }
        for (key, by_model) in later.forecasts {
            let into = self.forecasts.entry(key).or_default();
            for (model, f) in by_model {
                if into.get(&model).is_none_or(|kept| f.seed < kept.seed) {
                    into.insert(model, f);
                }
            }
        }
    }

    /// Every chart the records support.
    pub fn draw(self) -> Result<Vec<Chart>> {
        let places = self.models.iter().enumerate().map(|(i, m)| (m.clone(), i)).collect();
        MODEL_COLOURS.with(|known| *known.borrow_mut() = places);
        let mut out = Vec::new();
        forecast_charts(self.forecasts, &mut out)?;
        for (task, mut data) in self.tasks {
            data.unstage();
            task_charts(&task, &mut data, &mut out)?;
        }
        Ok(out)
    }
}

/// Every chart the records support.
pub fn charts(records: &[Record]) -> Result<Vec<Chart>> {
    let mut data = ChartData::default();
    for r in records {
        super::row::with_row(r, |row| data.add(row, crate::tasks::find(&r.task)));
    }
    data.draw()
}

/// Forecasting: per task entry and configuration, the first test window's target channel: the
/// input, the truth and each model's forecast (lowest seed).
fn forecast_charts(forecasts: Forecasts, out: &mut Vec<Chart>) -> Result<()> {
    for ((task, config), by_model) in forecasts {
        let Some(first) = by_model.values().next().map(|f| &f.sample) else {
            continue;
        };
        let at = |start: i64, values: &[f64]| -> Vec<(f64, f64)> {
            values.iter().enumerate().map(|(i, &v)| ((start + i as i64) as f64, v)).collect()
        };
        let input_len = first.input.len() as i64;
        let mut series: Vec<Series> =
            vec![("input".into(), at(-input_len, &first.input)), ("ground truth".into(), at(0, &first.truth))];
        for (model, f) in &by_model {
            series.push((format!("{model} forecast"), at(0, &f.sample.prediction)));
        }
        let what = if config.is_empty() { task.clone() } else { format!("{task} ({config})") };
        let drawn = plot(
            &format!("{what}: forecast of test window {}", first.window),
            Axis { label: "time step (0 = first forecast step)", log: false },
            Axis { label: "target (standardised)", log: false },
            &series,
            &Spread::new(),
            false,
            &[],
        )?;
        out.push(drawn.named(slug(&format!("{task}_{config}_forecast"))));
    }
    Ok(())
}

/// One task's loss curves, accuracy against throughput, metrics against sequence length (when
/// it is swept) and accuracy against width (when it is swept).
fn task_charts(task: &str, data: &mut TaskCharts, out: &mut Vec<Chart>) -> Result<()> {
    let (curves, note) = data.loss_curves();
    if !curves.is_empty() {
        let log_y = spans_decades(curves.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        let drawn = plot(
            &format!("{task}: training loss{note}"),
            Axis { label: "step", log: false },
            Axis { label: "training loss (nats)", log: log_y },
            &curves,
            &Spread::new(),
            false,
            &[],
        )?;
        out.push(drawn.named(format!("{}_loss", slug(task))));
    }
    // Accuracy against training throughput, mean over seeds per configuration.
    if !data.accuracy_vs_throughput.is_empty() {
        let (series, spread): (Vec<Series>, Spread) = std::mem::take(&mut data.accuracy_vs_throughput)
            .into_iter()
            .map(|(label, (t, a))| ((label, vec![(t.get(), a.get())]), vec![(t.std(), a.std())]))
            .unzip();
        let points: Vec<(f64, f64)> = series.iter().map(|s| s.1[0]).collect();
        let log_x = spans_decades(points.iter().map(|p| p.0));
        let drawn = plot(
            &format!("{task}: accuracy vs training throughput"),
            Axis { label: "training throughput (tokens/s)", log: log_x },
            Axis { label: "accuracy (%)", log: false },
            &series,
            &spread,
            true,
            &pareto_front(&points),
        )?;
        out.push(drawn.named(format!("{}_accuracy_vs_throughput", slug(task))));
    }
    if data.seq_len_swept {
        for (i, (metric, name, label)) in vs_seq_len_metrics().enumerate() {
            let (series, spread) = groups_series(metric_groups(&data.vs_seq_len, i), |x| x as f64);
            if series.is_empty() {
                continue;
            }
            let log_x = spans_decades(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
            let percent = matches!(metric.unit, Unit::Percent(_));
            let log_y = !percent && spans_decades(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
            let drawn = plot(
                &format!("{task}: {name} vs sequence length"),
                Axis { label: "sequence length (tokens)", log: log_x },
                Axis { label, log: log_y },
                &series,
                &spread,
                false,
                &[],
            )?;
            out.push(drawn.named(format!("{}_{name}_vs_seq_len", slug(task))));
        }
    }
    // Delétang et al.'s figure: accuracy at each test length, one line per configuration.
    let slug = slug(task);
    let take = std::mem::take;
    out.extend(lines_chart(
        take(&mut data.vs_test_length),
        format!("{task}: accuracy vs test length (mean over seeds)"),
        ("test length (input tokens)", None),
        "accuracy (%)",
        format!("{slug}_accuracy_vs_test_length"),
    )?);
    // Passkey retrieval: where in the context can the model still find the key?
    out.extend(lines_chart(
        take(&mut data.vs_depth),
        format!("{task}: accuracy by depth of the key (mean over seeds)"),
        ("depth of the key in the filler (%)", Some(false)),
        "accuracy (%)",
        format!("{slug}_accuracy_vs_depth"),
    )?);
    // Language modelling: does the model use its context?
    out.extend(lines_chart(
        take(&mut data.vs_position),
        format!("{task}: test loss by position in the context (mean over seeds)"),
        ("position in the context (tokens)", None),
        "test loss (nats)",
        format!("{slug}_loss_by_position"),
    )?);
    if data.width_swept {
        // Zoology's figure: accuracy against model width, one line per architecture.
        out.extend(lines_chart(
            take(&mut data.vs_width),
            format!("{task}: accuracy vs model width"),
            ("d_model", None),
            "accuracy (%)",
            format!("{slug}_accuracy_vs_width"),
        )?);
        // Zoology's and the DeltaNet paper's: recall against the state a step carries.
        out.extend(lines_chart(
            take(&mut data.vs_state),
            format!("{task}: accuracy vs state size"),
            ("state per sequence (numbers, all layers)", Some(true)),
            "accuracy (%)",
            format!("{slug}_accuracy_vs_state_size"),
        )?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_keeps_its_colour_from_chart_to_chart() {
        let places = [("gru", 0), ("lstm", 1), ("mamba", 2)].map(|(m, i)| (m.to_string(), i)).into_iter().collect();
        MODEL_COLOURS.with(|known| *known.borrow_mut() = places);
        let series = |labels: &[&str]| -> Vec<Series> { labels.iter().map(|l| (l.to_string(), vec![])).collect() };
        assert_eq!(series_colours(&series(&["mamba", "lstm"])), [PALETTE[2], PALETTE[1]]);
        assert_eq!(series_colours(&series(&["gru d_model=64", "mamba d_model=64"])), [PALETTE[0], PALETTE[2]]);
        // Two configurations of one model: one colour each, by position.
        assert_eq!(series_colours(&series(&["mamba lr=0.1", "mamba lr=0.3"])), [PALETTE[0], PALETTE[1]]);
        assert!(!PALETTE.contains(&RGBColor(255, 255, 0)), "no yellow on white");
    }

    #[test]
    fn pareto_front_keeps_the_undominated_points() {
        let pts = [(1.0, 90.0), (2.0, 80.0), (1.5, 70.0), (3.0, 10.0), (0.5, 95.0)];
        assert_eq!(pareto_front(&pts), vec![(0.5, 95.0), (1.0, 90.0), (2.0, 80.0), (3.0, 10.0)]);
    }

    #[test]
    fn width_sweeps_get_the_accuracy_vs_width_chart() {
        let template = crate::report::tests::fixture_record();
        let records: Vec<Record> = [("lstm", 64, 0.3), ("lstm", 128, 0.4), ("mamba", 64, 0.5), ("mamba", 128, 0.9)]
            .into_iter()
            .enumerate()
            .map(|(i, (model, width, acc))| {
                let mut r = template.clone();
                r.job_id = format!("w{i}");
                r.model = model.into();
                r.swept = vec!["model.d_model".into()];
                r.params = [("model.d_model".to_string(), serde_json::json!(width))].into_iter().collect();
                r.measurements.accuracy = Some(acc);
                r.measurements.state_size = Some(width as f64 * 10.0);
                r
            })
            .collect();
        let charts = charts(&records).unwrap();
        let width = charts.iter().find(|c| c.name == "mqar_accuracy_vs_width").expect("width chart");
        assert!(width.svg.contains("mqar: accuracy vs model width") && width.svg.contains("d_model"));
        assert!(width.svg.contains("mamba") && width.svg.contains("lstm"), "one line per architecture");
        let state = charts.iter().find(|c| c.name == "mqar_accuracy_vs_state_size").expect("state chart");
        assert!(state.svg.contains("accuracy vs state size") && state.svg.contains("mamba"));
    }

    #[test]
    fn length_charts_average_each_metric_over_the_runs_that_have_it() {
        let template = crate::report::tests::fixture_record();
        // lstm at 64: two seeds, the second without a memory figure; lstm at 128: one run.
        let records: Vec<Record> =
            [(64, 0, 0.4, Some(100u64 << 20)), (64, 1, 0.6, None), (128, 0, 0.8, Some(300 << 20))]
                .into_iter()
                .map(|(len, seed, acc, mem)| {
                    let mut r = template.clone();
                    (r.job_id, r.model, r.seed) = (format!("l{len}s{seed}"), "lstm".into(), seed);
                    r.swept = vec!["task.seq_len".into()];
                    r.params = [("task.seq_len".to_string(), serde_json::json!(len))].into_iter().collect();
                    r.measurements.seq_len = Some(len as u64);
                    (r.measurements.accuracy, r.measurements.peak_mem_bytes) = (Some(acc), mem);
                    r
                })
                .collect();
        let charts = charts(&records).unwrap();
        let points = |name: &str| {
            let chart = charts.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no chart {name}"));
            let line = &chart.spec["series"].as_array().unwrap()[0];
            assert_eq!(line["label"], "lstm");
            line["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect::<Vec<_>>()
        };
        let accuracy = points("mqar_accuracy_vs_seq_len");
        assert_eq!(accuracy.len(), 2);
        assert!((accuracy[0].0 - 64.0).abs() < 1e-9 && (accuracy[0].1 - 50.0).abs() < 1e-9, "{accuracy:?}");
        assert!((accuracy[1].0 - 128.0).abs() < 1e-9 && (accuracy[1].1 - 80.0).abs() < 1e-9, "{accuracy:?}");
        // Memory: the seed without a figure is left out of the mean, not counted as zero.
        assert_eq!(points("mqar_memory_vs_seq_len"), [(64.0, 100.0), (128.0, 300.0)]);
    }

    #[test]
    fn evaluated_lengths_and_depths_get_their_charts() {
        let template = crate::report::tests::fixture_record();
        let scores = |accuracy| crate::record::SplitScores { accuracy, exact_match: accuracy, loss: 1.0 };
        let records: Vec<Record> = [("lstm", 0, 1.0), ("lstm", 1, 0.8), ("transformer", 0, 0.5)]
            .into_iter()
            .map(|(model, seed, acc)| {
                let mut r = template.clone();
                (r.job_id, r.model, r.seed) = (format!("{model}{seed}"), model.into(), seed);
                r.swept.clear();
                r.measurements.evals = [
                    ("len=41".to_string(), scores(acc)),
                    ("len=81".to_string(), scores(acc / 2.0)),
                    ("len=256 depth=0.5".to_string(), scores(acc)),
                ]
                .into_iter()
                .collect();
                r
            })
            .collect();
        let charts = charts(&records).unwrap();
        let lengths = charts.iter().find(|c| c.name == "mqar_accuracy_vs_test_length").expect("length chart");
        let lstm = lengths.spec["series"].as_array().unwrap().iter().find(|s| s["label"] == "lstm").unwrap();
        // Mean over the two seeds with its spread: 90 ± 14.1 % at 41, 45 ± 7.1 % at 81, 90 at 256.
        let points = lstm["points"].as_array().unwrap();
        assert_eq!(points.len(), 3, "{points:?}");
        assert_eq!((points[0][0].as_f64(), points[0][1].as_f64()), (Some(41.0), Some(90.0)));
        assert!((points[0][3].as_f64().unwrap() - 200f64.sqrt()).abs() < 1e-9);
        let depth = charts.iter().find(|c| c.name == "mqar_accuracy_vs_depth").expect("depth chart");
        assert!(depth.svg.contains("accuracy by depth of the key"));
        let lines: Vec<&str> =
            depth.spec["series"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
        assert_eq!(lines, ["lstm len=256", "transformer len=256"]);
    }

    #[test]
    fn error_bars_are_the_sample_std_over_seeds() {
        let mut m = Mean::default();
        for v in [25.0, 35.0] {
            m.add(v);
        }
        assert_eq!(m.get(), 30.0);
        assert!((m.std() - 50f64.sqrt()).abs() < 1e-12);
        assert_eq!(Mean::of(3.0).std(), 0.0, "one run: no bar");
        let groups: Groups<i64> =
            BTreeMap::from([("lstm".to_string(), BTreeMap::from([(64, m), (128, Mean::of(1.0))]))]);
        let (series, spread) = groups_series(groups, |x| x as f64);
        assert_eq!(series, vec![("lstm".to_string(), vec![(64.0, 30.0), (128.0, 1.0)])]);
        let axis = |label| Axis { label, log: false };
        let spec = spec_json("t", &axis("x"), &axis("y"), (&series, &spread), false, (&[], ""));
        let points = &spec["series"][0]["points"];
        assert_eq!(points[0].as_array().unwrap().len(), 4, "{points}");
        assert_eq!(points[1], serde_json::json!([128.0, 1.0]));
    }
}
