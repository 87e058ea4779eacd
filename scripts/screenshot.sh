#!/usr/bin/env bash
# Screenshot of a run's report.html in headless Chromium (installed by setup.sh --chromium).
#   bash scripts/screenshot.sh RUN_DIR OUT.png [WIDTH HEIGHT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="${1:?usage: screenshot.sh RUN_DIR OUT.png [WIDTH HEIGHT]}"
out="${2:?usage: screenshot.sh RUN_DIR OUT.png [WIDTH HEIGHT]}"
width="${3:-1280}"
height="${4:-2400}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  bash "$here/setup.sh" --chromium
  browser="$(command -v chromium || command -v chromium-browser || true)"
fi
[[ -n "$browser" ]] || { echo "screenshot.sh: chromium is not installed and could not be" >&2; exit 1; }
html="$(cd "$run" && pwd)/report.html"
[[ -f "$html" ]] || { echo "screenshot.sh: $html not found (run seqbench report $run first)" >&2; exit 1; }
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --hide-scrollbars --window-size="$width,$height" --screenshot="$(realpath -m "$out")" "file://$html" \
  2>"${TMPDIR:-/tmp}/seqbench-screenshot.log" ||
  { cat "${TMPDIR:-/tmp}/seqbench-screenshot.log" >&2; exit 1; }
[[ -s "$out" ]] || { echo "screenshot.sh: chromium wrote no $out" >&2; exit 1; }
echo "$out"
