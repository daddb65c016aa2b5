"""The bad-input battery (issue 15, items 2, 3 and 9): every input a careless or hostile user can get wrong,
sent through the real CLI in-process.

Each case asserts exit code 2, one ``error:`` line (the last line of stderr, no traceback, no torch advice)
naming the problem, and that the run's previously published cache is byte-identical afterwards: every case
builds run ``tiny`` into one cache root that holds a published copy of the tiny cache. Almost every case
fails in the pre-flight checks, before the data stage; the few that can only fail later (a data layout,
a full disk) fail within the data stage.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from tests.conftest import tiny_config_dict
from tests.reliability.lifecycle_helpers import fingerprint
from transferviz.cli import main
from transferviz.models import SmallAlexNet

RUN = "tiny"


# --- the published cache every case must leave alone ------------------------------------------

def _builds(root: Path) -> set[str]:
    return {p.name for p in (root / ".builds").iterdir() if p.name.startswith(f"{RUN}-")}


@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_cache) -> Path:
    """A cache root holding a published copy of the tiny cache under run 'tiny' (as a build publishes it)."""
    root = tmp_path_factory.mktemp("published")
    build = Path(tiny_cache.root).resolve()
    shutil.copytree(build, root / ".builds" / build.name, symlinks=True)
    os.symlink(f".builds/{build.name}", root / RUN)
    return root


# --- inputs the cases are made of ---------------------------------------------------------------

def _png(path: Path, size: tuple[int, int] = (12, 12), colour: tuple[int, int, int] = (200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width x height`` pixels but that holds no image data: opening it reads
    the size, decoding it fails. Loading it as 'too large' proves the size was checked before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Image folders (a good pair of domains and many bad ones), checkpoints, history CSVs and factories."""
    d = tmp_path_factory.mktemp("inputs")
    data = d / "data"
    for domain in ("a", "b"):
        for c, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
            for i in range(3):
                _png(data / domain / "images" / c / f"{i}.png", colour=colour)
    for i in range(3):  # classes that do not match domain a's
        _png(data / "cow" / "images" / "cat" / f"{i}.png")
        _png(data / "cow" / "images" / "cow" / f"{i}.png")
    (data / "empty" / "images").mkdir(parents=True)
    (data / "nofolder").mkdir()
    (data / "nofolder" / "images").write_text("a file where the class folders should be\n")
    for c in ("cat", "dog"):
        for i in range(2):
            (data / "corrupt" / "images" / c).mkdir(parents=True, exist_ok=True)
            (data / "corrupt" / "images" / c / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
            (data / "zero" / "images" / c).mkdir(parents=True, exist_ok=True)
            (data / "zero" / "images" / c / f"{i}.jpg").write_bytes(b"")
            _png_header(data / "huge" / "images" / c / f"{i}.png", 8000, 6000)  # 48 MP
            _png_header(data / "bomb" / "images" / c / f"{i}.png", 20000, 20000)  # 400 MP: Pillow's own bomb
            _png(data / "loose" / "images" / f"{c}{i}.png")
    (data / "a_file").write_text("not a folder\n")

    ck = d / "ck"
    ck.mkdir()
    torch.manual_seed(0)
    good = SmallAlexNet(num_classes=2, input_size=28).state_dict()
    torch.save(good, ck / "good.pt")
    (ck / "zero.pt").write_bytes(b"")
    whole = (ck / "good.pt").read_bytes()
    (ck / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    (ck / "evil.pt").write_bytes(_evil_pickle())
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in good.items()}, str(ck / "good.safetensors"))
    st = (ck / "good.safetensors").read_bytes()
    (ck / "truncated.safetensors").write_bytes(st[: len(st) // 2])
    (ck / "text.safetensors").write_text("these are not tensors\n")
    torch.save({k: v.tolist() for k, v in good.items()}, ck / "lists.pt")
    other = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 26 * 26, 2))
    torch.save(other.state_dict(), ck / "other_arch.pt")
    wide = SmallAlexNet(num_classes=2, input_size=28, widths=(8, 32, 32, 32, 32)).state_dict()
    torch.save(wide, ck / "wrong_shape.pt")
    torch.save(SmallAlexNet(num_classes=2, input_size=28), ck / "module.pt")
    torch.save([1, 2, 3], ck / "a_list.pt")
    (ck / "folder.pt").mkdir()

    hist = d / "hist"
    hist.mkdir()
    head = "epoch,model,source_train,target_train,val\n"
    (hist / "good.csv").write_text(head + "1,source,0.9,0.5,0.8\n1,target,0.6,0.9,0.8\n")
    (hist / "non_numeric.csv").write_text(head + "1,source,0.9,0.5,high\n1,target,0.6,0.9,0.8\n")
    (hist / "source_only.csv").write_text(head + "1,source,0.9,0.5,0.8\n2,source,0.9,0.6,0.85\n")
    (hist / "empty.csv").write_bytes(b"")
    (hist / "header_only.csv").write_text(head)
    (hist / "missing_col.csv").write_text("epoch,model,val\n1,source,0.8\n1,target,0.8\n")
    (hist / "bad_model.csv").write_text(head + "1,source,0.9,0.5,0.8\n1,teacher,0.6,0.9,0.8\n")
    (hist / "bad_epoch.csv").write_text(head + "one,source,0.9,0.5,0.8\n1,target,0.6,0.9,0.8\n")
    (hist / "binary.csv").write_bytes(b"\x00\xff\xfe\x89PNG\x00\x00\x01")
    (hist / "out_of_range.csv").write_text(head + "1,source,0.9,0.5,80\n1,target,0.6,0.9,0.8\n")

    fac = d / "factories"
    fac.mkdir()
    (fac / "tvz_fac_syntax.py").write_text("def make(num_classes:\n    pass\n")
    (fac / "tvz_fac_import_fails.py").write_text("raise RuntimeError('this module fails when imported')\n")
    (fac / "tvz_fac_missing_dep.py").write_text("import tvz_no_such_dependency\n")
    (fac / "tvz_fac_ok.py").write_text(
        "from torch import nn\n"
        "make_constant = 42\n"
        "def make_raises(num_classes):\n    raise ValueError('the factory is broken')\n"
        "def make_no_num_classes():\n    return nn.Linear(2, 2)\n"
        "def make_not_module(num_classes):\n    return 'a string'\n")
    return d


def _evil_pickle() -> bytes:
    """A pickle whose loading would run ``os.system`` (it never may: weights_only refuses it)."""
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("echo pwned > /tmp/tvz-pwned",))

    return pickle.dumps({"features.0.weight": Evil()})


# --- the cases ---------------------------------------------------------------------------------------

Setup = Callable[[Path, Path], tuple[Any, list[str]]]  # (inputs, case dir) -> (config text/dict, extra argv)


def _cfg(**overrides: Any) -> dict[str, Any]:
    return tiny_config_dict(RUN, **overrides)


def _folders(src: str = "a", tgt: str = "b", **extra: Any) -> Callable[[Path], dict[str, Any]]:
    def make(inp: Path) -> dict[str, Any]:
        cfg = _cfg(source={"kind": "image_folder", "root": str(inp / "data"), "domain": src, **extra},
                   target={"kind": "image_folder", "root": str(inp / "data"), "domain": tgt})
        cfg["featvis"] = {"enabled": False}
        return cfg
    return make


def _checkpoints(source: str = "good.pt", target: str = "good.pt", **more: Any) -> Callable[[Path], dict[str, Any]]:
    def make(inp: Path) -> dict[str, Any]:
        cfg = _folders()(inp)
        del cfg["training"]
        ck: dict[str, Any] = {"source": str(inp / "ck" / source), "target": str(inp / "ck" / target)}
        for k, v in more.items():
            ck[k] = [str(inp / "ck" / p) for p in v] if isinstance(v, list) else str(inp / v)
        cfg["checkpoints"] = ck
        return cfg
    return make


def _nested(cfg: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return cfg


def _set(dotted: str, value: Any) -> Callable[[Path], dict[str, Any]]:
    return lambda inp: _nested(_cfg(), dotted, value)


def _drop(key: str) -> Callable[[Path], dict[str, Any]]:
    def make(inp: Path) -> dict[str, Any]:
        cfg = _cfg()
        del cfg[key]
        return cfg
    return make


def _arch(arch: str) -> Callable[[Path], dict[str, Any]]:
    return lambda inp: _nested(_folders()(inp), "model.arch", arch)


def _mapping_bomb() -> str:
    levels = "abcdefghij"
    lines = ["a: &a {x: 1, y: 1}"]
    for prev, cur in zip(levels, levels[1:]):
        lines.append(f"{cur}: &{cur} {{" + ", ".join(f"k{j}: *{prev}" for j in range(9)) + "}")
    return "\n".join(lines) + "\n"


def _list_bomb() -> str:
    levels = "abcdefghij"
    lines = ["name: tiny", "a: &a [1, 1]"]
    for prev, cur in zip(levels, levels[1:]):
        lines.append(f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(lines) + "\n"


class Raw(bytes):
    """Config file content written as is (not YAML-dumped)."""


class Path_(str):
    """A config path given on the command line as is (relative to the case folder), nothing written."""


# (id, config maker (inputs dir -> dict | Raw | Path_), extra argv, a word the error must contain)
CASES: list[tuple[str, Callable[[Path], Any], list[str], str]] = [
    # config keys and values
    ("unknown-top-key", _set("nmae", "x"), [], "unknown key 'nmae'"),
    ("unknown-nested-key", _set("training.source.epoch", 3), [], "unknown key 'training.source.epoch'"),
    ("unknown-domain-key", _set("source.n_per_clas", 3), [], "unknown key 'source.n_per_clas'"),
    ("unknown-analysis-key", _set("analysis.steps", 3), [], "unknown key 'analysis.steps'"),
    ("seed-not-int", _set("seed", "abc"), [], "'seed'"),
    ("epochs-not-int", _set("training.source.epochs", "ten"), [], "'training.source.epochs'"),
    ("input-size-list", _set("model.input_size", [28]), [], "'model.input_size'"),
    ("featvis-enabled-not-bool", _set("featvis.enabled", "maybe"), [], "'featvis.enabled'"),
    ("optimizer-enum", _set("training.source.optimizer", "rmsprop"), [], "'training.source.optimizer'"),
    ("method-enum", _set("analysis.method", "simpson"), [], "'analysis.method'"),
    ("domain-kind-enum", _set("source.kind", "imagenet"), [], "'source.kind' is 'imagenet'"),
    ("layers-preset-enum", _set("analysis.layers", "most"), [], "'auto', 'all', 'blocks'"),
    ("missing-name", _drop("name"), [], "missing required key 'name'"),
    ("missing-target", _drop("target"), [], "missing required key 'target'"),
    ("missing-kind", _set("source", {"n_per_class": 4}), [], "needs a 'kind'"),
    ("missing-root", _set("source", {"kind": "image_folder", "domain": "a"}), [], "missing required key 'source.root'"),
    ("negative-lr", _set("training.source.lr", -0.1), [], "'training.source.lr'"),
    ("zero-epochs", _set("training.target.epochs", 0), [], "'training.target.epochs'"),
    ("negative-n-steps", _set("analysis.n_steps", -1), [], "'analysis.n_steps'"),
    ("val-fraction-over-one", _set("val_fraction", 1.5), [], "'val_fraction'"),
    ("zero-std", _set("model.std", [0, 0.5, 0.5]), [], "std must be > 0"),
    ("input-size-too-small", _set("model.input_size", 4), [], "'model.input_size'"),
    ("zero-batch-size", _set("training.source.batch_size", 0), [], "'training.source.batch_size'"),
    ("zero-max-pixels", lambda inp: _folders(max_pixels=0)(inp), [], "greater than or equal to 1"),
    ("run-name-path", _set("name", "../evil"), [], "'name'"),
    ("training-and-checkpoints", lambda inp: {**_checkpoints()(inp), "training": {}}, [], "not both"),
    ("layer-does-not-exist", _set("analysis.layers", ["features.99"]), [], "features.99"),
    ("layer-listed-twice", _set("analysis.layers", ["features.0", "features.0"]), [], "listed twice"),
    ("embedding-layer-does-not-exist", _set("analysis.embedding_layer", "fc9"), [], "'fc9' is not a module"),
    ("freeze-matches-nothing", _set("training.target.freeze", ["backbone"]), [], "'backbone' matches no parameter"),
    ("freeze-everything", _set("training.target.freeze", ["features", "classifier"]), [], "covers every parameter"),
    ("arch-unknown-form", _set("model.arch", "resnet"), [], "'package.module:factory'"),
    ("arch-torchvision-typo", _set("model.arch", "torchvision:resnet5"), [], "no classification model 'resnet5'"),
    # the file itself
    ("yaml-syntax", lambda inp: Raw(b"name: tiny\nsource: {kind: [synthetic_digits\n"), [], "is not valid YAML"),
    ("yaml-tab-indent", lambda inp: Raw(b"name: tiny\nsource:\n\tkind: x\n"), [], "is not valid YAML"),
    ("yaml-top-level-list", lambda inp: Raw(b"- name\n- tiny\n"), [], "must hold a mapping"),
    ("yaml-empty-file", lambda inp: Raw(b""), [], "must hold a mapping"),
    ("yaml-python-tag", lambda inp: Raw(b"name: !!python/object/apply:os.system ['echo pwned']\n"), [],
     "is not valid YAML"),
    ("binary-config", lambda inp: Raw(b"name: tiny\n\xff\xfe\x00\x01\x89PNG"), [], "is not UTF-8"),
    ("utf16-config", lambda inp: Raw("name: tiny\n".encode("utf-16")), [], "is not UTF-8"),
    ("huge-config", lambda inp: Raw(b"# " + b"x" * (1 << 20) + b"\n"), [], "more than a config's"),
    ("alias-bomb-mapping", lambda inp: Raw(_mapping_bomb().encode()), [], "aliases expand"),
    ("alias-bomb-list", lambda inp: Raw(_list_bomb().encode()), [], "aliases expand"),
    ("config-missing", lambda inp: Path_("no-such-config.yaml"), [], "does not exist"),
    ("config-is-a-folder", lambda inp: Path_("."), [], "is a folder, not a file"),
    # data layout
    ("data-root-missing", lambda inp: _nested(_folders()(inp), "source.root", str(inp / "nowhere")), [],
     "does not exist"),
    ("data-root-is-a-file", lambda inp: _nested(_folders()(inp), "source.root", str(inp / "data" / "a_file")), [],
     "is a file, not a folder"),
    ("domain-missing", _folders(src="zzz"), [], "no folder"),
    ("domain-empty", _folders(src="empty"), [], "no images under"),
    ("file-where-folder-should-be", _folders(src="nofolder"), [], "no folder"),
    ("images-not-in-class-folders", _folders(src="loose"), [], "put them in one folder per class"),
    ("classes-do-not-match", _folders(tgt="cow"), [], "classes present in one domain only"),
    ("all-images-corrupt", _folders(src="corrupt"), [], "could be read"),
    ("all-images-zero-bytes", _folders(src="zero"), [], "could be read"),
    ("all-images-over-pixel-limit", _folders(src="huge"), [], "max_pixels"),
    ("all-images-decompression-bombs", _folders(src="bomb"), [], "max_pixels"),
    ("svhn-file-missing", _set("source", {"kind": "svhn", "root": "/nonexistent-svhn"}), [], "train_32x32.mat"),
    ("mnist-files-missing", _set("source", {"kind": "mnist", "root": "/nonexistent-mnist"}), [], "MNIST files"),
    # device
    ("device-nonsense", _set("seed", 0), ["--device", "tpu"], "unknown device 'tpu'"),
    ("device-cuda-garbled-index", _set("seed", 0), ["--device", "cuda:x"], "unknown device 'cuda:x'"),
    ("device-negative-index", _set("seed", 0), ["--device", "cuda:-1"], "unknown device 'cuda:-1'"),
    ("device-index-beyond-count", _set("seed", 0), ["--device", f"cuda:{torch.cuda.device_count() + 5}"], "cuda:"),
    # a user's model factory
    ("factory-module-missing", _arch("tvz_no_such_module:make"), [], "cannot import"),
    ("factory-syntax-error", _arch("tvz_fac_syntax:make"), [], "SyntaxError"),
    ("factory-module-raises", _arch("tvz_fac_import_fails:make"), [], "this module fails when imported"),
    ("factory-missing-dependency", _arch("tvz_fac_missing_dep:make"), [], "tvz_no_such_dependency"),
    ("factory-attr-missing", _arch("tvz_fac_ok:nothing"), [], "has no callable 'nothing'"),
    ("factory-not-callable", _arch("tvz_fac_ok:make_constant"), [], "has no callable 'make_constant'"),
    ("factory-raises", _arch("tvz_fac_ok:make_raises"), [], "the factory is broken"),
    ("factory-no-num-classes", _arch("tvz_fac_ok:make_no_num_classes"), [], "num_classes"),
    ("factory-returns-non-module", _arch("tvz_fac_ok:make_not_module"), [], "not nn.Module"),
    # checkpoints
    ("checkpoint-missing", _checkpoints(source="nope.pt"), [], "does not exist"),
    ("checkpoint-is-a-folder", _checkpoints(source="folder.pt"), [], "is a folder"),
    ("checkpoint-zero-bytes", _checkpoints(source="zero.pt"), [], "is empty"),
    ("checkpoint-truncated-pt", _checkpoints(target="truncated.pt"), [], "cannot be loaded"),
    ("checkpoint-malicious-pickle", _checkpoints(source="evil.pt"), [], "cannot be loaded"),
    ("checkpoint-pickled-module", _checkpoints(source="module.pt"), [], "pickles a"),
    ("checkpoint-truncated-safetensors", _checkpoints(source="truncated.safetensors"), [], "as safetensors"),
    ("checkpoint-text-safetensors", _checkpoints(source="text.safetensors"), [], "as safetensors"),
    ("checkpoint-tensors-as-lists", _checkpoints(source="lists.pt"), [], "not a tensor"),
    ("checkpoint-other-architecture", _checkpoints(target="other_arch.pt"), [], "check model.arch"),
    ("checkpoint-wrong-shapes", _checkpoints(source="wrong_shape.pt"), [], "has shape"),
    ("checkpoint-holds-a-list", _checkpoints(source="a_list.pt"), [], "not a state_dict"),
    ("checkpoint-target-epoch-missing", _checkpoints(target_epochs=["nope.pt"]), [], "does not exist"),
    ("checkpoint-target-epoch-truncated", _checkpoints(target_epochs=["truncated.pt"]), [], "cannot be loaded"),
    ("init-weights-truncated", lambda inp: _nested(_folders()(inp), "model.init_weights",
                                                   str(inp / "ck" / "truncated.pt")), [], "cannot be loaded"),
    # history CSV
    ("history-missing", _checkpoints(history="hist/nope.csv"), [], "does not exist"),
    ("history-non-numeric", _checkpoints(history="hist/non_numeric.csv"), [], "'val'"),
    ("history-source-rows-only", _checkpoints(history="hist/source_only.csv"), [], "no rows for the target"),
    ("history-empty-file", _checkpoints(history="hist/empty.csv"), [], "is empty"),
    ("history-header-only", _checkpoints(history="hist/header_only.csv"), [], "no rows"),
    ("history-missing-columns", _checkpoints(history="hist/missing_col.csv"), [], "lacks columns"),
    ("history-bad-model", _checkpoints(history="hist/bad_model.csv"), [], "'teacher'"),
    ("history-epoch-not-int", _checkpoints(history="hist/bad_epoch.csv"), [], "'epoch'"),
    ("history-binary", _checkpoints(history="hist/binary.csv"), [], "history CSV"),
    ("history-accuracy-out-of-range", _checkpoints(history="hist/out_of_range.csv"), [], "between 0 and 1"),
]

DEVICE_NO_CUDA = [("device-cuda-without-cuda", ["--device", "cuda"]),
                  ("device-cuda0-without-cuda", ["--device", "cuda:0"])]


def _write_case(inp: Path, case_dir: Path, make: Callable[[Path], Any]) -> str:
    made = make(inp)
    if isinstance(made, Path_):
        return str(case_dir / made)
    p = case_dir / "config.yaml"
    p.write_bytes(made if isinstance(made, Raw) else yaml.safe_dump(made).encode())
    return str(p)


def _run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


def _assert_one_line_error(rc: int, err: str, word: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err  # one error line, and nothing after it
    assert word in errors[0], errors[0]


@pytest.fixture
def factories_on_path(inputs, monkeypatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(inputs / "factories"))
    yield
    for name in [m for m in sys.modules if m.startswith("tvz_fac_")]:
        del sys.modules[name]


# what only reading the images can find: every other case is refused before the data stage starts
DATA_STAGE = {"domain-empty", "images-not-in-class-folders", "classes-do-not-match", "all-images-corrupt",
              "all-images-zero-bytes", "all-images-over-pixel-limit", "all-images-decompression-bombs"}


@pytest.mark.parametrize("case, make, extra, word", [pytest.param(i, m, e, w, id=i) for i, m, e, w in CASES])
def test_a_bad_build_input_is_one_line_and_loses_nothing(published, inputs, tmp_path, capsys, factories_on_path,
                                                        case, make, extra, word):
    before, builds = fingerprint(published), _builds(published)
    cfg = _write_case(inputs, tmp_path, make)
    rc, err = _run(["build", cfg, "--cache-dir", str(published), "--quiet", "--no-featvis", *extra], capsys)
    _assert_one_line_error(rc, err, word)
    assert ("[data]" in err) == (case in DATA_STAGE), err  # pre-flight faults never reach the data stage
    assert "[models]" not in err
    assert fingerprint(published) == before
    assert _builds(published) == builds  # and no half-written build left behind
    assert not Path("/tmp/tvz-pwned").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("extra", [pytest.param(e, id=i) for i, e in DEVICE_NO_CUDA])
def test_cuda_without_cuda_is_refused_before_any_work(published, tmp_path, capsys, extra):
    before = fingerprint(published)
    cfg = _write_case(tmp_path, tmp_path, lambda _: _cfg())
    rc, err = _run(["build", cfg, "--cache-dir", str(published), "--quiet", *extra], capsys)
    _assert_one_line_error(rc, err, "no CUDA device")
    assert "[data]" not in err  # refused before the data stage
    assert fingerprint(published) == before


# --- the cache folder ---------------------------------------------------------------------------

def _cache_dir_under_a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("a file\n")
    return tmp / "plain" / "cache"


def _cache_dir_is_a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("a file\n")
    return tmp / "plain"


@pytest.mark.parametrize("where, word", [
    pytest.param(_cache_dir_under_a_file, "not a folder", id="cache-dir-under-a-file"),
    pytest.param(_cache_dir_is_a_file, "not a folder", id="cache-dir-is-a-file"),
])
def test_a_cache_folder_that_cannot_be_one_is_refused(tmp_path, capsys, where, word):
    cfg = _write_case(tmp_path, tmp_path, lambda _: _cfg())
    rc, err = _run(["build", cfg, "--cache-dir", str(where(tmp_path)), "--quiet"], capsys)
    _assert_one_line_error(rc, err, word)
    assert "[data]" not in err


@contextmanager
def _as_nobody() -> Iterator[None]:
    """File access as uid 65534 (root ignores mode bits): the effective uid only, so that os.access, which
    checks the real uid, still says 'writable' and the check must find out by trying."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_a_read_only_cache_folder_is_refused_before_any_work(published, capsys):
    before = fingerprint(published)
    # under /tmp with open modes, not pytest's private tmp folder: the other user must reach the config
    base = Path(tempfile.mkdtemp(prefix="tvz-ro-"))
    try:
        base.chmod(0o755)
        cfg = base / "config.yaml"
        cfg.write_text(yaml.safe_dump(_cfg()))
        cfg.chmod(0o644)
        shutil.copytree(published, base / "cache", symlinks=True)
        for p in [base / "cache", *(base / "cache").rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o555 if p.is_dir() else 0o444)
        inner = fingerprint(base / "cache")
        with _as_nobody():
            rc, err = _run(["build", str(cfg), "--cache-dir", str(base / "cache"), "--quiet"], capsys)
        _assert_one_line_error(rc, err, "not writable")
        assert "[data]" not in err
        assert fingerprint(base / "cache") == inner
    finally:
        for p in [base, *base.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(base)
    assert fingerprint(published) == before


def test_too_little_free_space_is_refused_before_any_work(published, tmp_path, capsys, monkeypatch):
    from transferviz.build import inputs as build_inputs

    # the floor raised above what this disk really has free: the check reads the real free space
    monkeypatch.setattr(build_inputs, "MIN_FREE_BYTES", shutil.disk_usage(published).free + (1 << 30))
    before = fingerprint(published)
    cfg = _write_case(tmp_path, tmp_path, lambda _: _cfg())
    rc, err = _run(["build", cfg, "--cache-dir", str(published), "--quiet"], capsys)
    _assert_one_line_error(rc, err, "free")
    assert "[data]" not in err
    assert fingerprint(published) == before


@pytest.mark.parametrize("code, word", [
    pytest.param(errno.ENOSPC, "no space left", id="disk-full"),
    pytest.param(errno.EDQUOT, "quota", id="quota-exceeded"),
    pytest.param(errno.EROFS, "read-only", id="read-only-file-system"),
    pytest.param(errno.EACCES, "permission denied", id="permission-denied"),
])
def test_a_disk_failure_during_the_build_is_one_line(published, inputs, tmp_path, capsys, monkeypatch, code, word):
    """What no check can foresee (the disk fills while the build writes) still ends in one line, with the
    previous cache intact: the first array the build writes fails as a full disk would."""
    from transferviz.cache import CacheWriter

    def fail(self: CacheWriter, rel: str, *args: Any) -> None:
        raise OSError(code, os.strerror(code), str(self.root / rel))

    monkeypatch.setattr(CacheWriter, "array", fail)
    before, builds = fingerprint(published), _builds(published)
    cfg = _write_case(inputs, tmp_path, _folders())
    rc, err = _run(["build", cfg, "--cache-dir", str(published), "--quiet"], capsys)
    _assert_one_line_error(rc, err, word)
    assert "--cache-dir" in err.splitlines()[-1]  # the fix
    assert fingerprint(published) == before and _builds(published) == builds


# --- transferviz info ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, word", [
    pytest.param(lambda t: t / "nowhere", "no cache at", id="info-missing-path"),
    pytest.param(lambda t: (t / "f.txt", (t / "f.txt").write_text("x"))[0], "no cache at", id="info-on-a-file"),
    pytest.param(lambda t: t, "no cache at", id="info-on-an-empty-folder"),
    pytest.param(lambda t: (t / "manifest.json", (t / "manifest.json").write_text('{"schema'))[0].parent,
                 "manifest.json is damaged", id="info-truncated-manifest"),
])
def test_info_on_a_bad_path_is_one_line(tmp_path, capsys, make, word):
    rc, err = _run(["info", str(make(tmp_path))], capsys)
    _assert_one_line_error(rc, err, word)


# --- the pixel limit, directly on the loader ----------------------------------------------------------

def test_images_over_the_pixel_limit_are_skipped_and_counted_without_decoding(tmp_path, recwarn):
    from transferviz.data import image_folder

    for c in ("cat", "dog"):
        for i in range(2):
            _png(tmp_path / "d" / "images" / c / f"{i}.png")
    _png_header(tmp_path / "d" / "images" / "cat" / "big.png", 8000, 6000)  # 48 MP, never decodable
    _png_header(tmp_path / "d" / "images" / "dog" / "bomb.png", 20000, 20000)  # beyond Pillow's own bomb limit
    _png_header(tmp_path / "d" / "images" / "dog" / "warns.png", 10000, 10000)  # Pillow warns at open
    (tmp_path / "d" / "images" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _png(tmp_path / "d" / "images" / "dog" / "wide.png", size=(300, 20))  # 6,000 px
    dom = image_folder(tmp_path, "d", 16)
    assert len(dom) == 5 and dom.skipped == 4 and dom.oversized == 3
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    # a lower limit skips the wide one too; the limit counts pixels, not bytes
    small = image_folder(tmp_path, "d", 16, max_pixels=5000)
    assert len(small) == 4 and small.oversized == 4
    assert np.array_equal(small.images, dom.images[[0, 1, 2, 3]])


def test_the_build_summary_and_warnings_say_how_many_images_were_too_large(inputs, tmp_path):
    from transferviz.build import STAGES
    from transferviz.build.framework import BuildOptions, run_build
    from transferviz.config import parse_config

    data = tmp_path / "data"
    shutil.copytree(inputs / "data" / "a", data / "a")
    shutil.copytree(inputs / "data" / "b", data / "b")
    _png(data / "a" / "images" / "cat" / "wide.png", size=(300, 20))
    cfg = parse_config(_folders(max_pixels=1000)(tmp_path), "c.yaml")
    report = run_build(cfg, STAGES[:1], BuildOptions(tmp_path / "cache", torch.device("cpu"), progress=False),
                       log=lambda m: None)
    assert report.stages[0]["summary"].endswith(", skipped 1 over max_pixels")
    assert report.warnings and "1 images with more pixels than their domain's max_pixels" in report.warnings[0]
    meta = (report.build_dir / "data" / "meta.json").read_text()
    assert '"oversized": {\n  "source": 1,\n  "target": 0' in meta


# --- the pre-flight checks let good inputs through ----------------------------------------------------

def test_valid_checkpoints_and_history_pass_the_preflight(inputs, tiny_cache):
    """The tiny cache's own weights (10 classes, safetensors) and a good history: the head's class count is
    read from the checkpoint, and the history comes back typed."""
    from transferviz.build.inputs import check_model_inputs, read_history_csv
    from transferviz.config import parse_config

    models = Path(tiny_cache.root) / "models"
    cfg = _cfg(checkpoints={"source": str(models / "source.safetensors"), "target": str(models / "target.safetensors"),
                            "target_epochs": [str(models / "epochs" / "target_001.safetensors")],
                            "history": str(inputs / "hist" / "good.csv")})
    del cfg["training"]
    check_model_inputs(parse_config(cfg, "c.yaml"))
    rows = read_history_csv(inputs / "hist" / "good.csv")
    assert [(r["epoch"], r["model"], r["val"]) for r in rows] == [(1, "source", 0.8), (1, "target", 0.8)]
    assert all(isinstance(r["source_train"], float) for r in rows)


def test_disk_errors_wrapped_by_libraries_are_recognised():
    from transferviz.errors import disk_error

    safetensors_style = RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
    pyarrow_style = OSError("[Errno 122] Disk quota exceeded. Detail: [errno 122]")
    assert "no space left" in str(disk_error(safetensors_style))
    assert "quota" in str(disk_error(pyarrow_style))
    assert disk_error(ValueError("a bug, not a disk")) is None
    assert disk_error(OSError(errno.ENOENT, "No such file or directory")) is None
