"""The audit page in a real browser (headless Chromium driven by
Playwright): no console errors, no network requests, the headline numbers
on the page. Skips, saying why, only where no browser can be started."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright is not installed (python3 dev.py installs it)")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox"])
        yield b
        b.close()


def test_page_renders_without_errors_or_requests(browser, report, tmp_path):
    path = tmp_path / "report.html"
    report.to_html(path)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert errors == []
    assert [u for u in requests if not u.startswith("data:")] == [
        path.as_uri()]
    text = page.inner_text("body")
    assert "Audit of small_cnn" in text and "sigma 0.25" in text
    assert "eps 0.05, 0.1" in text
    clean = f"{100 * report.evasion.clean_accuracy:.1f}%"
    assert clean in text
    # Every figure decoded and laid out.
    sizes = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.naturalWidth, e.clientWidth])")
    assert len(sizes) == 3 + ("suspicious" in report.figures)
    assert all(w > 0 and c > 0 for w, c in sizes)
    # The poisoning card leads with the verdict.
    verdict = ("Poisoned: class" if report.poisoning.poisoned
               else "No evidence of poisoning at alpha 0.05")
    assert verdict in page.inner_text("#verdict")
    # Dark scheme and print both render (no error, text still there).
    page.emulate_media(color_scheme="dark")
    assert "Evasion" in page.inner_text("body")
    page.emulate_media(media="print")
    assert len(page.pdf()) > 10_000
    page.close()
