"""Image sources: a registry of offline and real datasets, all loaded as ImageSet."""

from raycl import lazy_exports

# imported on first use (raycl --help stays free of torch)
_EXPORTS = {
    "ImageSet": "raycl.data.imageset",
    "mix": "raycl.data.imageset",
    "to_common": "raycl.data.imageset",
    "SOURCES": "raycl.data.registry",
    "Source": "raycl.data.registry",
    "load": "raycl.data.registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
