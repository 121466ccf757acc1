"""Configs validate and document themselves; the registry names what it knows."""

import dataclasses
import json

import pytest

import vision
from studio.core import (
    MethodConfig,
    get_method,
    inject,
    list_methods,
    load_adapter,
    method_configs,
    register_method,
    save_adapter,
)
from tests.conftest import make_tiny_vit


def test_unknown_method_lists_known_ones():
    with pytest.raises(KeyError) as err:
        get_method("prefix_tuning")
    for name in ("vpt", "adaptformer", "ssf", "lora", "bitfit", "linear_probe", "full"):
        assert name in str(err.value)
    assert set(method_configs("vision")) <= {m.name for m in list_methods("vision", "finetune")}


@pytest.mark.parametrize("config_cls", list(method_configs("vision").values()))
def test_every_field_has_help(config_cls):
    fields = dataclasses.fields(config_cls)
    assert fields, config_cls
    for field in fields:
        assert len(config_cls.help()[field.name]) > 10, (config_cls.__name__, field.name)


@pytest.mark.parametrize(
    ("make", "match"),  # each error names the field and the offending value
    [
        (lambda: vision.VPTConfig(num_tokens=0), r"num_tokens\b.*\b0\b"),
        (lambda: vision.VPTConfig(dropout=1.5), r"dropout\b.*1\.5"),
        (lambda: vision.AdaptFormerConfig(bottleneck=0), r"bottleneck\b.*\b0\b"),
        (lambda: vision.LoRAConfig(r=0), r"^r\b.*\b0\b"),
        (lambda: vision.LoRAConfig(qkv_parts="qx"), r"qkv_parts\b.*'qx'"),
        (lambda: vision.SSFConfig(init_std=-1.0), r"init_std\b.*-1\.0"),
        (lambda: vision.SSFConfig(modules_to_save="head"), r"modules_to_save\b.*'head'"),
    ],
)
def test_invalid_values_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_from_dict_roundtrip_and_unknown_fields():
    config = vision.VPTConfig(num_tokens=5, deep=False)
    assert vision.VPTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="num_tokens"):
        vision.VPTConfig.from_dict({"num_token": 5})


def test_targets_that_match_nothing_name_the_modules(tiny_vit):
    with pytest.raises(ValueError, match="blocks"):
        inject(tiny_vit(), vision.LoRAConfig(target_modules=["query"]))


def test_adapters_do_not_stack(tiny_vit):
    model = inject(tiny_vit(), vision.SSFConfig())
    with pytest.raises(ValueError, match="already carries"):
        inject(model, vision.LoRAConfig())


def test_non_vit_models_get_a_clear_error():
    model = vision.create_model("resnet18", num_classes=2)
    with pytest.raises(ValueError, match="vision transformer"):
        inject(model, vision.AdaptFormerConfig())


def test_one_name_in_two_domains_needs_the_domain(scratch_registry):

    @dataclasses.dataclass
    class OtherLinearProbe(MethodConfig):
        method = "linear_probe"

    register_method(OtherLinearProbe, domain="elsewhere", task="fit")
    with pytest.raises(
        KeyError, match=r"several domains \(elsewhere, vision(, vlm)?\).*'elsewhere/linear_probe'"
    ):
        get_method("linear_probe")
    assert get_method("linear_probe", "vision").config_cls is vision.LinearProbeConfig
    assert get_method("elsewhere/linear_probe").config_cls is OtherLinearProbe
    with pytest.raises(TypeError, match="injects no adapter layers"):
        inject(make_tiny_vit(), OtherLinearProbe())
    with pytest.raises(ValueError, match="already registered by OtherLinearProbe"):
        impostor = dataclasses.make_dataclass("Impostor", [], bases=(MethodConfig,))
        impostor.method = "linear_probe"
        register_method(impostor, domain="elsewhere", task="fit")


def test_adapter_files_record_the_domain_and_older_files_still_load(tmp_path):
    model = inject(make_tiny_vit(), vision.LinearProbeConfig())
    save_adapter(model, tmp_path / "probe")
    config = json.loads((tmp_path / "probe" / "adapter_config.json").read_text())
    assert (config["domain"], config["method"]) == ("vision", "linear_probe")
    del config["domain"]  # as written before the domain was recorded
    (tmp_path / "probe" / "adapter_config.json").write_text(json.dumps(config))
    load_adapter(make_tiny_vit(), tmp_path / "probe")


def test_configs_list_the_options_a_user_sets():
    names = [f.name for f in vision.SSFConfig.options()]
    assert "modules_to_save" not in names  # set from Python only
    assert names == ["frozen_eval", "target_modules", "exclude_modules", "init_std"]
