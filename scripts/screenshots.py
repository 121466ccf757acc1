"""Screenshots of the studio's Personalize, Control and Generate tabs for the README (run on demand, not in CI).

Starts the installed `studio` command on a fresh workspace (the browser tests' harness), drives it in
headless Chromium through a short real session (train a Textual Inversion token, a ControlNet on the sample
data, then generate with both) and writes `docs/images/{personalize,control,generate}.png`, each reduced to
a 256-colour palette so it stays small.

    python scripts/screenshots.py            # a few minutes on a laptop CPU
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser tests' harness lives in tests/ui

from studio.ui.app import DEFAULT_WORKSPACE  # noqa: E402
from studio.world import Scene, render  # noqa: E402
from tests.ui.browser import CHROMIUM, FLAGS, serve_studio  # noqa: E402

OUT = ROOT / "docs" / "images"
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 600_000
MAX_BYTES = 300_000


def save_small(page, path: Path) -> int:
    """Screenshot the whole page into `path` as a palette PNG; returns its size in bytes."""
    # The header names the workspace folder: show the default one instead of this run's temporary folder.
    page.evaluate(
        """shown => document.querySelectorAll('code').forEach(c => {
            if (c.textContent.endsWith('/workspace')) c.textContent = shown; })""",
        DEFAULT_WORKSPACE,
    )
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(256)
    small.save(path, optimize=True)
    return path.stat().st_size


def number(page, elem_id: str, value: float) -> None:
    page.locator(f"#{elem_id} input").first.fill(str(value))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        concept = []
        for i in range(4):
            concept.append(tmp / f"star{i}.png")
            render(Scene("star", "red", background="grey"), 64, i).save(concept[-1])
        photo = tmp / "photo.png"
        render(Scene("circle", "blue", background="white"), 64, 7).save(photo)
        with serve_studio(tmp / "studio") as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)

            page.locator("#personalize-files input[type=file]").set_input_files([str(p) for p in concept])
            number(page, "personalize-steps", 60)
            number(page, "personalize-preview-every", 30)
            page.locator("#personalize-train").click()
            expect(page.locator("#personalize-status")).to_contain_text("done")
            expect(page.locator("#personalize-previews img").first).to_be_visible()
            sizes = {"personalize": save_small(page, OUT / "personalize.png")}

            page.get_by_role("tab", name="Control").click()
            page.locator("#control-sample").click()
            page.locator("#control-photo input[type=file]").set_input_files(str(photo))
            number(page, "control-steps", 20)
            number(page, "control-preview-every", 10)
            page.locator("#control-train").click()
            expect(page.locator("#control-status")).to_contain_text("done")
            expect(page.locator("#control-condition img").first).to_be_visible()
            sizes["control"] = save_small(page, OUT / "control.png")

            page.get_by_role("tab", name="Generate").click()
            page.locator("#generate-adapters input").click()
            page.get_by_role("option", name="textual_inversion-my-concept").click()
            page.keyboard.press("Escape")
            page.locator("#generate-prompt textarea").fill("a <my-concept> on a grey background")
            page.locator("#generate-run").click()
            expect(page.locator("#generate-gallery img").first).to_be_visible()
            sizes["generate"] = save_small(page, OUT / "generate.png")
            browser.close()
    for name, size in sizes.items():
        print(f"docs/images/{name}.png: {size / 1000:.0f} kB")
        if size > MAX_BYTES:
            raise SystemExit(f"docs/images/{name}.png is {size / 1000:.0f} kB; keep screenshots under 300 kB")


if __name__ == "__main__":
    main()
