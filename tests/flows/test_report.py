"""The run's report: beside the stores, self-contained, and whole when a real browser opens it."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

# Appended to a copy of report.html: after loading, record which images decoded and every link's target.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(img => img.complete && img.naturalWidth > 0);
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  document.body.setAttribute("data-probe", JSON.stringify({images, links}));
});
</script>"""


def open_in_chromium(report: Path, tmp_path: Path) -> dict:
    """{"images": [loaded?], "links": [absolute URL]} as headless Chromium sees ``report``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not installed (.ci/run installs the Debian package)")
    page = report.read_text()
    base = f'<base href="{report.parent.as_uri()}/">'  # links resolve against the run directory
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + base, 1).replace("</body>", PROBE + "</body>", 1))
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert found, f"no probe result from Chromium (status {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_report_sits_beside_the_stores_and_names_every_mode(demo_run):
    markdown = (demo_run / "report.md").read_text()
    for heading in (
        "## Headline",
        "## Skill against lead time",
        "## Maps at 12 h",
        "## Training",  # 12 h: nearest 24 h
        "## Optical device time and energy",
        "## Wall time per stage",
        "## Outputs",
    ):
        assert heading in markdown, heading
    for model in ("vit-backprop", "vit-optical", "persistence", "climatology"):
        assert f"| {model} |" in markdown or f"| {model} " in markdown, model
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(images) >= 6 and all((demo_run / rel).is_file() for rel in images)
    assert not list((demo_run / "scores.zarr").glob("report*"))  # beside the stores, not inside them
    timings = json.loads((demo_run / "timings.json").read_text())
    assert {"ingest", "train backprop", "train optical", "score"} <= set(timings) and all(
        v >= 0 for v in timings.values()
    )


def test_report_html_is_self_contained(demo_run):
    page = (demo_run / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 6 and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_opens_in_a_browser_with_every_image_and_link_whole(demo_run, tmp_path):
    seen = open_in_chromium(demo_run / "report.html", tmp_path)
    assert len(seen["images"]) >= 6 and all(seen["images"]), seen["images"]
    assert seen["links"], "the report links to the run's stores"
    for url in seen["links"]:
        parsed = urlparse(url)
        assert parsed.scheme == "file", url
        target = Path(unquote(parsed.path))
        assert target.exists() and target.resolve().is_relative_to(demo_run.resolve()), url


def test_probe_notices_a_broken_image(demo_run, tmp_path):
    """The browser check can fail: an image that does not decode is reported as not loaded."""
    broken = tmp_path / "run" / "report.html"
    broken.parent.mkdir()
    page = (demo_run / "report.html").read_text()
    broken.write_text(page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    seen = open_in_chromium(broken, tmp_path)
    assert seen["images"].count(False) == 1
