"""Screenshots of TensorBoard's Time Series, Custom Scalars, HPARAMS and Images dashboards for a
log dir, taken in headless Chromium with a fresh profile (TensorBoard's defaults: "ignore
outliers" on): a check of what a reader sees, not a test.

Needs Chromium, its driver and Selenium (Debian/Ubuntu):

    apt-get update && apt-get install -y chromium chromium-driver
    .venv/bin/pip install selenium          # or Debian's python3-selenium for the system python

Usage:

    .venv/bin/python scripts/tensorboard_screens.py /tmp/smoke_tb --out /tmp/screens

It starts TensorBoard on 127.0.0.1 (this venv's), opens each dashboard with smoothing 0,
waits for it to draw and saves <out>/tensorboard_<dashboard>.png (docs/ holds them under these
names); TensorBoard is stopped at the end.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# dashboard -> the rest of its URL: Time Series (Angular) reads the smoothing from the query,
# the older dashboards from the fragment
DASHBOARDS = {
    "time_series": "?smoothing=0#timeseries",  # the view TensorBoard opens: the R@10 (forgetting) group first
    "time_series_means": "?smoothing=0&runFilter=mean%7Cy-axis#timeseries",  # one line per strategy: the means (and the axis runs)
    "custom_scalars": "#custom_scalars&_smoothingWeight=0&regexInput=mean%7Cy-axis",  # the means: 55 lines a chart with every seed
    "hparams": "#hparams",
    "hparams_parallel": "#hparams",  # then its "parallel coordinates view" tab
    "images": "#images",
}
TABS = {"hparams_parallel": "PARALLEL COORDINATES VIEW"}  # dashboard -> the tab to click once it has drawn

# Clicks the innermost element showing a text, shadow roots included (TensorBoard's older
# dashboards are Polymer elements in shadow DOM).
CLICK = """
const want = arguments[0];
function find(root) {
  for (const e of root.querySelectorAll('*')) {
    if (e.children.length === 0 && e.textContent.trim().toUpperCase() === want) return e;
    if (e.shadowRoot) { const f = find(e.shadowRoot); if (f) return f; }
  }
  return null;
}
const e = find(document);
if (e) e.click();
return e !== null;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"TensorBoard did not answer at {url} within {timeout:.0f}s")


def browser(width: int, height: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("tensorboard_screens"))
    parser.add_argument("--dashboards", nargs="+", default=list(DASHBOARDS), choices=list(DASHBOARDS))
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--wait", type=float, default=20.0, help="seconds to let each dashboard load and draw")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(args.logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_for(base + "data/runs", timeout=120)
        driver = browser(args.width, args.height)
        try:
            for name in args.dashboards:
                driver.get("about:blank")
                driver.get(base + DASHBOARDS[name])
                time.sleep(args.wait)
                if name in TABS:
                    if not driver.execute_script(CLICK, TABS[name]):
                        raise RuntimeError(f"no {TABS[name]!r} tab in {name}")
                    time.sleep(args.wait / 2)
                path = args.out / f"tensorboard_{name}.png"
                driver.save_screenshot(str(path))
                print(f"{path} ({path.stat().st_size // 1024} KB)")
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
