"""Real datasets through torchvision, from a local root (or a download where there is a
network). Each loader turns a missing or malformed root into one clear RayclError."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from raycl import RayclError
from raycl.data.imageset import ImageSet

HOWTO = {
    "mnist": "torchvision.datasets.MNIST(root, download=True) on a machine with a network, or copy MNIST/raw/*-ubyte[.gz] under ROOT",
    "fashion-mnist": "torchvision.datasets.FashionMNIST(root, download=True), or copy FashionMNIST/raw/*-ubyte[.gz] under ROOT",
    "kmnist": "torchvision.datasets.KMNIST(root, download=True), or copy KMNIST/raw/*-ubyte[.gz] under ROOT",
    "svhn": "torchvision.datasets.SVHN(root, split='train', download=True), or copy train_32x32.mat / test_32x32.mat into ROOT",
    "cifar10": "torchvision.datasets.CIFAR10(root, download=True), or unpack cifar-10-python.tar.gz into ROOT (ROOT/cifar-10-batches-py/)",
    "cifar100": "torchvision.datasets.CIFAR100(root, download=True), or unpack cifar-100-python.tar.gz into ROOT (ROOT/cifar-100-python/)",
    "omniglot": "torchvision.datasets.Omniglot(root, background=True/False, download=True), or unpack images_background.zip / images_evaluation.zip into ROOT/omniglot-py/",
    "mini-imagenet": "arrange mini-ImageNet as ROOT/{train,val,test}/<wnid>/*.jpg (the common layout of its split CSVs)",
}


def _fail(name: str, root, why: str) -> RayclError:
    return RayclError(f"dataset '{name}' could not be loaded from {root!s}: {why}. To obtain it: {HOWTO[name]} (pass --download where there is a network).")


def _need_root(name: str, root, download: bool) -> Path:
    if root is None:
        raise RayclError(f"dataset '{name}' needs a root folder (--data-root PATH). To obtain it: {HOWTO[name]}.")
    root = Path(root).expanduser()
    if not root.exists() and not download:
        raise _fail(name, root, "the folder does not exist")
    return root


def _call(name: str, root: Path, make):
    try:
        return make()
    except RayclError:
        raise
    except (RuntimeError, FileNotFoundError, OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
        raise _fail(name, root, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else 'unreadable files'}") from None


def _from_uint8(name: str, data, targets, classes) -> ImageSet:
    x = torch.as_tensor(np.asarray(data))
    if x.ndim == 3:  # (N, H, W) grayscale
        x = x.unsqueeze(1)
    elif x.shape[-1] == 3:  # (N, H, W, 3)
        x = x.permute(0, 3, 1, 2)
    return ImageSet(name, x.float().div_(255), torch.as_tensor(np.asarray(targets), dtype=torch.long), list(classes))


def load_idx(name: str, root, split: str = "train", download: bool = False) -> ImageSet:
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "kmnist": tvd.KMNIST}[name]
    root = _need_root(name, root, download)
    ds = _call(name, root, lambda: cls(str(root), train=split == "train", download=download))
    return _from_uint8(name, ds.data, ds.targets, [str(c) for c in ds.classes])


def load_svhn(root, split: str = "train", download: bool = False) -> ImageSet:
    import torchvision.datasets as tvd

    root = _need_root("svhn", root, download)
    ds = _call("svhn", root, lambda: tvd.SVHN(str(root), split=split, download=download))
    # torchvision keeps SVHN as (N, 3, H, W) with digit 0 already mapped to label 0.
    x = torch.as_tensor(ds.data).float().div_(255)
    return ImageSet("svhn", x, torch.as_tensor(ds.labels, dtype=torch.long), [str(i) for i in range(10)])


def load_cifar(name: str, root, split: str = "train", download: bool = False) -> ImageSet:
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    root = _need_root(name, root, download)
    ds = _call(name, root, lambda: cls(str(root), train=split == "train", download=download))
    out = _from_uint8(name, ds.data, ds.targets, ds.classes)
    if name == "cifar100":
        # torchvision drops the 20 superclasses; the noisy oracle needs them, so read them
        # from the same pickled batch and meta files.
        base = Path(root) / ds.base_folder
        files = ds.train_list if split == "train" else ds.test_list
        coarse = []
        for fname, _ in files:
            with open(base / fname, "rb") as f:
                coarse += pickle.load(f, encoding="latin1")["coarse_labels"]
        with open(base / "meta", "rb") as f:
            out.coarse_names = pickle.load(f, encoding="latin1")["coarse_label_names"]
        out.coarse_labels = torch.tensor(coarse, dtype=torch.long)
    return out


def load_omniglot(root, split: str = "background", download: bool = False) -> ImageSet:
    """Omniglot's background (964 characters) or evaluation (659) alphabets, ink = 1."""
    import torchvision.datasets as tvd

    root = _need_root("omniglot", root, download)
    ds = _call("omniglot", root, lambda: tvd.Omniglot(str(root), background=split != "evaluation", download=download))
    if not ds._flat_character_images:
        raise _fail("omniglot", root, f"no character images under {ds.target_folder}")
    from PIL import Image

    def read():
        imgs = []
        for fname, _ in ds._flat_character_images:
            char = ds._characters[_]
            with Image.open(Path(ds.target_folder, char, fname)) as im:
                imgs.append(1.0 - np.asarray(im.convert("L"), dtype=np.float32) / 255.0)
        return np.stack(imgs)

    x = _call("omniglot", root, read)
    labels = [c for _, c in ds._flat_character_images]
    return ImageSet(f"omniglot-{split}", torch.from_numpy(x).unsqueeze(1), torch.tensor(labels), list(ds._characters))


def load_mini_imagenet(root, split: str = "train", download: bool = False, size: int = 84) -> ImageSet:
    if download:
        raise RayclError("mini-ImageNet has no download; " + HOWTO["mini-imagenet"])
    import torchvision.datasets as tvd
    import torchvision.transforms.v2 as T

    root = _need_root("mini-imagenet", root, False)
    folder = root / split
    if not folder.is_dir():
        raise _fail("mini-imagenet", folder, f"no '{split}' folder")
    tf = T.Compose([T.Resize((size, size)), T.PILToTensor()])
    ds = _call("mini-imagenet", folder, lambda: tvd.ImageFolder(str(folder), transform=tf))
    x = torch.stack([ds[i][0] for i in range(len(ds))]).float().div_(255)
    return ImageSet("mini-imagenet", x, torch.tensor(ds.targets), list(ds.classes))
