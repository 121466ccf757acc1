"""The import direction of docs/design.md, checked on the source with `ast`."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
DOMAINS = ("vision", "vlm", "diffusion")


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level modules imported by each file of `package` (relative imports resolved to absolute)."""
    found = {}
    for file in (ROOT / package).rglob("*.py"):
        package_parts = list(file.relative_to(ROOT).parent.parts)  # what a relative import starts from
        names = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif isinstance(node, ast.ImportFrom):
                names.add(node.module)
        found[str(file.relative_to(ROOT))] = names
    return found


def _violations(package: str, allowed) -> list[str]:
    return [
        f"{file}: {name}" for file, names in _imports(package).items() for name in names if not allowed(name)
    ]


def test_core_imports_only_torch_and_safetensors():
    def allowed(name):
        top = name.split(".")[0]
        return (
            top in STDLIB
            or top in ("torch", "safetensors")
            or name.startswith("studio.core")
            or name == "studio"
        )

    assert _violations("studio/core", allowed) == []


def test_images_imports_only_pil_numpy_and_torch():
    """studio.images sits below the domains: PIL, numpy and torch, no domain, no gradio, no other studio layer."""

    def allowed(name):
        top = name.split(".")[0]
        return top in STDLIB or top in ("PIL", "numpy", "torch") or name.startswith("studio.images")

    assert _violations("studio/images", allowed) == []


@pytest.mark.parametrize("domain", [d for d in DOMAINS if (ROOT / d).is_dir()])
def test_domains_use_only_the_core_engine_and_their_library(domain):
    forbidden = {"gradio", "studio.ui", "studio.cli"} | {d for d in DOMAINS if d != domain}

    def allowed(name):
        return not any(name == f or name.startswith(f + ".") for f in forbidden)

    assert _violations(domain, allowed) == []


def test_engine_imports_no_domain_or_gradio():
    def allowed(name):
        return name.split(".")[0] not in (*DOMAINS, "gradio", "timm", "open_clip", "diffusers")

    assert _violations("studio/engine", allowed) == []


def test_ui_uses_gradio_and_the_public_domain_apis_only():
    """studio.ui may import gradio (deliberately, and only it); models come through vision/vlm/diffusion."""
    model_libraries = {"timm", "open_clip", "diffusers", "transformers", "accelerate"}

    def allowed(name):
        parts = name.split(".")
        private = parts[0] in DOMAINS and any(p.startswith("_") for p in parts[1:])
        return parts[0] not in model_libraries and not private and not name.startswith("studio.cli")

    assert _violations("studio/ui", allowed) == []


def test_only_the_ui_imports_gradio():
    for package in ("studio/core", "studio/images", "studio/engine", "studio/world", "studio/cli", *DOMAINS):
        if (ROOT / package).is_dir():
            assert _violations(package, lambda name: name.split(".")[0] != "gradio") == [], package


@pytest.mark.parametrize(
    "folder, rule, planted",
    [
        ("studio/core", test_core_imports_only_torch_and_safetensors, "import timm\n"),
        ("studio/images", test_images_imports_only_pil_numpy_and_torch, "import vision\n"),
        ("studio/images", test_images_imports_only_pil_numpy_and_torch, "from studio.core import inject\n"),
    ],
)
def test_the_checker_sees_a_violation(folder, rule, planted, tmp_path, monkeypatch):
    """Guard against a rule test that cannot fail: a planted bad import is reported."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "bad.py").write_text(planted + "from .ok import x\n")
    with pytest.raises(AssertionError):
        rule()
