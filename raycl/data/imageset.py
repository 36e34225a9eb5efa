"""ImageSet: the one in-memory form every source is loaded into."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F


@dataclass
class ImageSet:
    """Images as float32 (N, C, H, W) in [0, 1], int64 labels in [0, len(class_names))."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    coarse_labels: torch.Tensor | None = None  # e.g. CIFAR-100 superclasses
    coarse_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be (N, C, H, W), got {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            coarse_labels=None if self.coarse_labels is None else self.coarse_labels[index],
        )

    def classes(self, keep) -> "ImageSet":
        """Only the classes in `keep`, relabelled 0..len(keep)-1 in that order."""
        keep = [int(c) for c in keep]
        remap = torch.full((self.num_classes,), -1, dtype=torch.long)
        remap[torch.tensor(keep, dtype=torch.long)] = torch.arange(len(keep))
        mask = remap[self.labels] >= 0
        out = self.subset(mask.nonzero().flatten())
        return replace(out, labels=remap[out.labels], class_names=[self.class_names[c] for c in keep])

    def by_class(self) -> list[torch.Tensor]:
        """Indices of each class's images, in class order."""
        order = torch.argsort(self.labels, stable=True)
        counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        return list(torch.split(order, counts))


def to_common(data: ImageSet, size: int | tuple[int, int] = 28, channels: int = 1) -> ImageSet:
    """Resize (antialiased bilinear) and convert channels so sources of different shapes mix."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    x = data.images
    if x.shape[1] != channels:
        if channels == 1:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        else:
            raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")
    if tuple(x.shape[2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    return replace(data, images=x.contiguous())


def mix(sets: list[ImageSet], size: int | tuple[int, int] = 28, channels: int = 1, name: str | None = None) -> ImageSet:
    """One ImageSet from several sources: common shape, labels offset, class names prefixed."""
    parts = [to_common(s, size, channels) for s in sets]
    offset, labels, names = 0, [], []
    for s in parts:
        labels.append(s.labels + offset)
        names += [f"{s.name}/{c}" for c in s.class_names]
        offset += s.num_classes
    return ImageSet(
        name=name or "+".join(s.name for s in parts),
        images=torch.cat([s.images for s in parts]),
        labels=torch.cat(labels),
        class_names=names,
    )
