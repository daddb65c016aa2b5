"""transferviz: explain and diagnose transfer learning between two CNNs (Ma et al., IEEE VIS 2020)."""

from transferviz.errors import TransferVizError

__version__ = "0.1.0"

__all__ = ["Cache", "TransferVizError", "__version__"]


def __getattr__(name: str):
    # Lazy: `import transferviz` stays cheap for the CLI's --help and for the dashboard.
    if name == "Cache":
        from transferviz.cache import Cache

        return Cache
    raise AttributeError(name)
