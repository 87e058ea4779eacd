//! Charts (plotters, SVG): training-loss curves, accuracy against training throughput with the
//! Pareto front, accuracy against model width when `model.d_model` is swept (Zoology's figure),
//! and — when the suite sweeps `task.seq_len` — throughput, memory and accuracy
//! against sequence length. Axes spanning more than a decade are drawn in log scale.
use crate::dispatch::progress::human_rate;
use crate::record::{Record, Status};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;

pub struct Chart {
    /// File stem under `charts/`.
    pub name: String,
    pub svg: String,
}

/// One series: legend label and points.
type Series = (String, Vec<(f64, f64)>);

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

/// Draws lines (or points only) with a legend; `front` is drawn as a dashed-looking black line.
fn plot(title: &str, x: Axis, y: Axis, series: &[Series], points_only: bool, front: &[(f64, f64)]) -> Result<String> {
    let all = || series.iter().flat_map(|(_, pts)| pts.iter().copied());
    let tx = |v: f64| if x.log { v.log10() } else { v };
    let ty = |v: f64| if y.log { v.log10() } else { v };
    let (x0, x1) = range(all().map(|p| p.0), x.log);
    let (y0, y1) = range(all().map(|p| p.1), y.log);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (820, 500)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {title}: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
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
        for (i, (label, pts)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(a, b)| (tx(a), ty(b))).collect();
            let drawn = if points_only {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, color.filled()))).map_err(err)?
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2))).map_err(err)?
            };
            drawn
                .label(label.clone())
                .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], color.stroke_width(3)));
        }
        if front.len() > 1 {
            let pts: Vec<(f64, f64)> = front.iter().map(|&(a, b)| (tx(a), ty(b))).collect();
            chart
                .draw_series(LineSeries::new(pts, BLACK.stroke_width(1)))
                .map_err(err)?
                .label("Pareto front")
                .legend(|(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], BLACK.stroke_width(1)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Configuration label: model plus the swept parameters other than seq_len.
fn config_label(r: &Record, skip: &str) -> String {
    let mut parts = vec![r.model.clone()];
    for k in r.swept.iter().filter(|k| k.as_str() != skip) {
        let v = r.params.get(k).map(super::frame::param_text).unwrap_or_default();
        parts.push(format!("{}={v}", k.split_once('.').map_or(k.as_str(), |(_, s)| s)));
    }
    parts.join(" ")
}

/// One line per configuration (model and the other swept parameters) of a metric against the
/// integer parameter `key` (e.g. `task.seq_len`), averaged over seeds.
fn against_param(ok: &[&Record], key: &str, get: impl Fn(&Record) -> Option<f64>) -> Vec<Series> {
    let mut groups: BTreeMap<String, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for r in ok {
        let (Some(x), Some(v)) = (r.params.get(key).and_then(|v| v.as_i64()), get(r)) else { continue };
        groups.entry(config_label(r, key)).or_default().entry(x).or_default().push(v);
    }
    groups
        .into_iter()
        .map(|(label, by_x)| (label, by_x.into_iter().map(|(x, v)| (x as f64, mean(&v))).collect()))
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
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

fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Every chart the records support.
pub fn charts(records: &[Record]) -> Result<Vec<Chart>> {
    let mut out = Vec::new();
    let mut by_task: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_task.entry(r.task_label.as_str()).or_default().push(r);
    }
    for (task, recs) in by_task {
        let ok: Vec<&Record> = recs.iter().copied().filter(|r| r.status == Status::Ok).collect();
        // Loss curves: one line per run.
        let curves: Vec<Series> = recs
            .iter()
            .filter(|r| !r.measurements.loss_curve.is_empty())
            .map(|r| {
                let pts = r.measurements.loss_curve.iter().map(|p| (p.step as f64, p.loss)).collect();
                (format!("{} seed={}", config_label(r, ""), r.seed), pts)
            })
            .collect();
        if !curves.is_empty() {
            let log_y = spans_decades(curves.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
            let svg = plot(
                &format!("{task}: training loss"),
                Axis { label: "step", log: false },
                Axis { label: "training loss (nats)", log: log_y },
                &curves,
                false,
                &[],
            )?;
            out.push(Chart { name: format!("{}_loss", slug(task)), svg });
        }
        // Accuracy against training throughput, mean over seeds per configuration.
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &ok {
            if let (Some(t), Some(a)) = (r.measurements.train_tokens_per_s, r.measurements.accuracy) {
                groups.entry(config_label(r, "")).or_default().push((t, 100.0 * a));
            }
        }
        if !groups.is_empty() {
            let series: Vec<Series> = groups
                .into_iter()
                .map(|(label, pts)| {
                    let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
                    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
                    (label, vec![(mean(&xs), mean(&ys))])
                })
                .collect();
            let points: Vec<(f64, f64)> = series.iter().map(|s| s.1[0]).collect();
            let log_x = spans_decades(points.iter().map(|p| p.0));
            let svg = plot(
                &format!("{task}: accuracy vs training throughput"),
                Axis { label: "training throughput (tokens/s)", log: log_x },
                Axis { label: "accuracy (%)", log: false },
                &series,
                true,
                &pareto_front(&points),
            )?;
            out.push(Chart { name: format!("{}_accuracy_vs_throughput", slug(task)), svg });
        }
        // Metrics against sequence length, when it is swept.
        if ok.iter().any(|r| r.swept.iter().any(|k| k == "task.seq_len")) {
            type Getter = fn(&Record) -> Option<f64>;
            let metrics: [(&str, &str, Getter); 3] = [
                ("throughput", "training throughput (tokens/s)", |r| r.measurements.train_tokens_per_s),
                ("memory", "peak memory (MiB)", |r| r.measurements.peak_mem_bytes.map(|b| b as f64 / 1048576.0)),
                ("accuracy", "accuracy (%)", |r| r.measurements.accuracy.map(|a| 100.0 * a)),
            ];
            for (name, label, get) in metrics {
                let series = against_param(&ok, "task.seq_len", get);
                if series.is_empty() {
                    continue;
                }
                let log_x = spans_decades(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
                let log_y = name != "accuracy" && spans_decades(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
                let svg = plot(
                    &format!("{task}: {name} vs sequence length"),
                    Axis { label: "sequence length (tokens)", log: log_x },
                    Axis { label, log: log_y },
                    &series,
                    false,
                    &[],
                )?;
                out.push(Chart { name: format!("{}_{name}_vs_seq_len", slug(task)), svg });
            }
        }
        // Zoology's figure: accuracy against model width, one line per architecture.
        if ok.iter().any(|r| r.swept.iter().any(|k| k == "model.d_model")) {
            let series = against_param(&ok, "model.d_model", |r| r.measurements.accuracy.map(|a| 100.0 * a));
            if !series.is_empty() {
                let log_x = spans_decades(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
                let svg = plot(
                    &format!("{task}: accuracy vs model width"),
                    Axis { label: "d_model", log: log_x },
                    Axis { label: "accuracy (%)", log: false },
                    &series,
                    false,
                    &[],
                )?;
                out.push(Chart { name: format!("{}_accuracy_vs_width", slug(task)), svg });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_the_undominated_points() {
        let pts = [(1.0, 90.0), (2.0, 80.0), (1.5, 70.0), (3.0, 10.0), (0.5, 95.0)];
        assert_eq!(pareto_front(&pts), vec![(0.5, 95.0), (1.0, 90.0), (2.0, 80.0), (3.0, 10.0)]);
    }

    #[test]
    fn width_sweeps_get_the_accuracy_vs_width_chart() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report/records.jsonl");
        let line = std::fs::read_to_string(path).unwrap().lines().next().unwrap().to_string();
        let template: Record = serde_json::from_str(&line).unwrap();
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
                r
            })
            .collect();
        let charts = charts(&records).unwrap();
        let width = charts.iter().find(|c| c.name == "mqar_accuracy_vs_width").expect("width chart");
        assert!(width.svg.contains("mqar: accuracy vs model width") && width.svg.contains("d_model"));
        assert!(width.svg.contains("mamba") && width.svg.contains("lstm"), "one line per architecture");
    }
}
