"""Look at the HTML report as a browser draws it: headless Chromium takes a screenshot.

Text comparisons (the golden files) miss layout breakage: a table wider than the page, a
verdict banner that lost its colour. `.ci/run` installs Debian's chromium so this runs in
CI; on a machine without it the test is skipped and says why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlci.core.gate import Baseline, Rule, evaluate_gate
from mlci.core.report import ReportInput, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1100, 900


def screenshot(html_file: Path, out: Path) -> np.ndarray:
    """The page as an (height, width, 3) array of 0-255 values."""
    from matplotlib import image

    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={out.parent / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={out}",
            html_file.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels: np.ndarray = image.imread(out)[:, :, :3]
    return np.rint(pixels * 255).astype(int)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_the_failing_report_draws_a_red_banner_within_the_page(tmp_path: Path) -> None:
    candidate = {"accuracy": 0.85, "f1_macro": 0.86, "a_rather_long_metric_name.with.parts": 1.0}
    rules = [Rule("accuracy", min=0.9, max_drop=0.01), Rule("f1_macro", max_drop=0.01)]
    gate = evaluate_gate(
        rules,
        candidate,
        Baseline("registry", "m v1 (@champion)", {"accuracy": 0.95, "f1_macro": 0.9}),
    )
    page = tmp_path / "report.html"
    page.write_text(render_html(ReportInput(model="m", gate=gate, candidate=candidate)))

    pixels = screenshot(page, tmp_path / "report.png")

    assert pixels.shape == (HEIGHT, WIDTH, 3)
    banner = np.all(np.abs(pixels - [255, 235, 233]) <= 3, axis=2)  # the .fail background
    assert banner.sum() > 20_000, "the verdict banner is missing or not red"
    ink = np.any(pixels < 200, axis=2)
    assert ink.mean() > 0.01, "the page is blank"
    margin = ink[:, WIDTH - 40 :]
    assert not margin.any(), "something overflows the page's right margin"
