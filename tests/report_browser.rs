//! The HTML report opens in a real browser: headless Chromium renders it and the screenshot is
//! not blank, and its interactive charts draw and answer a hover with the point's values. scripts/test.sh installs Debian's `chromium` (scripts/setup.sh --chromium); where
//! it cannot be installed the test says so and passes without checking.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser: `$SEQBENCH_CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SEQBENCH_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// The browser, headless and without sandbox, GPU, first-run page or network chatter.
fn headless(browser: &Path) -> Command {
    let mut command = Command::new(browser);
    command.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]);
    command
}

fn screenshot(browser: &Path, html: &Path, png: &Path) {
    let out = headless(browser)
        .args(["--hide-scrollbars", "--window-size=1200,1600"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(png.is_file(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
}

/// The fixture run's report, written under `tmp`; returns the run directory.
fn fixture_report(tmp: &Path) -> PathBuf {
    let run = tmp.join("fixture").join("r1");
    std::fs::create_dir_all(&run).unwrap();
    let fixture = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report/records.jsonl");
    std::fs::copy(fixture, run.join("records.jsonl")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqbench")).arg("report").arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run
}

#[test]
fn interactive_charts_draw_and_show_values_on_hover() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED interactive_charts_draw_and_show_values_on_hover: no chromium on PATH");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_report(tmp.path());
    // `#selftest` makes the page's script move the mouse onto the first chart's first point and
    // write the tooltip's lines into the DOM, which --dump-dom prints once scripts have run.
    let out = headless(&browser)
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}#selftest", run.join("report.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let selftest =
        dom.split("<pre id=\"selftest\">").nth(1).unwrap_or_else(|| panic!("no self-test output: {dom:.2000}"));
    let text = selftest.split("</pre>").next().unwrap();
    // The fixture has four charts; the first is accuracy against training throughput, and its
    // first series (lstm, two seeds: 1000 and 1200 tokens/s, 25 and 35 %) has the point
    // (1100 tokens/s, 30 %) with its spread over seeds as error bars.
    assert!(text.starts_with("charts: 4\n"), "{text}");
    assert!(
        text.contains("hover: lstm seq_len=32: training throughput (tokens/s) 1100 ± 141.4, accuracy (%) 30 ± 7.07"),
        "{text}"
    );
}

#[test]
fn report_html_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED report_html_renders_in_headless_chromium: no chromium on PATH (scripts/setup.sh --chromium could not install it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_report(tmp.path());

    let png = tmp.path().join("shot.png");
    screenshot(&browser, &run.join("report.html"), &png);
    let file = std::fs::File::open(&png).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1600));
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let dark = pixels.iter().filter(|p| p[..3].iter().all(|&c| c < 100)).count();
    let distinct: std::collections::HashSet<&[u8]> = pixels.iter().map(|p| &p[..3]).collect();
    // Rendered text and tables: many dark pixels and many shades (anti-aliasing, chart colours).
    assert!(dark > 5_000, "only {dark} dark pixels: the page looks blank");
    assert!(distinct.len() > 50, "only {} colours: the page looks blank", distinct.len());
}
