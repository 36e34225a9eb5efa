"""Real datasets from a local root, in each dataset's official on-disk format.

torchvision does the downloading (`download=True`, md5-verified) and reads MNIST-family IDX
files. CIFAR, SVHN and Omniglot are read by the small readers below instead: torchvision
insists on the md5 of the archive or .mat file (Omniglot even of the .zip when the folders
are already unpacked), which rejects a correctly unpacked copy without its archive and any
file written in the same format. mini-ImageNet has no torchvision class; it is read with PIL.
Every missing or malformed root becomes one RayclError naming the dataset, the path tried
and how to obtain the data.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from raycl import RayclError
from raycl.data.imageset import ImageSet

_IDX_FILES = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte"
HOWTO = {
    "mnist": f"put {_IDX_FILES} (uncompressed) in ROOT/MNIST/raw/",
    "fashion-mnist": f"put Fashion-MNIST's {_IDX_FILES} (uncompressed) in ROOT/FashionMNIST/raw/",
    "kmnist": f"put Kuzushiji-MNIST's {_IDX_FILES} (uncompressed) in ROOT/KMNIST/raw/",
    "svhn": "download train_32x32.mat / test_32x32.mat / extra_32x32.mat from "
    "http://ufldl.stanford.edu/housenumbers/ into ROOT",
    "cifar10": "unpack https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into ROOT "
    "(giving ROOT/cifar-10-batches-py/)",
    "cifar100": "unpack https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz into ROOT "
    "(giving ROOT/cifar-100-python/)",
    "omniglot": "unzip images_background.zip / images_evaluation.zip from "
    "https://github.com/brendenlake/omniglot/tree/master/python into ROOT/omniglot-py/",
    "mini-imagenet": "arrange mini-ImageNet as ROOT/{train,val,test}/<wnid>/*.jpg, or as ROOT/images/*.jpg "
    "with the split files ROOT/{train,val,test}.csv (filename,label); it has no download",
}


def _howto(name: str) -> str:
    tail = "" if name == "mini-imagenet" else ", or pass --download (torchvision fetches it) on a machine with a network"
    return f"To obtain it: {HOWTO[name]}{tail}."


def _fail(name: str, path, why: str) -> RayclError:
    return RayclError(f"dataset '{name}' could not be loaded from {path!s}: {why}. {_howto(name)}")


def _need_root(name: str, root, download: bool) -> Path:
    if root is None:
        raise RayclError(f"dataset '{name}' needs a root folder (--data-root PATH). {_howto(name)}")
    root = Path(root).expanduser()
    if not root.exists() and not download:
        raise _fail(name, root, "the folder does not exist")
    return root


def _call(name: str, path, make):
    """Run `make`; anything it raises while reading the user's files is a data problem."""
    try:
        return make()
    except RayclError:
        raise
    except Exception as e:  # torchvision, PIL, pickle and scipy raise many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unreadable file"
        raise _fail(name, path, f"{type(e).__name__}: {first}") from None


def _missing(name: str, paths: list[Path]) -> None:
    gone = [p for p in paths if not p.is_file()]
    if gone:
        hint = ""
        if any(p.with_name(p.name + ".gz").is_file() for p in gone):
            hint = " (found .gz files: gunzip them, or pass --download, which verifies and unpacks them offline)"
        raise _fail(name, gone[0].parent, f"missing {', '.join(p.name for p in gone)}{hint}")


def _uint8_images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255)


def _labels(name: str, path, labels, num_classes: int, n: int) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
    if len(y) != n:
        raise _fail(name, path, f"{n} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise _fail(name, path, f"labels outside 0..{num_classes - 1}")
    return y


# --- MNIST, Fashion-MNIST, KMNIST: IDX files through torchvision ----------------------------

_IDX_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def load_idx(name: str, root, split: str = "train", download: bool = False) -> ImageSet:
    import torchvision.datasets as tvd

    cls = getattr(tvd, _IDX_CLASSES[name])
    root = _need_root(name, root, download)
    raw = root / cls.__name__ / "raw"
    if not download:  # torchvision wants all four files, uncompressed, whichever split is asked
        _missing(name, [raw / Path(f).stem for f, _ in cls.resources])
    ds = _call(name, raw, lambda: cls(str(root), train=split == "train", download=download))
    x = ds.data.unsqueeze(1).float().div_(255)
    return ImageSet(name, x, _labels(name, root, ds.targets, len(ds.classes), len(x)), [str(c) for c in ds.classes])


# --- CIFAR-10 / CIFAR-100: pickled batches ---------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR batches hold only dicts, lists, strings and numpy arrays: refuse anything else,
    so a foreign pickle cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
        ("_codecs", "encode"): ("_codecs", "encode"),  # bytes in a protocol-2 pickle from Python 3
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        return super().find_class(*self.ALLOWED[module, name])


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        out = _ArrayUnpickler(f, encoding="latin1").load()
    if not isinstance(out, dict):
        raise pickle.UnpicklingError(f"{path.name} holds a {type(out).__name__}, not a CIFAR dict")
    return out


_CIFAR = {  # name: (folder, train files, test files, meta file, label key, class-name key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                "batches.meta", "labels", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names"),
}


def load_cifar(name: str, root, split: str = "train", download: bool = False) -> ImageSet:
    folder, train_files, test_files, meta_file, label_key, names_key = _CIFAR[name]
    root = _need_root(name, root, download)
    if download:
        import torchvision.datasets as tvd

        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        _call(name, root, lambda: cls(str(root), train=split == "train", download=True))
    base = root / folder
    files = [base / f for f in (train_files if split == "train" else test_files)]
    _missing(name, files + [base / meta_file])

    def read(f: Path, fields):
        try:
            return fields(_unpickle(f))
        except Exception as e:  # name the bad file among the batches
            raise ValueError(f"{f.name}: {type(e).__name__}: {e}") from None

    def batch(b: dict):
        x = np.asarray(b["data"], dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise ValueError(f"data of shape {x.shape}, expected (N, 3072)")
        return x, list(b[label_key]), list(b["coarse_labels"]) if name == "cifar100" else []

    def names(m: dict):
        return [str(c) for c in m[names_key]], [str(c) for c in m.get("coarse_label_names", [])]

    class_names, coarse_names = _call(name, base, lambda: read(base / meta_file, names))
    x, fine, coarse = zip(*[_call(name, base, lambda f=f: read(f, batch)) for f in files])
    x, fine, coarse = np.concatenate(x), sum(fine, []), sum(coarse, [])
    # Each row is 1024 red, then green, then blue values, each plane row-major.
    out = ImageSet(name, _uint8_images(x.reshape(-1, 3, 32, 32)), _labels(name, base, fine, len(class_names), len(x)),
                   class_names)
    if name == "cifar100":  # the 20 superclasses the noisy oracle needs
        out.coarse_names = coarse_names
        out.coarse_labels = _labels(name, base, coarse, len(coarse_names), len(x))
    return out


# --- SVHN: MATLAB .mat files -----------------------------------------------------------------


def load_svhn(root, split: str = "train", download: bool = False) -> ImageSet:
    root = _need_root("svhn", root, download)
    if download:
        import torchvision.datasets as tvd

        _call("svhn", root, lambda: tvd.SVHN(str(root), split=split, download=True))
    path = root / f"{split}_32x32.mat"
    _missing("svhn", [path])

    def read():
        import scipy.io

        mat = scipy.io.loadmat(path)
        x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1).astype(np.int64)
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
            raise ValueError(f"X of shape {x.shape}, expected (32, 32, 3, N)")
        return x, y

    x, y = _call("svhn", path, read)
    y[y == 10] = 0  # SVHN labels the digit 0 as 10
    # X is (H, W, C, N); ImageSet wants (N, C, H, W).
    return ImageSet("svhn", _uint8_images(x.transpose(3, 2, 0, 1)), _labels("svhn", path, y, 10, x.shape[3]),
                    [str(i) for i in range(10)])


# --- Omniglot: PNG folders ---------------------------------------------------------------------


def _progress(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", leave=False, disable=None)  # silent off a terminal


def load_omniglot(root, split: str = "background", download: bool = False, size: int | None = 28) -> ImageSet:
    """Omniglot's background (964 characters) or evaluation (659) alphabets, ink = 1, resized
    to `size` x `size` (28 by default, None keeps the native 105)."""
    root = _need_root("omniglot", root, download)
    if download:
        import torchvision.datasets as tvd

        _call("omniglot", root, lambda: tvd.Omniglot(str(root), background=split == "background", download=True))
    sub = f"images_{split}"
    tried = [root / "omniglot-py" / sub, root / sub]  # torchvision's layout, or unzipped into ROOT
    folder = next((p for p in tried if p.is_dir()), None)
    if folder is None:
        raise _fail("omniglot", " or ".join(map(str, tried)), "no such folder")
    characters = sorted(str(c.relative_to(folder)) for c in folder.glob("*/*") if c.is_dir())
    files = [(f, k) for k, c in enumerate(characters) for f in sorted((folder / c).glob("*.png"))]
    if not files:
        raise _fail("omniglot", folder, "no <alphabet>/<character>/*.png images")
    from PIL import Image

    def read():
        x = np.empty((len(files), size or 105, size or 105), np.float32)
        for i, (f, _) in enumerate(_progress(files, f"omniglot {split}")):
            with Image.open(f) as im:
                im = im.convert("L")
                if size and im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BOX)  # area average of the strokes
                if im.size != x.shape[1:]:
                    raise ValueError(f"{f} is {im.size[0]}x{im.size[1]}, expected 105x105")
                x[i] = np.asarray(im, dtype=np.float32)
        return 1.0 - x / 255.0  # the PNGs are black ink on white

    x = _call("omniglot", folder, read)
    labels = torch.tensor([k for _, k in files], dtype=torch.long)
    return ImageSet(f"omniglot-{split}", torch.from_numpy(x).unsqueeze(1), labels, characters)


# --- mini-ImageNet: a local class-per-folder tree, or images/ with the split CSVs -------------

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _inside(name: str, listing: Path, entry: str, under: str) -> None:
    """A file name read from a data file must stay inside the folder it names files of: no
    absolute path, no '..', no drive or backslash path (a listing never chooses what else
    on the machine is read). Links the user put inside that folder are theirs, and followed."""
    from pathlib import PurePosixPath, PureWindowsPath

    p = PurePosixPath(entry)
    if (not entry.strip() or p.is_absolute() or ".." in p.parts or "\\" in entry
            or PureWindowsPath(entry).drive):
        raise _fail(name, listing, f"entry {entry!r} is not a file name inside {under} (absolute paths, '..', "
                    "drives and backslashes are refused, so a list cannot read files elsewhere); list each file "
                    f"by its path relative to {under}")


def _mini_imagenet_files(root: Path, split: str) -> tuple[list[tuple[Path, int]], list[str]]:
    folder, csv_file = root / split, root / f"{split}.csv"
    if folder.is_dir():  # ROOT/train/n01532829/*.jpg
        classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
        files = [(f, k) for k, c in enumerate(classes) for f in sorted((folder / c).iterdir())
                 if f.suffix.lower() in _IMAGE_SUFFIXES]
        if not files:
            raise _fail("mini-imagenet", folder, "no <wnid>/*.jpg images")
        return files, classes
    if csv_file.is_file() and (root / "images").is_dir():  # ROOT/images/*.jpg + ROOT/train.csv (filename,label)
        import csv

        with open(csv_file, newline="") as f:
            rows = [r for r in csv.reader(f) if r]
        if not rows or [c.strip() for c in rows[0][:2]] != ["filename", "label"]:
            raise _fail("mini-imagenet", csv_file, "expected a 'filename,label' header")
        if any(len(r) < 2 for r in rows[1:]):
            bad = next(r for r in rows[1:] if len(r) < 2)
            raise _fail("mini-imagenet", csv_file, f"row {bad!r} has no label; every row is 'filename,label'")
        for r in rows[1:]:
            _inside("mini-imagenet", csv_file, r[0], "ROOT/images/")
        classes = sorted({r[1] for r in rows[1:]})
        index = {c: k for k, c in enumerate(classes)}
        return [(root / "images" / r[0], index[r[1]]) for r in rows[1:]], classes
    raise _fail("mini-imagenet", f"{folder} or {csv_file} with {root / 'images'}", f"no '{split}' split")


def load_mini_imagenet(root, split: str = "train", download: bool = False, size: int = 84) -> ImageSet:
    if download:
        raise RayclError("mini-ImageNet has no download: " + HOWTO["mini-imagenet"])
    from PIL import Image

    root = _need_root("mini-imagenet", root, False)
    files, classes = _mini_imagenet_files(root, split)

    def read():
        x = np.empty((len(files), size, size, 3), np.uint8)
        for i, (f, _) in enumerate(_progress(files, f"mini-imagenet {split}")):
            with Image.open(f) as im:
                x[i] = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        return x

    x = _call("mini-imagenet", root / split if (root / split).is_dir() else root / "images", read)
    labels = torch.tensor([k for _, k in files], dtype=torch.long)
    return ImageSet("mini-imagenet", _uint8_images(x.transpose(0, 3, 1, 2)), labels, classes)
