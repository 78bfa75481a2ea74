"""The drawing's page in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium), as people open it: no console error, every box inside the picture and none overlapping (from the DOM's
own geometry), and selecting, searching, folding, the receptive field and sorting by real clicks.

Run by .ci/run in the zoo environment (-m browser), which has torchvision for the imported models; screenshots
go to build/browser/ for a person to look at."""

from __future__ import annotations

import os

import pytest

import cnnsize
from cnnsize.spec.sources import bundled_names

from .conftest import ROOT, need

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
SHOTS = ROOT / "build" / "browser"
# torchvision models imported with from_torch, one per family the bundled specs do not hold
IMPORTED = ["alexnet", "resnet18", "googlenet", "densenet121", "mobilenet_v3_small", "efficientnet_b0",
            "regnet_y_400mf", "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5", "convnext_tiny", "swin_t",
            "maxvit_t", "vit_b_16"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = need("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, DRIVER):
        assert os.path.exists(path), f"{path} is missing: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


GEOMETRY = """
const view = [...document.querySelectorAll('#graph .view')].find(v => !v.hidden);
const svg = view.querySelector('svg').getBoundingClientRect();
const boxes = [...view.querySelectorAll('.node rect')].map(r => r.getBoundingClientRect());
return {svg: [svg.left, svg.top, svg.right, svg.bottom],
        boxes: boxes.map(b => [b.left, b.top, b.right, b.bottom]),
        names: [...view.querySelectorAll('.node')].map(n => n.dataset.layer)};
"""


def open_page(browser, tmp_path, spec, depth=None) -> None:
    path = tmp_path / "page.html"
    cnnsize.draw(spec, path, depth=depth)
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors


def check_layout(browser) -> dict:
    geo = browser.execute_script(GEOMETRY)
    left, top, right, bottom = geo["svg"]
    boxes = sorted(geo["boxes"])
    assert boxes and len(boxes) == len(geo["names"])
    for i, (x, t, r, b) in enumerate(boxes):
        assert left - 0.5 <= x and r <= right + 0.5 and top - 0.5 <= t and b <= bottom + 0.5
        for other in boxes[i + 1:]:
            if other[0] >= r - 0.5:
                break
            assert not (other[1] < b - 0.5 and t < other[3] - 0.5), ((x, t, r, b), other)
    return geo


def click(browser, css):
    element = browser.find_element("css selector", css)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element)
    element.click()
    return element


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_spec_loads_with_its_boxes_apart(browser, tmp_path, name):
    open_page(browser, tmp_path, name)
    geo = check_layout(browser)
    data = browser.execute_script("return JSON.parse(document.getElementById('data').textContent)")
    assert geo["names"] == [row[0] for row in data["levels"][data["start"]]["rows"]]
    if name in ("densenet121", "googlenet"):  # how long it takes to open: benchmarks/draw_speed.py
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"{name}.png"))


@pytest.mark.parametrize("model", IMPORTED)
def test_imported_models_load_with_their_boxes_apart(browser, tmp_path, model):
    need("torchvision")
    import torchvision

    net = getattr(torchvision.models, model)(weights=None)
    size = 518 if model == "vit_h_14" else 224
    spec = cnnsize.from_torch(net, (3, size, size))
    open_page(browser, tmp_path, spec)
    check_layout(browser)


def test_select_search_fold_receptive_field_and_sort_by_real_clicks(browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    open_page(browser, tmp_path, "resnet18")
    analysis = cnnsize.analyze("resnet18")
    # select a layer: it is outlined, its input is highlighted, its row is shown, its receptive field is drawn
    click(browser, '.view:not([hidden]) .node[data-layer="layer2.0.conv1"]')
    assert browser.find_elements("css selector", ".view:not([hidden]) .node.sel")[0].get_attribute(
        "data-layer") == "layer2.0.conv1"
    sources = [n.get_attribute("data-layer") for n in browser.find_elements("css selector",
                                                                            ".view:not([hidden]) .node.src")]
    assert sources == analysis.layer("layer2.0.conv1").inputs
    info = browser.find_element("id", "info").text
    assert "layer2.0.conv1" in info and f"params: {analysis.layer('layer2.0.conv1').params}" in info
    window = browser.find_element("css selector", "#rf .window")
    assert float(window.get_attribute("width")) > 1
    rf = analysis.layer("layer2.0.conv1").receptive_field
    assert f"receptive field {rf.size[0]}×{rf.size[1]}" in browser.find_element("id", "rf").text
    browser.save_screenshot(str(SHOTS / "resnet18_selected.png"))
    # search
    box = browser.find_element("id", "search")
    box.send_keys("layer3")
    hits = browser.find_elements("css selector", ".view:not([hidden]) .node.hit")
    assert len(hits) == sum("layer3" in r.name for r in analysis.layers) > 0
    assert browser.find_element("id", "found").text == f"{len(hits)} found"
    box.clear()
    box.send_keys(" ")
    # fold: the depth-1 view, then a second click on a block unfolds it
    click(browser, "#levels button[data-level='0']")
    geo = check_layout(browser)
    assert geo["names"] == [r.name for r in analysis.collapse(1).layers]
    click(browser, '.view:not([hidden]) .node[data-layer="layer3"]')
    click(browser, '.view:not([hidden]) .node[data-layer="layer3"]')
    chosen = browser.find_elements("css selector", ".view:not([hidden]) .node.sel")[0].get_attribute("data-layer")
    assert chosen.startswith("layer3.")
    click(browser, "#info button.fold")
    chosen = browser.find_elements("css selector", ".view:not([hidden]) .node.sel")[0].get_attribute("data-layer")
    assert chosen == "layer3"
    browser.save_screenshot(str(SHOTS / "resnet18_folded.png"))
    # sort the table by params, largest first on the second click
    click(browser, "#layers th:nth-child(4)")
    click(browser, "#layers th:nth-child(4)")
    first = browser.find_element("css selector", "#layers tbody tr").get_attribute("data-layer")
    assert first == max(analysis.layers, key=lambda r: r.params).name
    # the page fetched nothing
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert resources == []
