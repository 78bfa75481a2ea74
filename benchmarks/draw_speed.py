"""Drawing speed: `cnnsize draw` (layout included) on resnet152 and densenet201, and a 50,000-layer spec.

Issue 27's targets: resnet152 drawn in at most 1 s and densenet201 in at most 2 s, layout included; a
50,000-layer spec folds automatically with a note rather than hanging. Measured here in this run against two
baselines on the same spec: cnnsize's own analysis of it (the drawing's cost over the sizing's), and Graphviz's
``dot`` laying out the same DOT file (the usual way to draw a network, where Graphviz is installed). densenet201
is densenet121's bundled spec with torchvision's densenet201 block sizes (6, 12, 48, 32) and its third
transition's 896 filters, which give its 20,013,928 parameters (checked here). With Selenium and Debian's
chromium, ``--page`` also times how long densenet121's page takes to open in headless Chromium (issue 27: under a
second).

    python benchmarks/draw_speed.py [--page]       # needs igraph (pip install 'cnnsize[draw]')
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cnnsize
from cnnsize.render.draw_formats import draw_text
from cnnsize.spec.sources import bundled_path


def densenet201() -> str:
    text = Path(bundled_path("densenet121")).read_text(encoding="utf-8").replace("name: densenet121",
                                                                                  "name: densenet201")
    text = text.replace("{repeat: 24,", "{repeat: 48,").replace("{repeat: 16,", "{repeat: 32,")
    return text.replace("features.transition3, filters: 512", "features.transition3, filters: 896")


def best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def graphviz_s(analysis) -> float | None:
    if shutil.which("dot") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.dot"
        path.write_text(draw_text(analysis, "dot"), encoding="utf-8")
        return best(lambda: subprocess.run(["dot", "-Tsvg", "-o", str(path.with_suffix(".svg")), str(path)],
                                           check=True), runs=1)


def page_open_s(spec: str) -> float:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "page.html"
            cnnsize.draw(spec, path)
            driver.get("about:blank")
            start = time.perf_counter()
            driver.get(path.as_uri())  # returns once the page has loaded (its script run)
            return time.perf_counter() - start
    finally:
        driver.quit()


def main(argv: list[str]) -> None:
    cnnsize.draw("lenet5")  # the layout's library loaded once, as any later drawing finds it
    specs = {"resnet152": "resnet152", "densenet201": densenet201()}
    print(f"{'spec':<12} {'layers':>7} {'analyze s':>10} {'draw s (svg)':>13} {'page s (html)':>14} "
          f"{'draw/analyze':>13} {'graphviz dot s':>15} {'target s':>9}")
    for name, spec in specs.items():
        analysis = cnnsize.analyze(spec)
        if name == "densenet201":
            assert analysis.totals["params"] == 20_013_928, analysis.totals["params"]
        analyze_s = best(lambda spec=spec: cnnsize.analyze(spec))
        svg_s = best(lambda spec=spec: cnnsize.draw(spec, fmt="svg"))
        html_s = best(lambda spec=spec: cnnsize.draw(spec, fmt="html"))
        dot = graphviz_s(analysis)
        target = 1.0 if name == "resnet152" else 2.0
        print(f"{name:<12} {len(analysis.layers):>7} {analyze_s:>10.3f} {svg_s:>13.3f} {html_s:>14.3f} "
              f"{svg_s / analyze_s:>12.1f}x {'-' if dot is None else f'{dot:.2f}':>15} {target:>9.1f}")
    big = {"input": [4, 8, 8], "layers": [{"relu": {}} for _ in range(50_000)]}
    start = time.perf_counter()
    drawing = cnnsize.draw(big, fmt="svg")
    took = time.perf_counter() - start
    note = "too many to draw one by one" in drawing
    print(f"50,000 layers: drawn in {took:.2f} s, folded with a note: {note}")
    if "--page" in argv:
        print(f"densenet121's page opens in headless Chromium in {page_open_s('densenet121'):.2f} s (target: 1 s)")


if __name__ == "__main__":
    main(sys.argv[1:])
