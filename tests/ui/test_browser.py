"""End to end in real headless Chromium, against the studio started exactly as a user starts it.

The server is the installed `studio` console script in a subprocess (see `tests/ui/browser.py`); every check
is on what the user receives: each image and download the page shows is fetched from the page and must come
back HTTP 200 with a decodable body. The default run covers Textual Inversion → Generate with the token (on
the bundled model, and on an SDXL folder the user copied into the workspace), ControlNet with previews on the sample data → Generate with a control image, the ViT tab's result and
Few-shot fit → classify; the Stop → Resume flow is marked slow.
"""

import json
import re
import shutil

import pytest
from PIL import Image

from tests.diffusion.tiny import build_tiny_sdxl_pipeline
from tests.ui.browser import CHROMIUM, FLAGS, fetch_ok, serve_studio, served_downloads, served_images

TIMEOUT_MS = 180_000

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def studio_folder(tmp_path_factory):
    """The folder of the served studio: its `workspace/`, its isolated `HOME`, its log."""
    return tmp_path_factory.mktemp("studio")


@pytest.fixture(scope="module")
def studio_url(studio_folder):
    with serve_studio(studio_folder) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # CI is a busy 2-core box; expect's own default is 5 s
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, studio_url):
    page = browser.new_page()
    page.goto(studio_url)
    yield page
    page.close()


@pytest.fixture
def own_studio(browser, tmp_path):
    """A page on a studio of its own, for a test whose job would fill the shared studio's reloaded forms
    (a reloaded Personalize tab shows the last job's settings); yields the page and the studio's folder."""
    with serve_studio(tmp_path) as url:
        page = browser.new_page()
        page.goto(url)
        try:
            yield page, tmp_path
        finally:
            page.close()


def _fill_number(page, elem_id, value):
    page.locator(f"#{elem_id} input").first.fill(str(value))


def _pick_artifact(page, name):
    page.locator("#generate-adapters input").click()
    page.get_by_role("option", name=name).click()
    page.keyboard.press("Escape")


def _generate(page, prompt, steps=2):
    page.locator("#generate-prompt textarea").fill(prompt)
    _fill_number(page, "generate-steps", steps)
    page.locator("#generate-run").click()
    expect(page.locator("#generate-gallery img").first).to_be_visible()
    images = served_images(page, "#generate-gallery")
    assert images and all(im.size[0] > 1 for im in images)
    return images


def test_textual_inversion_then_generate_with_the_token(page, concept_files):
    page.locator("#personalize-files input[type=file]").set_input_files(concept_files)
    expect(page.locator("#personalize-files")).to_contain_text("star2")
    expect(page.locator("#personalize-uploads img").nth(2)).to_be_visible()  # thumbnails, not just names
    assert [im.size for im in served_images(page, "#personalize-uploads")] == [(64, 64)] * 3
    _fill_number(page, "personalize-steps", 2)
    _fill_number(page, "personalize-preview-every", 2)
    page.locator("#personalize-train").click()
    expect(page.locator("#personalize-status")).to_contain_text("done")
    expect(page.locator("#personalize-status")).to_contain_text("<my-concept>")  # not eaten as an HTML tag
    expect(page.locator("#personalize-previews img").first).to_be_visible()
    assert served_images(page, "#personalize-previews")

    page.get_by_role("tab", name="Generate").click()
    _pick_artifact(page, "textual_inversion-my-concept")
    _generate(page, "a <my-concept> on a grey background")
    expect(page.locator("#generate-gallery")).to_contain_text("seed 0")
    served_images(page)  # everything else the page shows loads too


def test_controlnet_on_the_sample_data_with_previews_then_generate(page, tmp_path, studio_folder):
    page.get_by_role("tab", name="Control").click()
    page.locator("#control-sample").click()
    expect(page.locator("#control-files")).to_contain_text("control-sample")
    _fill_number(page, "control-steps", 1)  # one step, one preview: a preview samples 2 x 20 steps
    _fill_number(page, "control-preview-every", 1)
    page.locator("#control-train").click()
    expect(page.locator("#control-status")).to_contain_text("done")
    expect(page.locator("#control-previews img").nth(2)).to_be_visible()  # the condition beside 2 samples
    assert len(served_images(page, "#control-previews")) >= 3

    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (120, 120, 120)).save(photo)
    page.locator("#control-photo input[type=file]").set_input_files(str(photo))
    expect(page.locator("#control-condition img").first).to_be_visible()
    assert served_images(page, "#control-condition")

    page.get_by_role("tab", name="Generate").click()
    _pick_artifact(page, "controlnet-canny")
    page.locator("#generate-control input[type=file]").set_input_files(str(photo))
    expect(page.locator("#generate-control img").first).to_be_visible()
    long_prompt = " ".join(["a red circle on a grey background"] * 8 + ["and a purple moon"])
    _generate(page, long_prompt)
    expect(page.locator("#generate-notes")).to_contain_text("and a purple moon")  # cut, and the user is told
    records = (studio_folder / "workspace" / "generations").glob("*/00.json")
    (record,) = [r for r in records if json.loads(r.read_text())["prompt"] == long_prompt]
    settings = json.loads(record.read_text())
    assert settings["adapters"] == ["controlnet-canny"] and settings["control_image"] == "control_image.png"
    assert Image.open(record.parent / "control_image.png").size == (64, 64)  # the control image is kept


def test_fewshot_fit_then_classify(page, fewshot_files, tmp_path):
    files, classes, test = fewshot_files
    page.get_by_role("tab", name="Few-shot CLIP").click()
    page.locator("#fewshot-files input[type=file]").set_input_files(files)
    page.locator("#fewshot-classnames textarea").fill(", ".join(classes))
    page.locator("#fewshot-fit").click()
    expect(page.locator("#fewshot-status")).to_contain_text("done")
    image = tmp_path / "query.png"
    test[0][0].save(image)
    page.locator("#fewshot-image input[type=file]").set_input_files(str(image))
    shown = page.locator("#fewshot-probabilities")
    expect(shown).to_contain_text("%")
    for name in classes:
        expect(shown).to_contain_text(name)
    percents = [float(p) for p in re.findall(r"(\d+(?:\.\d+)?)\s*%", shown.inner_text())]
    assert len(percents) == len(classes), shown.inner_text()
    assert abs(sum(percents) - 100) <= len(classes), percents  # each shown rounded


def test_vit_shows_its_accuracy_confusion_matrix_and_download(page):
    page.get_by_role("tab", name="ViT fine-tune").click()
    _fill_number(page, "vit-epochs", 1)
    page.locator("#vit-train").click()
    expect(page.locator("#vit-status")).to_contain_text("done")
    result = page.locator("#vit-result")
    expect(result).to_contain_text("test accuracy")
    shown = re.search(r"test accuracy: (\d+(?:\.\d+)?)% \((\d+) of (\d+) images\)", result.inner_text())
    correct, total = int(shown.group(2)), int(shown.group(3))
    assert total > 0 and float(shown.group(1)) == round(100 * correct / total, 1)
    expect(page.locator("#vit-confusion img").first).to_be_visible()
    (matrix,) = served_images(page, "#vit-confusion")
    assert matrix.width > 100
    page.locator("#vit-download").click()
    expect(page.locator("#vit-file a").first).to_be_visible()
    (archive,) = served_downloads(page, "#vit-file")
    assert archive[:2] == b"PK"  # a zip

    page.get_by_role("tab", name="Library").click()
    # The tab's number is the one the run recorded: the Library lists it among the artifact's metrics.
    expect(page.get_by_role("grid", name="artifacts")).to_contain_text(f"test_accuracy {correct / total:.3g}")
    page.locator("#library-artifact input").click()
    page.get_by_role("option").first.click()  # the only artifact: the ViT adapter
    page.locator("#library-download").click()
    link = page.locator("#library-file a[href]").first
    expect(link).to_be_visible()
    assert fetch_ok(page, link.get_attribute("href"))[:2] == b"PK"
    served_downloads(page)  # and every other download link the page holds


@pytest.mark.slow
def test_textual_inversion_stop_resume_then_generate(page, concept_files):
    page.locator("#personalize-files input[type=file]").set_input_files(concept_files)
    expect(page.locator("#personalize-uploads img").nth(2)).to_be_visible()
    _fill_number(page, "personalize-steps", 60)
    _fill_number(page, "personalize-preview-every", 30)
    page.locator("#personalize-name textarea").fill("resumed")
    page.locator("#personalize-train").click()
    status = page.locator("#personalize-status")
    expect(status).to_contain_text(re.compile(r"step [1-9]\d*/60"))
    page.get_by_role("button", name="Stop").click()
    expect(status).to_contain_text("stopped")
    page.get_by_role("button", name="Resume").click()
    expect(status).to_contain_text("done")
    expect(status).to_contain_text("60")
    assert len(served_images(page, "#personalize-previews")) >= 2

    page.get_by_role("tab", name="Generate").click()
    _pick_artifact(page, "resumed")
    _generate(page, "a <my-concept> on a grey background")


def test_an_sdxl_model_in_the_workspace_trains_and_generates(own_studio, concept_files):
    page, studio_folder = own_studio
    log = studio_folder / "studio.log"
    build_tiny_sdxl_pipeline().save_pretrained(studio_folder / "workspace" / "models" / "tiny-sdxl")
    page.locator("#personalize-files input[type=file]").set_input_files(concept_files)
    expect(page.locator("#personalize-uploads img").nth(2)).to_be_visible()
    page.locator("#personalize-model textarea").fill("models/tiny-sdxl")  # as the user names it
    page.locator("#personalize-name textarea").fill("sdxl-star")
    page.locator("#personalize-token textarea").fill("<sdxl-star>")
    _fill_number(page, "personalize-steps", 2)
    _fill_number(page, "personalize-preview-every", 2)
    page.locator("#personalize-train").click()
    status = page.locator("#personalize-status")
    expect(status).to_contain_text("<sdxl-star> on 3 images · done")
    expect(page.locator("#personalize-previews img").first).to_be_visible()
    assert {im.size for im in served_images(page, "#personalize-previews")} == {
        (16, 16)
    }  # the pipeline's own

    page.get_by_role("tab", name="Generate").click()
    _pick_artifact(page, "sdxl-star")
    model = page.locator("#generate-model textarea")
    expect(model).to_have_value(str(studio_folder / "workspace" / "models" / "tiny-sdxl"))  # set by the pick
    assert {im.size for im in _generate(page, "a <sdxl-star> on grass")} == {(16, 16)}
    page.get_by_role("tab", name="Library").click()
    expect(page.get_by_role("grid", name="artifacts")).to_contain_text("sdxl-star")
    served_images(page)
    assert "Traceback" not in log.read_text()
