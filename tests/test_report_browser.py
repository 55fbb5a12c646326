"""The report in a real browser: every image decodes and nothing is wider than the window.

Runs headless Chromium (``chromium`` or ``chromium-browser`` on PATH; CI installs it in
``.ci/run``) on a copy of the page with a small script that writes what it measured into the
DOM, then reads it back from ``--dump-dom``. Skipped, with the reason, where there is no
Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import simsys  # noqa: E402
from simsys.output import save_run  # noqa: E402
from simsys.report import build_report  # noqa: E402

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no chromium or chromium-browser on PATH (apt-get install chromium; .ci/run does)",
)

# Runs on load: which images failed to decode, how wide the document is, what sticks out.
PROBE = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var width = window.innerWidth;
  var wide = Array.prototype.slice.call(document.querySelectorAll('body *')).filter(function (el) {
    var box = el.getBoundingClientRect();
    return box.width > 0 && box.right > width + 1 && !el.closest('.box');
  }).map(function (el) { return el.tagName + (el.id ? '#' + el.id : ''); });
  var result = {
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.alt; }),
    clipped: imgs.filter(function (i) { return i.getBoundingClientRect().right > width + 1; })
                 .map(function (i) { return i.alt; }),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: width,
    wide: wide.slice(0, 10)
  };
  var pre = document.createElement('pre');
  pre.id = 'simsys-browser-check';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    r = simsys.run("scenarios/checkout.yaml", overrides={"duration": "30s", "warmup": "5s"})
    d = save_run(r, tmp_path_factory.mktemp("browser") / "a-run-directory-with-a-rather-long-"
                 "name-that-must-wrap-on-a-narrow-window")
    page = build_report(d)
    probe = page.with_name("report-probe.html")
    html = page.read_text(encoding="utf-8")
    assert "</body>" in html
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return probe, html.count("<img ")


def measure(page, width: int, profile) -> dict:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
           f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
           page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="simsys-browser-check">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"the probe did not run (exit {done.returncode}): {done.stderr[-2000:]}"
    text = found.group(1).replace("&quot;", '"').replace("&amp;", "&")
    return json.loads(text)


@pytest.mark.parametrize("width", [1280, 600])
def test_report_images_load_and_nothing_is_cut_off(report_page, width, tmp_path):
    page, n_images = report_page
    m = measure(page, width, tmp_path / "profile")
    assert m["innerWidth"] == width
    assert m["images"] == n_images >= 7
    assert m["broken"] == [], f"images that did not load: {m['broken']}"
    assert m["clipped"] == [], f"images wider than the window: {m['clipped']}"
    assert m["scrollWidth"] <= m["innerWidth"], (
        f"page is {m['scrollWidth']}px wide in a {width}px window; too wide: {m['wide']}")
