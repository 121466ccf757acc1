"""CLIP-Adapter, CoCoOp and base-to-new transfer on a tiny random open_clip model: equivalences with the
methods they extend, what they train, and classifying classes a head was not fitted on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core import list_methods
from tests.vlm.test_fewshot_clip import CLASSES, images, make
from vlm import CoOpConfig
from vlm.clip_adapter import ClipAdapterHead
from vlm.cocoop import CoCoOpHead
from vlm.coop import CoOpHead

pytestmark = pytest.mark.usefixtures("one_thread")
TRANSFERABLE = [m.name for m in list_methods("vlm", "fewshot") if m.spec.class_agnostic(m.config_cls())]


def test_clip_adapter_with_ratio_zero_is_zero_shot(base):
    train, labels = images(2)
    test, _ = images(2, seed=1)
    zero = make(base, "zero_shot").fit(train, labels, CLASSES).predict_proba(test)
    adapter = make(base, "clip_adapter", ratio=0.0, search=False).fit(train, labels, CLASSES)
    np.testing.assert_allclose(adapter.predict_proba(test), zero, atol=1e-6)
    assert any(
        w.abs().sum() > 0 for w in adapter.head.adapter.parameters()
    )  # trained, yet ignored at ratio 0


def test_cocoop_is_coop_plus_an_image_conditioned_shift(base):
    train, labels = images(2)
    clf = make(base, "cocoop", epochs=2).fit(train, labels, CLASSES)
    features = clf.features.encode(images(2, seed=1)[0])
    coop = CoOpHead(clf._ctx, CoOpConfig(n_ctx=4), init=clf.head.context)
    with torch.no_grad():
        assert not torch.allclose(clf.head(features), coop(features), atol=1e-4)  # the meta-net matters
        last = clf.head.meta_net[-1]
        last.weight.zero_(), last.bias.zero_()  # no shift: CoOp's prompt with the same context
        torch.testing.assert_close(clf.head(features), coop(features), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method, trained", [("cocoop", "context"), ("clip_adapter", "adapter.0.weight")])
def test_only_the_method_parameters_train(base, method, trained):
    model = base[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads_before = [p.requires_grad for p in model.parameters()]
    clf = make(base, method).fit(*images(4), CLASSES)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [p.requires_grad for p in model.parameters()] == grads_before
    assert not any(p.requires_grad for p in clf.head.parameters())
    if method == "cocoop":
        initial = CoCoOpHead(clf._ctx, clf.config)
    else:
        initial = ClipAdapterHead(clf._ctx, clf.config.reduction, clf.head.ratio)
    for name, value in initial.named_parameters():  # seeded: the same start as the fit's
        assert not torch.equal(value, clf.head.get_parameter(name)), name
    assert trained in dict(initial.named_parameters())


@pytest.mark.parametrize("method", TRANSFERABLE)
def test_transfer_to_fewer_classes_keeps_their_logits(base, method):
    train, labels = images(2)
    test, _ = images(2, seed=1)
    clf = make(base, method).fit(train, labels, CLASSES)
    moved = clf.transfer(CLASSES[:0:-1])  # blue, green: a subset, in another order
    torch.testing.assert_close(moved.logits(test), clf.logits(test)[:, [2, 1]], atol=1e-5, rtol=1e-5)
    assert moved.classnames == ["blue", "green"] and clf.classnames == CLASSES  # the original is untouched


@pytest.mark.parametrize(
    "method, options", [("linear_probe", {}), ("tip_adapter", {}), ("coop", {"class_specific": True})]
)
def test_methods_with_per_class_parameters_do_not_transfer(base, method, options):
    clf = make(base, method, **options).fit(*images(2), CLASSES)
    with pytest.raises(ValueError, match=f"{method} .*learns per-class parameters.*methods that can: "):
        clf.transfer(["red", "violet"])


def test_the_methods_that_transfer():
    assert set(TRANSFERABLE) == {"zero_shot", "coop", "cocoop", "clip_adapter"}
