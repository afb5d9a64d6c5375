"""The HTML page as a student sees it: every built-in example in headless Chromium at a
phone's 400 px has no horizontal overflow, and prints to PDF."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from deltalab.examples import example_names

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium is not installed (Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files"]
PHONE = 400

# Each page in a 400 px iframe (headless Chromium's own window is at least 500 px wide), a
# few side by side in one window so that every frame is on screen and loads; the harness
# writes what it measured into its DOM, which --dump-dom prints.
HARNESS = """<!DOCTYPE html><html><body style="display:flex;flex-wrap:wrap;margin:0">%s<script>
const results = {};
function measure(frame) {
  const w = frame.contentWindow, d = w.document.documentElement;
  const wide = [...w.document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > w.innerWidth + 0.5 && !e.closest('.wide, .grid-box'))
    .slice(0, 3).map(e => e.tagName + '.' + e.className);
  results[frame.dataset.name] = {scroll: d.scrollWidth, inner: w.innerWidth, wide: wide};
  document.body.setAttribute('data-results', JSON.stringify(results));
}
</script></body></html>"""
FRAME = ('<iframe data-name="%s" src="%s" loading="eager" style="width:%dpx;height:600px;border:0" '
         'onload="measure(this)"></iframe>')


def _chromium(*args, timeout=120):
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


def _measure(tmp_path, names):
    """{name: {"scroll", "inner", "wide"}} for the pages of ``names`` in one browser run."""
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS % "".join(FRAME % (name, f"{name}.html", PHONE) for name in names))
    result = _chromium(f"--user-data-dir={tmp_path / 'profile'}", "--window-size=2000,1000",
                       "--dump-dom", harness.as_uri(), timeout=300)
    found = re.search(r'data-results="([^"]*)"', result.stdout)
    return json.loads(found.group(1).replace("&quot;", '"')) if found else {}


def test_no_example_overflows_a_phone_screen(tmp_path, example_pages):
    for name in example_names():
        page = tmp_path / f"{name}.html"
        page.write_text(example_pages[name][1])  # with its computation graph as inline SVG
    results = {}
    for attempt in range(3):  # a busy machine may dump the page before every frame is measured
        missing = [n for n in example_names() if n not in results]
        for first in range(0, len(missing), 4):
            results.update(_measure(tmp_path, missing[first : first + 4]))
    assert sorted(results) == sorted(example_names())
    overflowing = {name: r for name, r in results.items() if r["scroll"] > r["inner"] or r["wide"]}
    assert overflowing == {}
    assert all(r["inner"] == PHONE for r in results.values())


def test_a_page_prints_to_pdf(tmp_path, example_pages):
    page = tmp_path / "page.html"
    page.write_text(example_pages["rnn-many-to-many-identity"][1])
    assert "@media print" in page.read_text() and "<svg" in page.read_text()
    pdf = tmp_path / "page.pdf"
    result = _chromium(f"--user-data-dir={tmp_path / 'profile'}", f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                       page.as_uri())
    assert pdf.exists(), result.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 1
