"""Image sources: a registry of offline and real datasets, all loaded as ImageSet."""

from raycl.data.imageset import ImageSet, mix, to_common
from raycl.data.registry import SOURCES, Source, load

__all__ = ["ImageSet", "SOURCES", "Source", "load", "mix", "to_common"]
