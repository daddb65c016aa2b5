"""Config validation: every bad input is one line naming the file, the key and what is allowed."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, tiny_config_dict
from transferviz.config import load_config, parse_config
from transferviz.errors import TransferVizError


@pytest.mark.parametrize("name", ["digits", "office31", "svhn_mnist"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.name == name
    assert cfg.model_config["frozen"]


def test_bare_name_resolves_to_configs_folder():
    assert load_config("digits").name == "digits"


@pytest.mark.parametrize("patch, expected", [
    ({"trainng": {}}, "unknown key 'trainng' (allowed here: name, seed, source, target"),
    ({"source": {"kind": "synthetic_digits", "colour": 1}},
     "unknown key 'source.colour' (allowed here: max_per_class, kind, name, n_per_class, grayscale, style)"),
    ({"source": {"kind": "cifar"}}, "'source.kind' is 'cifar'; allowed: synthetic_digits, sklearn_digits"),
    ({"source": {"n_per_class": 3}}, "'source' needs a 'kind'"),
    ({"training": {"source": {"lr": -1}}}, "'training.source.lr': Input should be greater than 0 (got -1)"),
    ({"training": {"source": {"optimizer": "rmsprop"}}},
     "'training.source.optimizer': Input should be 'adam' or 'sgd'"),
    ({"model": {"std": [0, 1, 1]}}, "'model.std': every std must be > 0"),
    ({"name": "has space"}, "'name': String should match pattern"),
    ({"val_fraction": 1.5}, "'val_fraction': Input should be less than 1"),
    ({"checkpoints": {"source": "a.pt", "target": "b.pt"}}, "give either 'training'"),
    ({"model": {"arch": "resnet18"}}, "'model.arch': model arch 'resnet18' is not 'small_alexnet', 'alexnet', "
     "'torchvision:<name>' or 'package.module:factory'; did you mean 'torchvision:resnet18'?"),
    ({"model": {"arch": "torchvision:resnet19"}},
     "'model.arch': torchvision has no classification model 'resnet19'; did you mean resnet18"),
    ({"training": {"target": {"freeze": ["layer1", ""]}}},
     "'training.target.freeze': '' is not a module path prefix such as 'layer1' or 'features.0'"),
    ({"training": {"target": {"freeze": "layer1"}}}, "'training.target.freeze': Input should be a valid tuple"),
    ({"training": {"target": {"head_lr": 0}}}, "'training.target.head_lr': Input should be greater than 0 (got 0)"),
    ({"training": {"target": {"frezee": ["conv1"]}}}, "unknown key 'training.target.frezee' (allowed here: epochs, "
     "lr, batch_size, optimizer, momentum, weight_decay, freeze, head_lr)"),
])
def test_bad_values_are_one_line_errors(patch, expected):
    with pytest.raises(TransferVizError) as err:
        parse_config(tiny_config_dict(**patch), "configs/x.yaml")
    msg = str(err.value)
    assert msg.startswith("configs/x.yaml: ")
    assert expected in msg
    assert "\n" not in msg


def test_missing_key_and_non_mapping(tmp_path):
    d = tiny_config_dict()
    del d["target"]
    with pytest.raises(TransferVizError, match="missing required key 'target'"):
        parse_config(d, "f.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(TransferVizError, match="must hold a mapping"):
        load_config(p)


def test_invalid_yaml_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nsource: [unclosed\n")
    with pytest.raises(TransferVizError, match=r"bad.yaml: line \d+ is not valid YAML"):
        load_config(p)


def test_missing_file():
    with pytest.raises(TransferVizError, match="does not exist"):
        load_config("no/such/config.yaml")


def test_relative_paths_resolve_against_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "c.yaml"
    p.write_text("name: x\nsource: {kind: image_folder, root: ../data, domain: amazon}\n"
                 "target: {kind: image_folder, root: ~/office, domain: webcam}\n")
    cfg = load_config(p)
    assert cfg.source.root == (tmp_path / "data").resolve()
    assert not str(cfg.target.root).startswith("~")


def test_frozen():
    cfg = parse_config(tiny_config_dict(), "f.yaml")
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]


def test_fine_tuning_options_and_torchvision_arch():
    cfg = parse_config(tiny_config_dict(model={"arch": "torchvision:efficientnet_b0", "input_size": 32},
                                        training={"target": {"freeze": ["features.0", "features.1"],
                                                             "head_lr": 0.01}}), "f.yaml")
    assert cfg.model.arch == "torchvision:efficientnet_b0"
    assert cfg.training is not None
    assert cfg.training.target.freeze == ("features.0", "features.1") and cfg.training.target.head_lr == 0.01
    assert cfg.training.source.freeze == () and cfg.training.source.head_lr is None  # head_lr defaults to lr
