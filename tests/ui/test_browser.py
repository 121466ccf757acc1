"""End to end in real headless Chromium (Debian's `chromium`, driven by Playwright; no browser is downloaded).

One short path runs by default: open the studio, upload concept images, train Textual Inversion for a few
steps, see the loss plot and a preview, generate an image with the new token, fit a few-shot classifier and
classify an image.
"""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
TIMEOUT_MS = 180_000

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture
def studio_url(tmp_path, monkeypatch):
    from studio.ui import launch

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    app = launch(workspace=tmp_path / "workspace", block=False)
    yield app.local_url
    app.close()


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()


def _fill_number(page, elem_id, value):
    page.locator(f"#{elem_id} input").first.fill(str(value))


def test_personalize_generate_and_classify_in_the_browser(
    studio_url, page, concept_files, fewshot_files, tmp_path
):
    expect = sync_api.expect
    expect.set_options(
        timeout=TIMEOUT_MS
    )  # assertions keep their own 5 s default otherwise; CI is a busy 2-core box
    page.goto(studio_url)

    # Personalize: upload, train two steps with a preview at step 2.
    page.locator("#personalize-files input[type=file]").set_input_files(concept_files)
    expect(page.locator("#personalize-files")).to_contain_text(
        "star2"
    )  # gradio renders the stem and ".png" apart
    _fill_number(page, "personalize-steps", 2)
    _fill_number(page, "personalize-preview-every", 2)
    page.locator("#personalize-train").click()
    expect(page.locator("#personalize-status")).to_contain_text("done", timeout=TIMEOUT_MS)
    expect(page.locator("#personalize-loss")).to_contain_text("loss")
    expect(page.locator("#personalize-loss canvas, #personalize-loss svg").first).to_be_visible()
    expect(page.locator("#personalize-previews img").first).to_be_visible()

    # Generate with the new token.
    page.get_by_role("tab", name="Generate").click()
    page.locator("#generate-prompt textarea").fill("a <my-concept> on a grey background")
    _fill_number(page, "generate-steps", 2)
    page.locator("#generate-adapters input").click()
    page.get_by_role("option", name="textual_inversion-my-concept").click()
    page.locator("#generate-run").click()
    expect(page.locator("#generate-gallery img").first).to_be_visible()
    expect(page.locator("#generate-gallery")).to_contain_text("seed 0")
    page.screenshot(path=str(tmp_path / "generate.png"))

    # Few-shot CLIP: fit on labelled uploads, then drop an image to classify.
    files, classes, test = fewshot_files
    page.get_by_role("tab", name="Few-shot CLIP").click()
    page.locator("#fewshot-files input[type=file]").set_input_files(files)
    page.locator("#fewshot-classnames textarea").fill(", ".join(classes))
    page.locator("#fewshot-fit").click()
    expect(page.locator("#fewshot-status")).to_contain_text("done", timeout=TIMEOUT_MS)
    image = tmp_path / "query.png"
    test[0][0].save(image)
    page.locator("#fewshot-image input[type=file]").set_input_files(str(image))
    expect(page.locator("#fewshot-probabilities")).to_contain_text("%")
    for name in classes:
        expect(page.locator("#fewshot-probabilities")).to_contain_text(name)
