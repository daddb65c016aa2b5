"""Run configuration: YAML validated into frozen pydantic models.

Every validation failure becomes a one-line :class:`TransferVizError` naming the
file, the key and what is allowed. Relative paths inside a config are resolved
against the config file's folder; ``~`` and ``$VARS`` are expanded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator
from pydantic_core import ErrorDetails

from transferviz.errors import TransferVizError

__all__ = ["Config", "load_config", "config_hash", "REPO_CONFIGS"]

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- domains -----------------------------------------------------------------

class _Domain(_Frozen):
    max_per_class: int | None = Field(None, ge=1)  # seeded subsample per class (the paper downsamples SVHN/MNIST)


class SyntheticDigits(_Domain):
    """Printed digits rendered by the project (a street-number-like domain in the spirit of SVHN)."""
    kind: Literal["synthetic_digits"]
    name: str = "printed"
    n_per_class: int = Field(200, ge=2, le=100_000)
    # the same images converted to grey (issue 12, item 6: a demo whose domains do not differ in colour)
    grayscale: bool = False
    # printed: street-sign-like renders; handwritten: the glyphs elastically distorted, bright ink on black, grey
    # (the 100k benchmark's target domain, configs/scale.yaml)
    style: Literal["printed", "handwritten"] = "printed"

    @model_serializer(mode="wrap")
    def _omit_colour_default(self, handler: Any) -> dict[str, Any]:
        # grayscale and style are left out at their defaults, so that configs (and the stage keys hashed from
        # them) of caches built before the options existed stay what they were and those caches are reused
        out = handler(self)
        if not self.grayscale:
            out.pop("grayscale", None)
        if self.style == "printed":
            out.pop("style", None)
        return out


class SklearnDigits(_Domain):
    """scikit-learn's handwritten digits (1797 real 8x8 scans shipped in the package)."""
    kind: Literal["sklearn_digits"]
    name: str = "handwritten"


#: Pixels an image file may hold to be decoded (40 megapixels, a 7,300 x 5,500 photo): decoding takes 3-4 bytes
#: a pixel per loader thread, and a 450 KB PNG can claim 144 megapixels. Larger files are skipped and counted.
DEFAULT_MAX_PIXELS = 40_000_000


class ImageFolder(_Domain):
    """``<root>/<domain>/images/<class>/*.jpg`` (Office-31's layout); any class names."""
    kind: Literal["image_folder"]
    root: Path
    domain: str
    name: str | None = None
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)  # larger images are skipped (header read, never decoded)


class Svhn(_Domain):
    """SVHN read by torchvision from a local root (``<root>/train_32x32.mat``); never downloaded."""
    kind: Literal["svhn"]
    root: Path
    per_class: int = Field(1500, ge=1)
    name: str = "svhn"


class Mnist(_Domain):
    """MNIST read by torchvision from a local root (``<root>/MNIST/raw/``); never downloaded."""
    kind: Literal["mnist"]
    root: Path
    per_class: int = Field(150, ge=1)
    name: str = "mnist"


DomainSpec = Annotated[Union[SyntheticDigits, SklearnDigits, ImageFolder, Svhn, Mnist],
                       Field(discriminator="kind")]


# --- model, training, analysis ---------------------------------------------------

class ModelSpec(_Frozen):
    arch: str = "small_alexnet"
    input_size: int = Field(28, ge=8, le=1024)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    init_weights: Path | None = None  # optional local weights (e.g. ImageNet AlexNet) to start the source model

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, v: str) -> str:
        if v in ("small_alexnet", "alexnet"):
            return v
        from transferviz.models import check_arch  # torch and torchvision only for other architectures

        try:
            check_arch(v)
        except TransferVizError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0:
            raise ValueError("every std must be > 0")
        return v


class TrainSpec(_Frozen):
    epochs: int = Field(8, ge=1, le=1000)
    lr: float = Field(1e-3, gt=0, le=10)
    batch_size: int = Field(64, ge=1, le=65536)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    # module path prefixes ("conv1", "layer1", "features.0") whose parameters (and BatchNorm statistics)
    # stay as they are; checked against the model when training starts
    freeze: tuple[str, ...] = ()
    head_lr: float | None = Field(None, gt=0, le=10)  # the head's (last nn.Linear's) learning rate; default lr

    @field_validator("freeze")
    @classmethod
    def _module_paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in v:
            if not prefix or prefix != prefix.strip() or prefix.startswith(".") or prefix.endswith("."):
                raise ValueError(f"{prefix!r} is not a module path prefix such as 'layer1' or 'features.0'")
        return v


class TrainingSpec(_Frozen):
    source: TrainSpec = TrainSpec()
    target: TrainSpec = TrainSpec()
    keep_epoch_checkpoints: bool = True


class CheckpointsSpec(_Frozen):
    """Existing models: training is skipped."""
    source: Path
    target: Path
    history: Path | None = None  # CSV: epoch, model, source_train, target_train, val
    target_epochs: tuple[Path, ...] = ()  # optional per-epoch target checkpoints for the timeline


class AnalysisSpec(_Frozen):
    # the analysed layers: a preset (auto: `all` when at most 16 layers, otherwise `blocks` thinned to 16;
    # all: every conv and hidden linear layer; blocks: the outputs of the stages' blocks and the hidden linear
    # layers; rules in transferviz.graph) or a list of module paths, each checked against the model
    layers: Union[Literal["auto", "all", "blocks"], tuple[str, ...]] = "auto"
    n_steps: int = Field(16, ge=2, le=1000)
    method: Literal[
        "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
    ] = "gausslegendre"
    baseline: float = 0.0
    neuron_fraction: float = Field(0.1, gt=0, le=1)
    weight_top_k: int | None = Field(None, ge=1)
    # a weight counts for an instance only when its receiving neuron is active there (non-zero conductance;
    # why: transferviz.analysis.weights.receiver_activity); false: the paper's rule, every instance counts
    active_receivers: bool = True
    # how a conv weight's level reduces over the output map: the paper's max, or the sum (its whole contribution)
    weight_reduction: Literal["max", "sum"] = "max"
    # neuron similarity (paper: cosine) and how a target neuron is matched to a source neuron for weight
    # correspondence (paper: best = the most similar one; one_to_one = Hungarian assignment; same_index)
    similarity: Literal["cosine", "pearson"] = "cosine"
    matching: Literal["best", "one_to_one", "same_index"] = "best"
    # source-label shuffles of the correspondence share's permutation null (mean and 95th percentile)
    correspondence_permutations: int = Field(200, ge=0, le=10_000)
    embedding_layer: str | None = None
    memory_budget_mb: int = Field(4096, ge=16)
    autocast: bool = False
    discriminability_folds: int = Field(10, ge=2, le=100)
    # label shuffles of the domain classifier's permutation null (0: no null; 19 gives p-values to 0.05)
    discriminability_permutations: int = Field(19, ge=0, le=999)
    # resamples of the bootstrap stability of u (issue 12: at least 100; 0: none)
    discriminability_bootstrap: int = Field(100, ge=0, le=10_000)
    # label shuffles of the stability's null (how many top neurons look stable with no domain difference)
    discriminability_stability_null: int = Field(5, ge=0, le=999)
    # above this many instances of a class in a domain, the nested CV accuracy and its permutation null use a
    # seeded sample of this many (u, the biplot and the bootstrap still use every instance; null: never sample).
    # The CV refits ~210 ridge models: at 100k instances (5,000 a class and domain) ~45 min on 2 loaded cores
    discriminability_cv_max_rows: int | None = Field(2000, ge=10)
    tsne_perplexity: float = Field(30.0, gt=1, le=500)

    @field_validator("layers", mode="before")
    @classmethod
    def _layer_spec(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v not in ("auto", "all", "blocks"):
                raise ValueError("must be 'auto', 'all', 'blocks' or a list of module paths such as "
                                 "['layer1.0', 'layer4.1']")
            return v
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError("must be 'auto', 'all', 'blocks' or a non-empty list of module paths")
        for p in v:
            if not isinstance(p, str) or not p or p != p.strip() or p.startswith(".") or p.endswith("."):
                raise ValueError(f"{p!r} is not a module path such as 'layer1.0' or 'features.3'")
        if len(set(v)) != len(v):
            dup = next(p for p in v if list(v).count(p) > 1)
            raise ValueError(f"{dup!r} is listed twice")
        return tuple(v)


class FeatvisSpec(_Frozen):
    enabled: bool = True
    steps: int = Field(64, ge=1, le=10_000)
    size: int | None = Field(None, ge=8, le=1024)  # default: the model's input size
    lr: float = Field(0.05, gt=0, le=10)


class Config(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    seed: int = 0
    source: DomainSpec
    target: DomainSpec
    val_fraction: float = Field(0.15, gt=0, lt=1)
    model: ModelSpec = ModelSpec()
    training: TrainingSpec | None = None
    checkpoints: CheckpointsSpec | None = None
    analysis: AnalysisSpec = AnalysisSpec()
    featvis: FeatvisSpec = FeatvisSpec()

    @model_validator(mode="after")
    def _one_model_source(self) -> "Config":
        if self.training is not None and self.checkpoints is not None:
            raise ValueError("give either 'training' (train both models) or 'checkpoints' (load them), not both")
        if self.training is None and self.checkpoints is None:
            object.__setattr__(self, "training", TrainingSpec())
        return self


# --- loading -----------------------------------------------------------------------

def _resolve_paths(node: Any, base: Path) -> Any:
    """Expands ``~``/``$VAR`` and makes relative path-like values absolute against the config's folder."""
    path_keys = {"root", "init_weights", "source", "target", "history", "target_epochs"}
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for k, v in node.items():
            if k in path_keys and isinstance(v, str):
                out[k] = str(_absolute(v, base))
            elif k == "target_epochs" and isinstance(v, list):
                out[k] = [str(_absolute(x, base)) if isinstance(x, str) else x for x in v]
            else:
                out[k] = _resolve_paths(v, base)
        return out
    return node


def _absolute(value: str, base: Path) -> Path:
    p = Path(os.path.expandvars(os.path.expanduser(value)))
    return p if p.is_absolute() else (base / p).resolve()


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc`` (the parent of an unknown key)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            # discriminated-union tag (e.g. 'synthetic_digits') picks the member class
            members = [c for c in (SyntheticDigits, SklearnDigits, ImageFolder, Svhn, Mnist)
                       if get_args(c.model_fields["kind"].annotation)[0] == part]
            if members:
                current = members[0]
                continue
            return []
        ann = field.annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = candidates[0] if candidates else ann
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _one_line(error: ErrorDetails, origin: str) -> str:
    loc = tuple(error.get("loc", ()))
    etype = error.get("type", "")
    keys = [str(p) for p in loc if not (isinstance(p, str) and p in
            {"synthetic_digits", "sklearn_digits", "image_folder", "svhn", "mnist"})]
    where = ".".join(keys) or "(top level)"
    if etype == "extra_forbidden":
        allowed = _allowed_keys(Config, loc[:-1])
        return f"{origin}: unknown key '{where}' (allowed here: {', '.join(allowed)})"
    if etype == "missing":
        return f"{origin}: missing required key '{where}'"
    if etype == "union_tag_invalid":
        return (f"{origin}: '{where}.kind' is {error.get('input', {}).get('kind')!r}; allowed: "
                "synthetic_digits, sklearn_digits, image_folder, svhn, mnist")
    if etype == "union_tag_not_found":
        return (f"{origin}: '{where}' needs a 'kind': one of "
                "synthetic_digits, sklearn_digits, image_folder, svhn, mnist")
    msg = error.get("msg", "invalid value").replace("Value error, ", "")
    got = error.get("input")
    got_txt = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{origin}: '{where}': {msg}{got_txt}"


def parse_config(data: Any, origin: str = "<config>", base: Path | None = None) -> Config:
    """Validates a mapping (e.g. parsed YAML) into a :class:`Config`."""
    if not isinstance(data, dict):
        raise TransferVizError(f"{origin}: the file must hold a mapping of keys (name, source, target, ...)")
    data = _resolve_paths(data, base or Path.cwd())
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise TransferVizError(_one_line(exc.errors()[0], origin)) from None


#: A config is a page of YAML; anything larger is not one (and is not read whole into memory).
MAX_CONFIG_BYTES = 1 << 20
#: Nodes a config may expand to once its aliases are followed: a real config has a few hundred at
#: most; a "billion laughs" document of a few hundred bytes expands to billions.
MAX_CONFIG_NODES = 100_000


def _expanded_nodes(node: yaml.Node, memo: dict[int, int], path: set[int]) -> int:
    """How many nodes ``node`` stands for with every alias expanded (shared nodes counted each time
    they are referred to, as constructing them would copy a merged mapping); a node that contains
    itself counts as too many."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in path:
        return MAX_CONFIG_NODES + 1
    path.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        total += _expanded_nodes(child, memo, path)
        if total > MAX_CONFIG_NODES:
            break
    path.discard(key)
    memo[key] = total
    return total


def _load_yaml(p: Path) -> Any:
    """The YAML document at ``p``, bounded: its size, its encoding and its expansion are checked
    before anything is constructed (issue 15: a 796-byte alias bomb took 4.6 GB)."""
    size = p.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise TransferVizError(f"{p} is {size:,} bytes, more than a config's {MAX_CONFIG_BYTES:,}; "
                               "pass the YAML config, not a data file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TransferVizError(f"{p} is not UTF-8 text (byte {exc.start}); save the config as UTF-8 YAML") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_nodes(node, {}, set()) > MAX_CONFIG_NODES:
            raise TransferVizError(f"{p}: its aliases expand to more than {MAX_CONFIG_NODES:,} values, which no "
                                   "config needs; write the values out or use fewer nested aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | Path) -> Config:
    """Reads and validates a YAML config; a bare name like ``digits`` means ``configs/digits.yaml``."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (REPO_CONFIGS / f"{p.name}.yaml").exists():
        p = REPO_CONFIGS / f"{p.name}.yaml"
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise TransferVizError(f"config {p} {what}; pass a YAML file such as configs/digits.yaml")
    try:
        data = _load_yaml(p)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise TransferVizError(f"{p}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_config(data, str(p), p.resolve().parent)


def config_hash(obj: Any) -> str:
    """A stable content hash of (parts of) a config, for stage keys."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
