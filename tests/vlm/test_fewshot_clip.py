"""FewShotCLIP on a tiny random open_clip model: method equivalences, training scope, caching, saving, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from studio.core import method_names
from studio.world import PRETRAIN_SHAPES, shape_classification
from tests.vlm.tiny import tiny_clip
from vlm.base import step_threads, train_epochs
from vlm.classifier import FewShotCLIP
from vlm.coop import CoOpHead
from vlm.selection import best_of, score
from vlm.text import encode_text_embeddings, token_embeddings

pytestmark = pytest.mark.usefixtures("one_thread")
CLASSES = ["red", "green", "blue"]
FAST = {  # keep training short; the defaults are exercised by the benchmark
    "linear_probe": {"max_iter": 30},
    "coop": {"epochs": 3},
    "tip_adapter": {"augment_views": 2},
    "tip_adapter_f": {"augment_views": 2, "epochs": 3, "min_steps": 0},
    "clip_adapter": {"augment_views": 2, "epochs": 3, "min_steps": 0},
    "cocoop": {"epochs": 2, "batch_size": 4, "warmup_epochs": 0},
}


def images(shots: int, seed: int = 0) -> tuple[list[Image.Image], list[str]]:
    rng = np.random.default_rng(seed)
    pictures, labels = [], []
    for _ in range(shots):
        for c, name in enumerate(CLASSES):
            array = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
            array[..., c] += 150
            pictures.append(Image.fromarray(array))
            labels.append(name)
    return pictures, labels


def make(base, method: str, tmp_path=None, **options) -> FewShotCLIP:
    return FewShotCLIP.from_model(
        *base,
        model_id="tiny",
        method=method,
        templates="single",
        cache_dir=False if tmp_path is None else tmp_path / "cache",
        **{**FAST.get(method, {}), **options},
    )


# Accuracy floors on the colour task (30 test images, chance 1/3) at 4 shots: measured 1.0 for the linear probe
# and both Tip-Adapters, 0.63 for CoOp (the tiny random text tower limits what its context can do).
FLOORS = {"linear_probe": 0.9, "tip_adapter": 0.9, "tip_adapter_f": 0.9, "coop": 0.55}
BEATS_ZERO_SHOT = {"coop", "tip_adapter", "tip_adapter_f"}  # they start from zero-shot and add to it


def _accuracy(clf, pictures, labels) -> float:
    return float(np.mean(np.array(clf.predict(pictures)) == np.array(labels)))


@pytest.mark.parametrize("method", sorted(FLOORS))
def test_each_method_learns_the_colour_task(base, method):
    train, labels = images(4)
    test, truth = images(10, seed=1)
    clf = make(base, method).fit(train, labels, CLASSES)
    proba = clf.predict_proba(test)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    assert clf.predict(test) == [CLASSES[i] for i in proba.argmax(1)]
    accuracy = _accuracy(clf, test, truth)
    assert accuracy >= FLOORS[method], f"{method}: {accuracy:.2f} (chance 0.33)"
    if method in BEATS_ZERO_SHOT:
        assert accuracy > _accuracy(make(base, "zero_shot").fit(train, labels, CLASSES), test, truth)


def test_zero_shot_predicts_the_nearest_class_prompt(base):
    model, preprocess, tokenizer = base
    test, _ = images(4, seed=1)
    clf = make(base, "zero_shot").fit(*images(1), CLASSES)
    with torch.no_grad():
        pictures = model.encode_image(torch.stack([preprocess(im) for im in test]), normalize=True)
        prompts = model.encode_text(tokenizer([f"a photo of a {c}." for c in CLASSES]), normalize=True)
    assert clf.predict(test) == [CLASSES[i] for i in (pictures @ prompts.T).argmax(1)]


def test_zero_shot_of_the_reference_clip_is_far_above_chance():
    """The tiny model's zero-shot is chance by construction; the bundled CLIP's is not (7 shapes, chance 0.14)."""
    task = shape_classification(0, 0, 10, seed=7)
    pictures, labels = zip(*task.test, strict=True)
    clf = FewShotCLIP("studio/shapes-clip", method="zero_shot", cache_dir=False).fit(
        [], [], list(PRETRAIN_SHAPES)
    )
    accuracy = _accuracy(clf, list(pictures), [PRETRAIN_SHAPES[i] for i in labels])
    assert accuracy >= 0.7, accuracy  # measured 0.84


def test_tip_adapter_with_alpha_zero_is_zero_shot(base):
    train, labels = images(2)
    test, _ = images(2, seed=1)
    zero = make(base, "zero_shot").fit(train, labels, CLASSES).predict_proba(test)
    tip = make(base, "tip_adapter", alpha=0.0, search=False).fit(train, labels, CLASSES).predict_proba(test)
    np.testing.assert_allclose(tip, zero, atol=1e-6)


def test_coop_init_reproduces_single_template_zero_shot(base):
    train, labels = images(1)
    zero = make(base, "zero_shot").fit(train, labels, CLASSES)
    coop = make(base, "coop", n_ctx=4, ctx_init="a photo of a")
    coop.fit(train, labels, CLASSES)
    untrained = CoOpHead(coop._ctx, coop.config)
    features = torch.randn(5, 32)
    features = features / features.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(untrained(features), zero.head(features), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method, trained", [("coop", "context"), ("tip_adapter_f", "keys")])
def test_only_the_method_tensors_change(base, method, trained):
    model = base[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads_before = [p.requires_grad for p in model.parameters()]
    train, labels = images(4)
    clf = make(base, method, search=False) if method == "tip_adapter_f" else make(base, method)
    clf.fit(train, labels, CLASSES)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in model.parameters()] == grads_before
    assert [name for name, _ in clf.head.named_parameters()] == [trained]
    if method == "coop":
        initial = CoOpHead(clf._ctx, clf.config).context
    else:  # Tip-Adapter's keys are Tip-Adapter-F's starting point
        initial = make(base, "tip_adapter", search=False).fit(train, labels, CLASSES).head.keys
    assert not torch.equal(getattr(clf.head, trained), initial)
    assert getattr(clf.head, trained).shape == initial.shape


@pytest.mark.parametrize("method", method_names("vlm", "fewshot"))
def test_save_load_gives_identical_probabilities(base, method, tmp_path):
    train, labels = images(4)
    test, _ = images(2, seed=1)
    clf = make(base, method).fit(train, labels, CLASSES)
    clf.save(tmp_path / "run")
    loaded = FewShotCLIP.load(tmp_path / "run", model=base, cache_dir=False)
    assert loaded.classnames == CLASSES and loaded.config == clf.config
    np.testing.assert_array_equal(loaded.predict_proba(test), clf.predict_proba(test))

    assert json.loads((tmp_path / "run" / "adapter_config.json").read_text())["domain"] == "vlm"


def test_classifiers_saved_before_the_registry_still_load(base, tmp_path):
    # then: no domain recorded, and the configs carried AdapterConfig's modules_to_save and frozen_eval
    train, labels = images(2)
    clf = make(base, "coop").fit(train, labels, CLASSES)
    file = clf.save(tmp_path / "run") / "adapter_config.json"
    saved = json.loads(file.read_text())
    del saved["domain"]
    saved["config"].update(modules_to_save=None, frozen_eval=False)
    file.write_text(json.dumps(saved))
    loaded = FewShotCLIP.load(tmp_path / "run", model=base, cache_dir=False)
    assert loaded.method.name == "coop" and loaded.config == clf.config
    np.testing.assert_array_equal(loaded.predict_proba(train), clf.predict_proba(train))


def test_config_objects_are_accepted_in_place_of_options(base):
    from vlm import CoOpConfig, TipAdapterConfig

    clf = FewShotCLIP.from_model(*base, config=CoOpConfig(n_ctx=2, ctx_init=""), cache_dir=False)
    assert clf.method.name == "coop" and clf.config.n_ctx == 2
    with pytest.raises(ValueError, match="not both"):
        FewShotCLIP.from_model(*base, config=CoOpConfig(), n_ctx=2, cache_dir=False)
    with pytest.raises(
        ValueError, match="config is a TipAdapterConfig, not the config of few-shot method 'coop'"
    ):
        FewShotCLIP.from_model(*base, method="coop", config=TipAdapterConfig(), cache_dir=False)


def test_load_onto_another_base_model_fails(base, tmp_path):
    train, labels = images(2)
    make(base, "tip_adapter").fit(train, labels, CLASSES).save(tmp_path / "run")
    with pytest.raises(ValueError, match="weights .* differ"):
        FewShotCLIP.load(tmp_path / "run", model=tiny_clip(seed=1), cache_dir=False)


def test_cache_hit_skips_image_tower(base, tmp_path, monkeypatch):
    train, _ = images(2)
    clf = make(base, "zero_shot", tmp_path)
    first = clf.features.encode(train)
    calls = []
    monkeypatch.setattr(base[0], "encode_image", lambda *a, **k: calls.append(1) or 1 / 0)
    torch.testing.assert_close(clf.features.encode(train), first, rtol=0, atol=0)
    fresh = make(base, "zero_shot", tmp_path)  # memory empty: served from disk
    assert not fresh.features.memory
    torch.testing.assert_close(fresh.features.encode(train), first, rtol=0, atol=0)
    assert calls == []


def test_augmented_views_are_cached_and_differ(base, tmp_path):
    train, _ = images(1)
    features = make(base, "tip_adapter", tmp_path).features
    view1 = features.encode(train, view=1, seed=0)
    assert not torch.equal(view1, features.encode(train))
    torch.testing.assert_close(make(base, "tip_adapter", tmp_path).features.encode(train, view=1), view1)


def test_bad_inputs_raise_clear_errors(base, tmp_path):
    train, labels = images(1)
    clf = make(base, "tip_adapter")
    with pytest.raises(RuntimeError, match="fit"):
        clf.predict(train)
    with pytest.raises(ValueError, match="unknown label 'purple'"):
        clf.fit(train, [*labels[:-1], "purple"], CLASSES)
    with pytest.raises(ValueError, match=r"\['blue'\] have no images"):
        clf.fit(train[:2], labels[:2], CLASSES)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match="notes.png is not a readable image"):
        clf.fit([*train[:-1], not_an_image], labels, CLASSES)
    with pytest.raises(
        ValueError,
        match="unknown method 'prompt_magic'.*known methods: clip_adapter, cocoop, coop, linear_probe",
    ):
        make(base, "prompt_magic")
    with pytest.raises(ValueError, match=r"unknown CoOpConfig fields \['n_ctxx'\]; known fields"):
        make(base, "coop", n_ctxx=4)


def test_paths_and_index_labels(base, tmp_path):
    train, labels = images(2)
    paths = []
    for i, picture in enumerate(train):
        paths.append(tmp_path / f"{i}.png")
        picture.save(paths[-1])
    index_labels = [CLASSES.index(name) for name in labels]
    by_path = make(base, "tip_adapter").fit(paths, index_labels, CLASSES).predict_proba(paths)
    by_image = make(base, "tip_adapter").fit(train, labels, CLASSES).predict_proba(train)
    np.testing.assert_allclose(by_path, by_image, atol=1e-6)


@pytest.mark.parametrize(
    "position, template",
    [("end", "a photo of a {}."), ("middle", "a photo {} of a."), ("front", "{} a photo of a.")],
)
def test_coop_class_token_positions_build_the_written_prompt(base, position, template):
    train, labels = images(1)
    clf = make(base, "coop", class_token_position=position, epochs=1).fit(train, labels, CLASSES)
    untrained = CoOpHead(clf._ctx, clf.config)  # context = the embeddings of "a photo of a"
    model, _, tokenizer = base
    with torch.no_grad():
        expected = model.encode_text(tokenizer([template.format(name) for name in CLASSES]), normalize=True)
    torch.testing.assert_close(untrained.text_features(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_ctx, class_specific", [(16, False), (4, True)])
def test_coop_random_init_and_class_specific_context(base, n_ctx, class_specific):
    train, labels = images(2)
    clf = make(base, "coop", n_ctx=n_ctx, ctx_init="", class_specific=class_specific)
    clf.fit(train, labels, CLASSES)
    expected_shape = (len(CLASSES), n_ctx, 32) if class_specific else (n_ctx, 32)
    assert clf.head.context.shape == expected_shape
    initial = CoOpHead(clf._ctx, clf.config).context
    assert 0.01 < initial.std().item() < 0.03  # N(0, 0.02)
    assert not torch.equal(clf.head.context, initial)
    if class_specific:  # every class's context learns on its own
        assert not torch.equal(clf.head.context[0], clf.head.context[1])


def test_truncated_text_encoding_equals_open_clip(base):
    model, _, tokenizer = base
    tokens = tokenizer(["a", "a photo of a red thing", "x " * 20])  # short, medium, cut at the context
    with torch.no_grad():
        ours = encode_text_embeddings(model, token_embeddings(model, tokens), tokens)
        torch.testing.assert_close(ours, model.encode_text(tokens, normalize=True), atol=1e-6, rtol=1e-5)


def test_best_of_matches_scoring_each_candidate(base):
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (30,), generator=generator)
    logits = torch.randn(12, 30, 4, generator=generator)
    logits[7] = logits[3]  # a tie: the first one wins
    scores = [score(candidate, labels) for candidate in logits]
    index, best = best_of(logits, labels)
    assert index == scores.index(max(scores))
    assert best == pytest.approx(max(scores))


def test_tip_adapter_selects_on_the_support_split_only(base):
    train, labels = images(8)
    clf = make(base, "tip_adapter").fit(train, labels, CLASSES)
    hparams = clf.head.hparams
    assert hparams["selected_on_validation"]
    assert hparams["alpha"] in clf.config.alpha_grid and hparams["beta"] in clf.config.beta_grid
    # the same support set gives the same choice whatever images are classified afterwards
    again = make(base, "tip_adapter").fit(train, labels, CLASSES).head.hparams
    assert again == hparams
    one_shot = make(base, "tip_adapter").fit(*images(1), CLASSES).head.hparams  # no split: the defaults
    assert not one_shot["selected_on_validation"]
    assert (one_shot["alpha"], one_shot["beta"]) == (clf.config.alpha, clf.config.beta)


def test_tip_adapter_f_trains_at_least_min_steps(base):
    train, labels = images(4)
    clf = make(base, "tip_adapter_f", search=False, epochs=2, min_steps=7).fit(train, labels, CLASSES)
    assert clf.head.hparams["epochs"] == 7  # 12 images fit in one batch: one step per epoch


def test_saved_config_records_classes_templates_and_base(base, tmp_path):
    train, labels = images(2)
    make(base, "coop", tmp_path, epochs=1).fit(train, labels, CLASSES).save(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert saved["metadata"]["classnames"] == CLASSES and saved["metadata"]["templates"] == [
        "a photo of a {}."
    ]
    assert saved["base_model"] == "tiny" and saved["method"] == "coop" and saved["config"]["epochs"] == 1


def test_saved_config_has_the_adapter_config_schema(base, tiny_vit, tmp_path):
    """Under peft's file names, the same top-level fields as `studio.core.save_adapter` writes."""
    import vision
    from studio.core import inject, save_adapter

    train, labels = images(2)
    make(base, "tip_adapter").fit(train, labels, CLASSES).save(tmp_path / "clf")
    save_adapter(inject(tiny_vit(), vision.SSFConfig()), tmp_path / "ssf")
    clf_keys = json.loads((tmp_path / "clf" / "adapter_config.json").read_text()).keys()
    assert clf_keys == json.loads((tmp_path / "ssf" / "adapter_config.json").read_text()).keys()


def test_a_save_with_the_records_at_the_top_level_still_loads(base, tmp_path):
    train, labels = images(2)
    test, _ = images(2, seed=1)
    clf = make(base, "tip_adapter").fit(train, labels, CLASSES)
    file = clf.save(tmp_path / "run") / "adapter_config.json"
    data = json.loads(file.read_text())
    records = data.pop("metadata")
    file.write_text(json.dumps({**data, **records}))  # the layout before the shared schema
    loaded = FewShotCLIP.load(tmp_path / "run", model=base, cache_dir=False)
    assert loaded.classnames == CLASSES
    np.testing.assert_array_equal(loaded.predict_proba(test), clf.predict_proba(test))


def test_disk_cache_is_keyed_by_the_weights(base, tmp_path):
    train, _ = images(1)
    first = make(base, "zero_shot", tmp_path).features.encode(train)
    other = tiny_clip(seed=1)  # same model id, same cache folder, other weights: must not hit
    clf = FewShotCLIP.from_model(*other, model_id="tiny", method="zero_shot", cache_dir=tmp_path / "cache")
    features = clf.features.encode(train)
    expected = torch.nn.functional.normalize(
        other[0].encode_image(torch.stack([other[1](im) for im in train])), dim=-1
    )
    torch.testing.assert_close(features, expected.detach())
    assert not torch.allclose(features, first)


def test_small_cpu_steps_run_on_one_thread_and_restore_the_count():
    assert step_threads(1e6, torch.device("cpu")) == 1
    assert step_threads(1e12, torch.device("cpu")) is None
    assert step_threads(1e6, torch.device("cuda")) is None
    torch.set_num_threads(
        2
    )  # the module runs on one thread: start from another count, or a missing cap passes
    seen = []
    param = torch.nn.Parameter(torch.zeros(3))
    train_epochs(
        [param],
        lambda index, _epoch: seen.append(torch.get_num_threads()) or (param.sum() - index.sum()) ** 2,
        4,
        optimizer=torch.optim.SGD([param], lr=0.1),
        lr_at=lambda _epoch: 0.1,
        epochs=2,
        batch_size=2,
        seed=0,
        threads=1,
    )
    after = torch.get_num_threads()
    torch.set_num_threads(1)
    assert seen == [1, 1, 1, 1] and after == 2
