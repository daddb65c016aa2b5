"""torchvision architectures by name, pretrained weights from a local file, and fine-tuning options
(frozen prefixes, the head's own learning rate). CPU only, small inputs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tests.conftest import tiny_config_dict
from transferviz.config import TrainSpec, parse_config
from transferviz.errors import TransferVizError
from transferviz.models import build_model, check_input_size, head_module, load_init_weights
from transferviz.training import TrainData, build_optimizer, train_model

# The smallest input side each architecture takes: AlexNet's pooling needs 63 px; VGG, DenseNet and
# ConvNeXt reduce by 32 and need 32 px; the others work at 16 px, tested at 32.
ARCHS = {"resnet18": 32, "resnet50": 32, "vgg16_bn": 32, "mobilenet_v3_large": 32, "mobilenet_v3_small": 32,
         "efficientnet_b0": 32, "densenet121": 32, "convnext_tiny": 32, "alexnet": 64}
HEADS = {"resnet18": "fc", "resnet50": "fc", "vgg16_bn": "classifier.6", "mobilenet_v3_large": "classifier.3",
         "mobilenet_v3_small": "classifier.3", "efficientnet_b0": "classifier.1", "densenet121": "classifier",
         "convnext_tiny": "classifier.2", "alexnet": "classifier.6"}


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("name", list(ARCHS))
def test_builds_with_its_head_sized_to_the_classes(name):
    torch.manual_seed(0)
    model = build_model(f"torchvision:{name}", 5, ARCHS[name]).eval()
    head = head_module(model)
    assert head == HEADS[name]
    assert model.get_submodule(head).out_features == 5
    check_input_size(model, name, ARCHS[name])
    with torch.no_grad():
        assert model(torch.randn(2, 3, ARCHS[name], ARCHS[name])).shape == (2, 5)


def test_alexnet_names_are_one_architecture_and_too_small_inputs_say_so():
    a, b = build_model("alexnet", 5), build_model("torchvision:alexnet", 5)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    with pytest.raises(TransferVizError) as err:
        check_input_size(b, "torchvision:alexnet", 32)
    assert "cannot take 32 px inputs" in one_line(err) and "raise model.input_size" in str(err.value)
    with pytest.raises(TransferVizError) as err:  # MaxViT's builder checks the size against its partitions
        build_model("torchvision:maxvit_t", 5, 32)
    assert "'torchvision:maxvit_t' cannot be built for 32 px inputs (Input size (8, 8)" in one_line(err)
    with pytest.raises(TransferVizError, match="divisible by its patch size 16 .got 40."):
        build_model("torchvision:vit_b_16", 5, 40)


def test_unknown_names_list_what_is_allowed():
    with pytest.raises(TransferVizError) as err:
        build_model("torchvision:resnet19", 5)
    msg = one_line(err)
    assert msg.startswith("torchvision has no classification model 'resnet19'; did you mean resnet18")
    assert "torchvision.models.list_models(module=torchvision.models)" in msg and "convnext_tiny" in msg
    with pytest.raises(TransferVizError, match="did you mean 'torchvision:resnet18'"):
        build_model("resnet18", 5)
    with pytest.raises(TransferVizError) as err:  # detection models are not classification models
        build_model("torchvision:fasterrcnn_resnet50_fpn", 5)
    one_line(err)
    with pytest.raises(TransferVizError) as err:
        parse_config(tiny_config_dict(model={"arch": "torchvision:resnet19"}), "c.yaml")
    assert one_line(err).startswith("c.yaml: 'model.arch': torchvision has no classification model 'resnet19'")
    assert parse_config(tiny_config_dict(model={"arch": "torchvision:resnet18"}), "c.yaml").model.arch \
        == "torchvision:resnet18"


def _imagenet_file(tmp_path, suffix=".pt", edit=None):
    """A 1000-class mobilenet_v3_small state dict saved as an ImageNet file would be."""
    torch.manual_seed(1)
    state = build_model("torchvision:mobilenet_v3_small", 1000).state_dict()
    if edit:
        edit(state)
    path = tmp_path / f"imagenet{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return state, path


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_init_weights_round_trip_leaves_the_head_fresh(tmp_path, suffix):
    state, path = _imagenet_file(tmp_path, suffix)
    torch.manual_seed(2)
    model = build_model("torchvision:mobilenet_v3_small", 5)
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("classifier.3.")}
    line = load_init_weights(model, path)
    n = len(state) - 2
    assert line == (f"init_weights: loaded {n} tensors from {path.name}; head classifier.3.weight, "
                    "classifier.3.bias left freshly initialised (1000 -> 5 classes)")
    for key, value in model.state_dict().items():
        if key.startswith("classifier.3."):
            assert torch.equal(value, fresh_head[key])
        else:
            assert torch.equal(value, state[key]), key


def test_init_weights_mismatches_name_the_tensor(tmp_path):
    model = build_model("torchvision:mobilenet_v3_small", 5)

    def shrink(state):
        state["features.1.block.0.0.weight"] = state["features.1.block.0.0.weight"][:8]

    _, path = _imagenet_file(tmp_path, edit=shrink)
    with pytest.raises(TransferVizError) as err:
        load_init_weights(model, path)
    assert "tensor 'features.1.block.0.0.weight' has shape (8, 1, 3, 3) in the checkpoint" in one_line(err)
    _, path = _imagenet_file(tmp_path, edit=lambda s: s.pop("features.0.1.running_mean"))
    with pytest.raises(TransferVizError) as err:
        load_init_weights(model, path)
    assert "lacks tensor 'features.0.1.running_mean'" in one_line(err)
    _, path = _imagenet_file(tmp_path, edit=lambda s: s.__setitem__("extra.weight", torch.zeros(2)))
    with pytest.raises(TransferVizError) as err:
        load_init_weights(model, path)
    assert "has tensor 'extra.weight' that the architecture lacks" in one_line(err)
    _, path = _imagenet_file(tmp_path, edit=lambda s: s.__setitem__("classifier.3.weight", torch.zeros(1000, 7)))
    with pytest.raises(TransferVizError) as err:  # the head may differ in its class count only
        load_init_weights(model, path)
    assert "head tensor 'classifier.3.weight' has shape (1000, 7)" in one_line(err)
    with pytest.raises(TransferVizError) as err:
        load_init_weights(model, tmp_path / "absent.pt")
    assert "fix model.init_weights" in one_line(err)


def _tiny_data(n=8, size=32, classes=5) -> TrainData:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, size, size, generator=g), torch.arange(n) % classes
    return TrainData((x, y), (x[:2], y[:2]), (x, y), (x[:2], y[:2]))


def test_freeze_keeps_parameters_and_batchnorm_statistics_bitwise():
    torch.manual_seed(0)
    model = build_model("torchvision:mobilenet_v3_small", 5)
    spec = TrainSpec(epochs=1, batch_size=8, lr=0.01, freeze=("features.0", "features.1.block.0"))
    out = train_model(model, "target", _tiny_data(), spec, torch.device("cpu"), seed=0, keep_states=False)
    before, after = model.state_dict(), out.model.state_dict()
    frozen = [k for k in before if k.startswith(("features.0.", "features.1.block.0."))]
    assert "features.0.1.running_mean" in frozen and "features.1.block.0.1.running_var" in frozen
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    trained = [n for n, _ in model.named_parameters() if n.split(".")[0] in ("features", "classifier")
               and not n.startswith(("features.0.", "features.1.block.0."))]
    changed = [n for n in trained if not torch.equal(before[n], after[n])]
    assert set(changed) == set(trained)
    assert all(p.requires_grad for p in out.model.parameters())  # the analysis needs gradients everywhere
    assert not torch.equal(before["features.1.block.1.fc1.weight"], after["features.1.block.1.fc1.weight"])


def test_a_last_batch_of_one_joins_the_one_before():
    """resnet18 at 32 px ends in 1x1 maps: a BatchNorm cannot train on a batch of one instance there."""
    model = build_model("torchvision:resnet18", 5, 32)
    seen: list[int] = []
    train_model(model, "target", _tiny_data(n=9), TrainSpec(epochs=1, batch_size=8), torch.device("cpu"), seed=0,
                keep_states=False, on_step=seen.append)
    assert seen == [9]


def test_head_lr_gives_the_head_its_own_group_and_bad_prefixes_are_one_line():
    model = build_model("torchvision:resnet18", 5)
    opt = build_optimizer(model, TrainSpec(lr=1e-3, head_lr=1e-2, optimizer="sgd", freeze=("conv1", "bn1")))
    assert [(g["name"], g["lr"]) for g in opt.param_groups] == [("body", 1e-3), ("head", 1e-2)]
    assert [id(p) for p in opt.param_groups[1]["params"]] == [id(model.fc.weight), id(model.fc.bias)]
    body = {id(p) for p in opt.param_groups[0]["params"]}
    assert id(model.conv1.weight) not in body and id(model.layer1[0].conv1.weight) in body
    assert len(body) == len(list(model.parameters())) - 2 - 3  # conv1.weight, bn1.weight and bn1.bias frozen
    opt = build_optimizer(model, TrainSpec(lr=1e-3))
    assert [g["lr"] for g in opt.param_groups] == [1e-3]
    assert len(opt.param_groups[0]["params"]) == len(list(model.parameters()))
    with pytest.raises(TransferVizError) as err:
        build_optimizer(model, TrainSpec(freeze=("layer5",)), "target")
    assert one_line(err) == ("training.target.freeze: 'layer5' matches no parameter of the model; did you mean "
                             "'layer4'? its top-level modules with parameters: conv1, bn1, layer1, layer2, layer3, "
                             "layer4, fc")
    with pytest.raises(TransferVizError, match="'layer1.0.conv' matches no parameter"):  # prefixes are module paths
        build_optimizer(model, TrainSpec(freeze=("layer1.0.conv",)))
    with pytest.raises(TransferVizError) as err:
        build_optimizer(model, TrainSpec(freeze=("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")))
    assert "covers every parameter" in one_line(err)
    with pytest.raises(TransferVizError, match="no nn.Linear"):
        build_optimizer(nn.Sequential(nn.Flatten(), nn.BatchNorm1d(3)), TrainSpec(head_lr=0.1))


def test_models_stage_loads_init_weights_and_fine_tunes_as_configured(tmp_path):
    """The data and models stages of a build on a torchvision model: the summary says what happened."""
    from transferviz.build import STAGES
    from transferviz.build.framework import BuildOptions, run_build

    state, path = _imagenet_file(tmp_path)
    cfg = parse_config(tiny_config_dict(
        source={"kind": "synthetic_digits", "n_per_class": 6},
        target={"kind": "sklearn_digits", "max_per_class": 6},
        model={"arch": "torchvision:mobilenet_v3_small", "input_size": 32, "init_weights": str(path)},
        training={"source": {"epochs": 1, "batch_size": 32},
                  "target": {"epochs": 1, "batch_size": 32, "freeze": ["features.0"], "head_lr": 0.01},
                  "keep_epoch_checkpoints": False}), "c.yaml")
    stages = [s for s in STAGES if s.name in ("data", "models")]
    report = run_build(cfg, stages, BuildOptions(tmp_path / "cache", torch.device("cpu"), progress=False),
                       log=lambda m: None)
    summary = report.stages[1]["summary"]
    assert (f"init_weights: loaded {len(state) - 2} tensors from imagenet.pt; head classifier.3.weight, "
            "classifier.3.bias left freshly initialised (1000 -> 10 classes)") in summary
    assert "target: froze features.0 (" in summary and "head classifier.3 at lr 0.01 (others 0.001)" in summary
    src = load_file(str(report.build_dir / "models/source.safetensors"))
    tgt = load_file(str(report.build_dir / "models/target.safetensors"))
    assert all(torch.equal(src[k], tgt[k]) for k in src if k.startswith("features.0."))
    assert not torch.equal(src["classifier.3.weight"], tgt["classifier.3.weight"])
    assert not torch.equal(src["features.1.block.0.0.weight"], state["features.1.block.0.0.weight"])
