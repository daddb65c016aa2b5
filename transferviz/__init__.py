"""transferviz: explain and diagnose transfer learning between two CNNs (Ma et al., IEEE VIS 2020)."""

import os

# Before torch loads libgomp: OpenMP's default wait policy spins idle threads between parallel regions, which
# on a shared or oversubscribed CPU made the build's small-matrix stages 10-30x slower (abstract 493 s against
# 32 s at 5k instances, measured by benchmarks/scale.py); passive waiting costs nothing measurable on an idle
# machine. A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from transferviz.errors import TransferVizError  # noqa: E402 (after the environment is set)

__version__ = "0.1.0"

__all__ = ["Cache", "TransferVizError", "__version__"]


def __getattr__(name: str):
    # Lazy: `import transferviz` stays cheap for the CLI's --help and for the dashboard.
    if name == "Cache":
        from transferviz.cache import Cache

        return Cache
    raise AttributeError(name)
