"""Domain data: loaders returning :class:`DomainData`, the synthetic demo source, splits.

```python
from transferviz.data import synthetic_digits, sklearn_digits, align_classes, stratified_split
src, tgt = align_classes(synthetic_digits(200, 28, seed=0), sklearn_digits(28))
split = stratified_split(src.labels, val_fraction=0.15, seed=0)   # "train"/"val" per instance
```
"""

from transferviz.data.loaders import (
    DEFAULT_LAYOUT,
    IMAGE_EXTENSIONS,
    DomainData,
    align_classes,
    image_folder,
    mnist,
    sklearn_digits,
    svhn,
)
from transferviz.data.splits import stratified_split
from transferviz.data.synthetic import font_pool, font_provenance, synthetic_digits

__all__ = [
    "DEFAULT_LAYOUT",
    "IMAGE_EXTENSIONS",
    "DomainData",
    "align_classes",
    "font_pool",
    "font_provenance",
    "image_folder",
    "mnist",
    "sklearn_digits",
    "stratified_split",
    "svhn",
    "synthetic_digits",
]
