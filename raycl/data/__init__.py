"""Image sources: a registry of offline and real datasets, all loaded as ImageSet."""

from raycl import lazy_exports

# imported on first use (raycl --help stays free of torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    f"{__name__}.imageset": ("ImageSet", "mix", "to_common"),
    f"{__name__}.registry": ("SOURCES", "Source", "load"),
})
