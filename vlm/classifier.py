"""`FewShotCLIP`: a few-shot classifier on a frozen open_clip model (any method registered for domain "vlm"),
saved as `adapter_config.json` + `adapter_model.safetensors`."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from studio.core import (
    MethodConfig,
    list_methods,
    read_adapter_config,
    read_tensors,
    save_tensors,
    write_adapter_config,
)
from studio.core.io import WEIGHTS_NAME
from studio.engine import check_two_classes
from studio.images import load_image

from .base import ClipContext, Head, Support
from .features import ImageFeatures, ImageLike
from .lookup import method_and_config
from .templates import resolve_templates
from .text import class_text_features

FORMAT_VERSION = 1
# fields that vlm configs inherited from AdapterConfig before they became plain MethodConfigs: classifiers
# saved then still carry them, with no meaning for any few-shot method
LEGACY_FIELDS = ("modules_to_save", "frozen_eval")


class FewShotCLIP:
    """A classifier on top of a frozen open_clip model, fitted from a few labelled images per class.

    Args:
        model_name: an open_clip architecture (`"ViT-B-32"`), `"hf-hub:..."`/`"local-dir:..."`, or a bundled
            model (`"studio/shapes-clip"`); see `vlm.create_clip`.
        pretrained: pretrained tag or local checkpoint; None: random weights for open_clip architectures
            (the bundled model's own weights for `studio/...`).
        method: a registered few-shot method: `"zero_shot"`, `"linear_probe"`, `"coop"`, `"tip_adapter"`,
            `"tip_adapter_f"`, ... (`studio.core.method_names("vlm", "fewshot")`); None: the method of
            `config`, or `"tip_adapter"`.
        templates: `"ensemble"` (open_clip's 80 ImageNet prompts), `"simple"`, `"single"`, or a list of
            strings with one `{}`.
        device: where the model runs; defaults to the CPU.
        cache_dir: disk cache of image features; None: `$STUDIO_CACHE/clip-features` or
            `~/.cache/adaptation-studio/clip-features`; False: memory only.
        seed: seed of the validation split, augmentations, initialisation and batches.
        config: the method's config (e.g. `vlm.CoOpConfig(n_ctx=16)`), instead of `**options`.
        **options: fields of the method's config (e.g. `n_ctx=16` for CoOp, `augment_views=10`).

    Raises:
        ValueError: an unknown method or option, an invalid option value, or a `config` of another method.

    Example:
        >>> clf = FewShotCLIP("studio/shapes-clip", method="tip_adapter")
        >>> clf.fit(images, labels, classnames).predict(test_images)
    """

    def __init__(
        self,
        model_name: str,
        pretrained: bool | str | os.PathLike | None = None,
        method: str | None = None,
        *,
        templates: str | Sequence[str] = "ensemble",
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike | None | bool = None,
        seed: int = 0,
        config: MethodConfig | None = None,
        **options: Any,
    ) -> None:
        from .models import create_clip

        chosen = method_and_config(method, config, options)  # a bad one fails before the model is built
        model, preprocess, tokenizer = create_clip(model_name, pretrained=pretrained, device=device)
        self._setup(model, preprocess, tokenizer, model_name, pretrained, chosen, templates, cache_dir, seed)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable,
        *,
        model_id: str | None = None,
        pretrained: bool | str | None = None,
        method: str | None = None,
        templates: str | Sequence[str] = "ensemble",
        cache_dir: str | os.PathLike | None | bool = None,
        seed: int = 0,
        config: MethodConfig | None = None,
        **options: Any,
    ) -> FewShotCLIP:
        """A classifier on an already built `(model, preprocess, tokenizer)` triple.

        Args:
            model: an open_clip model (frozen; its device is used).
            preprocess: its image transform.
            tokenizer: its tokenizer.
            model_id: base model id recorded when saving; defaults to `model.base_model_id` (set by
                `vlm.create_clip`) or the class name.
            pretrained: pretrained tag recorded when saving; defaults to `model.base_pretrained`.
            method: see `FewShotCLIP`.
            templates: see `FewShotCLIP`.
            cache_dir: see `FewShotCLIP`.
            seed: see `FewShotCLIP`.
            config: see `FewShotCLIP`.
            **options: fields of the method's config.
        """
        clf = cls.__new__(cls)
        model_id = model_id or getattr(model, "base_model_id", None) or type(model).__name__
        pretrained = pretrained if pretrained is not None else getattr(model, "base_pretrained", None)
        chosen = method_and_config(method, config, options)
        clf._setup(model, preprocess, tokenizer, model_id, pretrained, chosen, templates, cache_dir, seed)
        return clf

    def _setup(self, model, preprocess, tokenizer, model_id, pretrained, chosen, templates, cache_dir, seed):
        self.method, self.config = chosen
        self.templates = resolve_templates(templates)
        self.model, self.preprocess, self.tokenizer = model.eval(), preprocess, tokenizer
        self.model_id, self.seed = model_id, seed
        self.pretrained = str(pretrained) if isinstance(pretrained, os.PathLike) else pretrained
        self.features = ImageFeatures(model, preprocess, model_id, cache_dir)
        self.classnames: list[str] | None = None
        self.head: Head | None = None
        self._ctx: ClipContext | None = None
        self._text_cache: dict[tuple, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return next(self.model.parameters()).device

    def _context(self, classnames: list[str], text_weights: torch.Tensor | None = None) -> ClipContext:
        key = (tuple(classnames), tuple(self.templates))
        if text_weights is None:
            if key not in self._text_cache:
                self._text_cache[key] = class_text_features(
                    self.model, self.tokenizer, classnames, self.templates
                )
            text_weights = self._text_cache[key]
        scale = float(self.model.logit_scale.detach().exp().max())
        return ClipContext(
            self.model,
            self.tokenizer,
            list(classnames),
            self.templates,
            text_weights.to(self.device),
            scale,
            self.seed,
        )

    def fit(
        self,
        images: Sequence[ImageLike],
        labels: Sequence[str | int],
        classnames: Sequence[str] | None = None,
    ) -> FewShotCLIP:
        """Fit the method on labelled support images (1–16 or more per class).

        Args:
            images: PIL images or image file paths.
            labels: a class name or class index per image.
            classnames: class names in label order; None: the sorted distinct string labels.

        Returns:
            `self`, fitted.

        Raises:
            ValueError: unknown label, a class without images, images of one class only, lengths that differ,
                or a non-image file.
        """
        classnames = _classnames(labels, classnames)
        index = torch.tensor([_label_index(label, classnames) for label in labels], dtype=torch.long)
        pictures = _load_all(images)
        if len(pictures) != len(index):
            raise ValueError(f"got {len(pictures)} images but {len(index)} labels")
        support = None
        if self.method.spec.needs_support or pictures:
            counts = torch.bincount(index, minlength=len(classnames))
            if self.method.spec.needs_support and int(counts.min()) == 0:
                empty = [name for name, count in zip(classnames, counts.tolist(), strict=True) if count == 0]
                raise ValueError(
                    f"class(es) {empty} have no images; {self.method.name} needs at least one per class"
                )
            if self.method.spec.needs_support:
                check_two_classes(index.tolist(), classnames)
            support = Support(self.features.encode(pictures), index, self._views(pictures))
        ctx = self._context(classnames)
        self.head = self.method.train(ctx, support, self.config).eval()
        self.classnames, self._ctx = classnames, ctx
        return self

    def transfer(self, classnames: Sequence[str]) -> FewShotCLIP:
        """A classifier for other classes with what this one learned: its prompt context or feature adapter,
        restored on the new class names (base-to-new generalisation, as in the CoCoOp paper).

        Args:
            classnames: the classes to classify, fitted on or not.

        Returns:
            A new fitted classifier on the same base model; this one is unchanged.

        Raises:
            RuntimeError: this classifier is not fitted.
            ValueError: the method learns per-class parameters (a linear probe, a cache of support images),
                which say nothing about other classes; or bad class names.
        """
        head = self._require_fitted()
        if not self.method.spec.class_agnostic(self.config):
            able = [m.name for m in list_methods("vlm") if m.spec.class_agnostic(m.config_cls())]
            raise ValueError(
                f"{self.method.name} (as configured) learns per-class parameters, so it cannot classify classes "
                f"it was not fitted on; methods that can: {', '.join(able)}"
            )
        clf = copy.copy(self)
        clf.classnames = _classnames(list(classnames), classnames)
        clf._ctx = self._context(clf.classnames)
        clf.head = self.method.load(clf._ctx, self.config, head.tensors(), dict(head.hparams)).eval()
        return clf

    def _views(self, pictures: list[Image.Image]) -> torch.Tensor | None:
        count = self.method.spec.augmented_views(self.config)
        if count == 0:
            return None
        return torch.stack(
            [self.features.encode(pictures, view=v, seed=self.seed) for v in range(1, count + 1)]
        )

    def _require_fitted(self) -> Head:
        if self.head is None:
            raise RuntimeError(
                "this FewShotCLIP is not fitted: call fit(images, labels, classnames) first (or load)"
            )
        return self.head

    @torch.no_grad()
    def logits(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Class logits `(n, C)` (float32, CPU).

        Args:
            images: PIL images or image file paths.
        """
        head = self._require_fitted()
        features = self.features.encode(_load_all(images)).to(self.device)
        if len(features) == 0:
            return torch.zeros(0, len(self.classnames or []))
        return head(features).float().cpu()

    def predict_proba(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Class probabilities `(n, C)`, rows summing to 1, columns in `classnames` order.

        Args:
            images: PIL images or image file paths.
        """
        return torch.softmax(self.logits(images).double(), dim=-1).numpy()

    def predict(self, images: Sequence[ImageLike]) -> list[str]:
        """The most likely class name of each image.

        Args:
            images: PIL images or image file paths.
        """
        classnames = self.classnames or []
        return [classnames[i] for i in self.logits(images).argmax(-1).tolist()]

    def save(self, path: str | os.PathLike) -> Path:
        """Write `adapter_config.json` + `adapter_model.safetensors` (text classifier and the method's tensors).

        Args:
            path: output folder.

        Returns:
            The output folder.
        """
        head = self._require_fitted()
        path = Path(path)
        tensors = {
            "text_weights": self._ctx.text_weights,
            **{f"head.{k}": v for k, v in head.tensors().items()},
        }
        save_tensors(path / WEIGHTS_NAME, tensors, metadata={"format": "pt"})
        write_adapter_config(
            path,
            self.method.qualified_name,
            self.config.to_dict(),
            self.model_id,
            metadata={
                "base_pretrained": self.pretrained,
                "base_fingerprint": self.features.fingerprint,
                "classnames": self.classnames,
                "templates": self.templates,
                "hyperparameters": head.hparams,
                "seed": self.seed,
            },
        )
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model: tuple[nn.Module, Callable, Callable] | None = None,
        *,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike | None | bool = None,
    ) -> FewShotCLIP:
        """Load a classifier saved by `save`.

        Args:
            path: the saved folder.
            model: a `(model, preprocess, tokenizer)` triple of the same base model; None: rebuilt with
                `vlm.create_clip(recorded model, recorded pretrained)`.
            device: device for a rebuilt model.
            cache_dir: see `FewShotCLIP`.

        Raises:
            ValueError: the base model's weights differ from the ones the classifier was fitted on.
        """
        data = read_adapter_config(path)
        # the classifier's own records sit under "metadata", as in every adapter config (top level in old saves)
        record = data.get("metadata") or data
        if model is None:
            from .models import create_clip

            model = create_clip(data["base_model"], pretrained=record.get("base_pretrained"), device=device)
        clf = cls.from_model(
            *model,
            model_id=data["base_model"],
            pretrained=record.get("base_pretrained"),
            method=data["method"],
            templates=record["templates"],
            cache_dir=cache_dir,
            seed=record.get("seed", 0),
            **{k: v for k, v in data["config"].items() if k not in LEGACY_FIELDS},
        )
        recorded = record.get("base_fingerprint")
        if recorded and recorded != clf.features.fingerprint:
            raise ValueError(
                f"classifier at {path} was fitted on base model {data['base_model']!r} (pretrained="
                f"{record.get('base_pretrained')!r}, weights {recorded[:12]}…), but the given model's weights "
                f"differ ({clf.features.fingerprint[:12]}…); load it onto the same base model "
                "(random weights, pretrained=None, are never the same twice: pass the model itself)"
            )
        weights = read_tensors(Path(path) / WEIGHTS_NAME, "classifier weights file")
        tensors = {name: tensor.to(clf.device) for name, tensor in weights.items()}
        ctx = clf._context(record["classnames"], text_weights=tensors["text_weights"])
        head_tensors = {k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")}
        clf.head = clf.method.load(ctx, clf.config, head_tensors, record.get("hyperparameters", {})).eval()
        clf.classnames, clf._ctx = list(record["classnames"]), ctx
        return clf


def _load_all(images: Sequence[ImageLike] | ImageLike) -> list[Image.Image]:
    if isinstance(images, (Image.Image, str, os.PathLike)):
        images = [images]
    return [load_image(item) for item in images]


def _classnames(labels: Sequence[str | int], classnames: Sequence[str] | None) -> list[str]:
    if classnames is None:
        if not all(isinstance(label, str) for label in labels) or not labels:
            raise ValueError("pass classnames when labels are class indices (or no labels are given)")
        return sorted(set(labels))
    classnames = list(classnames)
    if not classnames or not all(isinstance(name, str) and name for name in classnames):
        raise ValueError(f"classnames must be a non-empty list of non-empty strings, got {classnames!r}")
    if len(set(classnames)) != len(classnames):
        raise ValueError(f"classnames contain duplicates: {classnames!r}")
    return classnames


def _label_index(label: str | int, classnames: list[str]) -> int:
    if isinstance(label, str):
        if label not in classnames:
            raise ValueError(f"unknown label {label!r}; classnames are {classnames}")
        return classnames.index(label)
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < len(classnames):
        return int(label)
    raise ValueError(f"unknown label {label!r}: expected a class name or an index in [0, {len(classnames)})")
