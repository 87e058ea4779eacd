//! `report.html`: one self-contained page (inline CSS and script, nothing fetched, works
//! offline) with the report's tables — sortable by clicking a column header — interactive
//! charts (Chart.js and its zoom plugin, both MIT, inlined from assets/js; the static SVG is
//! the fallback without JavaScript), the jobs that did not end `ok`, and the run's environment
//! and resolved suite.
use super::table::{Cell, Table};
use super::Rendered;

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escaped Markdown text with its spans between pairs of `mark` (the only Markdown our captions
/// and cells use) as HTML `tag` elements: odd pieces of the split were between a pair.
fn marked_html(text: &str, mark: &str, tag: &str) -> String {
    text.split(mark)
        .enumerate()
        .map(|(i, piece)| if i % 2 == 1 { format!("<{tag}>{}</{tag}>", escape(piece)) } else { escape(piece) })
        .collect()
}

/// A cell's content: with the `**…**` marks of its best values as `<strong>`.
fn cell_html(cell: &Cell) -> String {
    cell.strong.as_deref().map_or_else(|| escape(&cell.text), |marked| marked_html(marked, "**", "strong"))
}

fn table_html(table: &Table) -> String {
    let mut out = String::from("<table class=\"sortable\"><thead><tr>");
    for (i, h) in table.header.iter().enumerate() {
        let class = if i >= table.first_numeric { " class=\"num\"" } else { "" };
        out += &format!("<th{class} title=\"sort\">{}</th>", escape(h));
    }
    out += "</tr></thead><tbody>\n";
    for row in &table.rows {
        out += "<tr>";
        for (i, cell) in row.iter().enumerate() {
            let class = if i >= table.first_numeric { " class=\"num\"" } else { "" };
            let value = cell.value.map_or(String::new(), |v| format!(" data-v=\"{v}\""));
            out += &format!("<td{class}{value}>{}</td>", cell_html(cell));
        }
        out += "</tr>\n";
    }
    out + "</tbody></table>\n"
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px}\
th{background:#f3f3f3;cursor:pointer}td.num,th.num{text-align:right}\
pre{background:#f7f7f7;padding:1em;overflow:auto}.failed td{background:#fee}\
figure{margin:1.5em 0}.ichart{position:relative;height:480px;max-width:1100px}\
tr.worse td{background:#fdd}tr.better td{background:#dfd}";

/// Chart.js and chartjs-plugin-zoom (MIT; licences beside them), and our renderer.
const CHART_JS: &str = include_str!("../../assets/js/chart.umd.min.js");
const ZOOM_JS: &str = include_str!("../../assets/js/chartjs-plugin-zoom.min.js");
const CHARTS_JS: &str = include_str!("../../assets/js/charts.js");

/// Sorts a table by the clicked column: numeric cells by `data-v`, others as text.
const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach((th,i)=>{th.onclick=()=>{\
const tb=th.closest('table').tBodies[0];const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\
const key=td=>td.dataset.v!==undefined?parseFloat(td.dataset.v):td.textContent;\
[...tb.rows].sort((a,b)=>{const x=key(a.cells[i]),y=key(b.cells[i]);return (x<y?-1:x>y?1:0)*(asc?1:-1);})\
.forEach(r=>tb.appendChild(r));};});";

/// The whole page. `attachments` are (title, text) shown as preformatted blocks.
pub fn page(r: &Rendered, attachments: &[(&str, String)]) -> String {
    let mut body = format!("<h1>seqbench report: {}</h1>\n<p>{}</p>\n", escape(&r.title), escape(&r.counts));
    for section in &r.tasks {
        body +=
            &format!("<h2>{}</h2>\n<p>{}</p>\n", escape(&section.heading), marked_html(&section.caption, "`", "code"));
        body += &table_html(&section.table);
    }
    if !r.charts.is_empty() {
        body += "<h2>Charts</h2>\n";
        for chart in &r.charts {
            body += &chart_figure(&chart.name, &chart.spec, &chart.svg);
        }
    }
    body += "<h2>Jobs not ok</h2>\n";
    if r.failures.rows.is_empty() {
        body += "<p>All jobs ended <code>ok</code>.</p>\n";
    } else {
        body += &table_html(&r.failures).replacen("<table class=\"sortable\">", "<table class=\"sortable failed\">", 1);
    }
    for (title, text) in attachments {
        body += &format!(
            "<h2>{}</h2>\n<details><summary>show</summary><pre>{}</pre></details>\n",
            escape(title),
            escape(text)
        );
    }
    standalone_page(&format!("seqbench report: {}", r.title), &body)
}

/// A chart: the JSON the script draws the interactive chart from (`</` escaped so that no
/// string in it can end the element) and the static SVG, our own plotters output inlined as is,
/// shown where the script does not run.
pub(super) fn chart_figure(name: &str, spec: &serde_json::Value, svg: &str) -> String {
    let spec = spec.to_string().replace("</", "<\\/");
    format!(
        "<figure id=\"{}\"><script type=\"application/json\" class=\"chart-spec\">{spec}</script><div class=\"static\">{svg}</div></figure>\n",
        escape(name)
    )
}

/// A page with `body`, the style, the sortable-table script and the chart scripts inlined.
pub(super) fn standalone_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style></head>\n<body>\n{body}<script>{SCRIPT}</script>\n<script>{CHART_JS}</script>\n<script>{ZOOM_JS}</script>\n<script>{CHARTS_JS}</script>\n</body></html>\n",
        escape(title)
    )
}
