"""Screenshots of TensorBoard's Custom Scalars, HPARAMS and Images dashboards for a log dir,
taken in headless Chromium: a check of what a reader sees, not a test.

Needs Chromium, its driver and Selenium (Debian/Ubuntu):

    apt-get update && apt-get install -y chromium chromium-driver
    .venv/bin/pip install selenium          # or Debian's python3-selenium for the system python

Usage:

    .venv/bin/python scripts/tensorboard_screens.py /tmp/smoke_tb --out /tmp/screens

It starts TensorBoard on 127.0.0.1 (this venv's), opens each dashboard with smoothing 0,
waits for it to draw and saves <out>/<dashboard>.png; TensorBoard is stopped at the end.
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

# dashboard -> URL fragment (TensorBoard reads the smoothing from the fragment)
DASHBOARDS = {
    "timeseries": "#timeseries&_smoothingWeight=0",  # the view TensorBoard opens: the Forgetting R@10 group first
    "custom_scalars": "#custom_scalars&_smoothingWeight=0",
    "hparams": "#hparams",
    "images": "#images",
}


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
                path = args.out / f"{name}.png"
                driver.save_screenshot(str(path))
                print(f"{path} ({path.stat().st_size // 1024} KB)")
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
