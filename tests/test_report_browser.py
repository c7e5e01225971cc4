"""report.html end to end in headless Chromium: loads offline, images decode, headers sort.

Drives Debian's chromium (``apt-get install chromium``, see .ci/install-browser) through the
``playwright`` Python package (extra ``browser``); Playwright's own browser download is never
used. Skips, naming what is missing, when either is absent (fails instead where
$BENCH_TESTS_REQUIRE lists 'browser', as CI's does once chromium is installed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import skip_unless_required
from test_html_report import build_store

from bench.report import rebuild

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# Quiet and offline: no GPU, no QUIC, no component, sync or background fetches of its own.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium, or a skip saying which part is missing."""
    missing = [
        what
        for what, there in (
            (f"chromium at {CHROMIUM} (run .ci/install-browser)", CHROMIUM.is_file()),
            (
                "the playwright Python package (pip install 'denoise-bench[browser]')",
                importlib.util.find_spec("playwright") is not None,
            ),
        )
        if not there
    ]
    if missing:
        skip_unless_required("browser", "browser test needs " + " and ".join(missing))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run_dir = build_store(tmp_path_factory.mktemp("run"))
    return next(p for p in rebuild(run_dir) if p.name == "report.html")


@pytest.fixture
def page(browser, report):
    """The report opened from disk; ``page.problems`` collects console errors and network requests."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(("file://", "data:")) else problems.append(f"request: {request.url}")
        ),
    )
    page.goto(report.as_uri(), wait_until="load")
    page.problems = problems
    yield page
    page.close()


def _column(page, table: str, column: int, metric: str) -> list[float | None]:
    values = page.eval_on_selector(
        table, "(t, [c, m]) => Array.from(t.tBodies[0].rows, r => r.children[c].dataset[m])", [column, metric]
    )
    return [float(v) if v else None for v in values]


def test_loads_offline_and_every_image_decodes(page):
    decoded = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert decoded and all(decoded)
    assert page.locator("table.lb").count() == 1
    assert page.problems == []


def test_clicking_a_header_sorts_the_leaderboard(page):
    table = "table.lb"
    header = page.locator(f"{table} thead th", has_text="level 0.1")
    before = _column(page, table, 1, "psnr")
    assert before == sorted(before, reverse=True)  # rows start best first
    page.locator(f"{table} thead th", has_text="denoiser").click()
    names = page.locator(f"{table} tbody th").all_inner_texts()
    assert names == sorted(names, key=str.lower) and _column(page, table, 1, "psnr") != before
    header.click()
    assert _column(page, table, 1, "psnr") == sorted(before, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    assert _column(page, table, 1, "psnr") == sorted(before)
    page.get_by_role("button", name="SSIM").click()
    header.click()
    ssim = _column(page, table, 1, "ssim")
    assert ssim == sorted(ssim, reverse=True)
    assert page.locator(f"{table} tbody th").first.inner_text() == "median"  # best SSIM at 0.1
    assert page.problems == []


@pytest.fixture(scope="module")
def two_sets_report(tmp_path_factory) -> Path:
    """The fabricated run plus a second dataset, 'letters', tested at 0.5 only, whose dncnn output is broken."""
    import numpy as np
    from test_html_report import _row

    from bench.execution.rows import CellRow
    from bench.execution.store import Store

    run_dir = build_store(tmp_path_factory.mktemp("run"))
    rng = np.random.default_rng(1)
    with Store(run_dir / "store.sqlite") as store:
        for denoiser, psnr in (("median", 17.0), ("dncnn", 12.0)):
            row = _row(denoiser, 0.5, "0.5", psnr, 0.5) | {"dataset": "letters", "key": f"letters-{denoiser}"}
            samples = {k: rng.integers(0, 256, (3, 1, 8, 8), dtype=np.uint8) for k in ("clean", "noisy", "denoised")}
            store.put_cell(CellRow(**row | {"below_noisy": psnr < row["psnr_noisy"]}), [], samples)
    return next(p for p in rebuild(run_dir) if p.name == "report.html")


def _shown_cells(page) -> list[str]:
    return page.eval_on_selector_all(
        ".cellgrid",
        "gs => gs.filter(g => !g.hidden && g.offsetHeight > 0).map(g => g.querySelector('caption').textContent)",
    )


def test_the_image_picker_shows_one_cell_at_a_time(browser, two_sets_report):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(two_sets_report.as_uri(), wait_until="load")
    assert page.locator(".cellgrid").count() == 3
    assert _shown_cells(page) == ["digits · gaussian 0.1"]
    assert page.locator("#pick-dataset option").all_inner_texts() == ["digits", "letters"]
    assert page.locator("#pick-level option").all_inner_texts() == ["0.1", "0.3"]

    page.select_option("#pick-level", "0.3")
    assert _shown_cells(page) == ["digits · gaussian 0.3"]

    page.select_option("#pick-dataset", "letters")  # letters has no 0.3: its only level is picked
    assert page.locator("#pick-level option").all_inner_texts() == ["0.5"]
    assert _shown_cells(page) == ["letters · gaussian 0.5"]
    shown = page.locator(".cellgrid:not([hidden])")
    decoded = shown.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert decoded == [True] * 4  # clean, noisy, dncnn, median
    assert shown.locator("th", has_text="dncnn").locator(".broken").count() == 1
    assert shown.locator("th", has_text="median").locator(".broken").count() == 0
    assert page.locator("#pick-count").inner_text() == "cell 3 of 3"

    page.select_option("#pick-dataset", "digits")
    assert _shown_cells(page) == ["digits · gaussian 0.1"]
    assert errors == []
    page.close()
