"""raycl.data: real datasets from fixtures written in each dataset's own on-disk format,
loaded through `raycl.data.load` exactly as users load them; the offline sources; ImageSet."""

import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from raycl import RayclError
from raycl.cli import main
from raycl.data import ImageSet, load, mix, offline, to_common


@pytest.fixture(autouse=True)
def glyph_cache(tmp_path_factory, monkeypatch):
    """Keep the glyph cache out of the user's home; shared by this module's tests."""
    path = tmp_path_factory.getbasetemp() / "raycl-cache"
    monkeypatch.setenv("RAYCL_CACHE", str(path))
    return path


# --- fixture writers: the official formats ----------------------------------------------------


def write_idx(path, arr: np.ndarray) -> None:
    """IDX: magic 0x0000 08 <ndim> (unsigned bytes), big-endian int32 dims, then the data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
                     + arr.astype(np.uint8).tobytes())


def marked_images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images, each with one 255 pixel at row 1, column i: pins orientation."""
    x = np.random.default_rng(seed).integers(0, 200, (n, h, w), dtype=np.uint8)
    for i in range(n):
        x[i, 1, i % w] = 255
    return x


def write_mnist_family(root, folder: str, n_train=12, n_test=7):
    raw = root / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", marked_images(n, 28, 28, seed=n))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return raw


def dump(path, obj, py2_names: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(obj, protocol=2)
    if py2_names:  # the real batches were pickled by numpy 1 under Python 2
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(data)


def cifar_rows(n: int, seed: int) -> np.ndarray:
    """(n, 3072): 1024 red, 1024 green, 1024 blue, each plane row-major; image i has a pure-red
    pixel at row 2, column i."""
    x = np.random.default_rng(seed).integers(0, 200, (n, 3, 32, 32), dtype=np.uint8)
    for i in range(n):
        x[i, :, 2, i] = (255, 0, 0)
    return x.reshape(n, 3072)


def write_cifar10(root):
    base = root / "cifar-10-batches-py"
    for b in range(1, 6):
        dump(base / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "data": cifar_rows(4, b),
                                        "labels": [(b + i) % 10 for i in range(4)],
                                        "filenames": [f"img{b}_{i}.png" for i in range(4)]}, py2_names=b == 1)
    dump(base / "test_batch", {"batch_label": "testing batch 1 of 1", "data": cifar_rows(3, 9), "labels": [9, 0, 1],
                               "filenames": ["a", "b", "c"]})
    dump(base / "batches.meta", {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                 "horse", "ship", "truck"], "num_cases_per_batch": 4, "num_vis": 3072})
    return base


def write_cifar100(root):
    base = root / "cifar-100-python"
    for split, n in (("train", 6), ("test", 4)):
        dump(base / split, {"batch_label": split, "data": cifar_rows(n, n), "fine_labels": [99 - i for i in range(n)],
                            "coarse_labels": [19 - i for i in range(n)], "filenames": [str(i) for i in range(n)]})
    dump(base / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                         "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return base


def write_svhn(root, split="train", n=5):
    import scipy.io

    x = np.random.default_rng(n).integers(0, 200, (32, 32, 3, n), dtype=np.uint8)
    for i in range(n):
        x[3, i, :, i] = (0, 255, 0)  # row 3, column i: pure green
    y = np.array([[10], [1], [2], [10], [9]][:n], dtype=np.uint8)  # SVHN writes the digit 0 as 10
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})


def write_omniglot(folder, alphabets=("Alphabet_of_the_Magi", "Bengali"), characters=2, drawings=3):
    """105x105 1-bit PNGs, black ink on white, as in images_background.zip: a bar across rows 40-59."""
    for a in alphabets:
        for c in range(1, characters + 1):
            d = folder / a / f"character{c:02d}"
            d.mkdir(parents=True)
            for k in range(drawings):
                im = Image.new("1", (105, 105), 1)
                ImageDraw.Draw(im).rectangle([10 + k, 40, 90, 59], fill=0)
                im.save(d / f"{c:02d}{k:02d}_{k + 1:02d}.png")


def write_mini_imagenet(root, split="train", colors=((255, 0, 0), (0, 0, 255)), per_class=2):
    for k, color in enumerate(colors):
        d = root / split / f"n0{k}532829"
        d.mkdir(parents=True)
        for j in range(per_class):
            Image.new("RGB", (100, 90), color).save(d / f"n0{k}532829{j:08d}.jpg", quality=95)


# --- real sources from their formats -----------------------------------------------------------


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_idx_sources_load_from_raw_files(tmp_path, name, folder):
    write_mnist_family(tmp_path, folder)
    for split, n in (("train", 12), ("test", 7)):
        d = load(name, split, root=tmp_path)
        assert d.images.shape == (n, 1, 28, 28) and d.images.dtype == torch.float32
        assert d.labels.tolist() == [i % 10 for i in range(n)]
        assert d.num_classes == 10 and len(d.class_names) == 10
        assert 0 <= d.images.min() and d.images.max() == 1
        assert all(d.images[i, 0, 1, i] == 1 for i in range(n))  # (row, column) kept
        assert d.name == name


def test_idx_gz_only_says_how_to_unpack(tmp_path):
    raw = write_mnist_family(tmp_path, "MNIST")
    for f in raw.iterdir():
        f.rename(f.with_name(f.name + ".gz"))
    with pytest.raises(RayclError, match="gunzip"):
        load("mnist", "train", root=tmp_path)


def test_cifar10_loads_pickled_batches(tmp_path):
    write_cifar10(tmp_path)
    d = load("cifar10", "train", root=tmp_path)
    assert d.images.shape == (20, 3, 32, 32)
    assert d.labels.tolist() == [(b + i) % 10 for b in range(1, 6) for i in range(4)]
    assert d.class_names[0] == "airplane" and d.num_classes == 10
    assert d.coarse_labels is None
    for i in range(4):  # channel planes and (row, column) placed right
        assert d.images[i, :, 2, i].tolist() == [1.0, 0.0, 0.0]
    t = load("cifar10", "test", root=tmp_path)
    assert t.images.shape == (3, 3, 32, 32) and t.labels.tolist() == [9, 0, 1]
    assert 0 <= float(t.images.min()) and float(t.images.max()) <= 1


def test_cifar100_gives_fine_and_coarse_labels(tmp_path):
    write_cifar100(tmp_path)
    d = load("cifar100", "train", root=tmp_path)
    assert d.images.shape == (6, 3, 32, 32)
    assert d.labels.tolist() == [99, 98, 97, 96, 95, 94]
    assert d.num_classes == 100 and d.class_names[99] == "fine99"
    assert d.coarse_labels.tolist() == [19, 18, 17, 16, 15, 14]
    assert len(d.coarse_names) == 20 and d.coarse_names[19] == "coarse19"
    sub = d.subset([1, 3])  # coarse labels follow a subset
    assert sub.coarse_labels.tolist() == [18, 16]
    t = load("cifar100", "test", root=tmp_path)
    assert t.coarse_labels.tolist() == [19, 18, 17, 16] and len(t) == 4


def test_svhn_mat_maps_ten_to_zero(tmp_path):
    write_svhn(tmp_path)
    d = load("svhn", "train", root=tmp_path)
    assert d.images.shape == (5, 3, 32, 32)
    assert d.labels.tolist() == [0, 1, 2, 0, 9]
    assert d.num_classes == 10
    for i in range(5):  # X is (H, W, C, N)
        assert d.images[i, :, 3, i].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(RayclError, match="test_32x32.mat"):
        load("svhn", "test", root=tmp_path)


def test_omniglot_folders_ink_is_one(tmp_path):
    write_omniglot(tmp_path / "omniglot-py" / "images_background")
    d = load("omniglot", "background", root=tmp_path)
    assert d.name == "omniglot-background"
    assert d.images.shape == (12, 1, 28, 28)
    assert d.num_classes == 4 and d.class_names[0] == "Alphabet_of_the_Magi/character01"
    assert d.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    # The bar (rows 40-59 of 105) is ink = 1; the white paper is 0.
    assert float(d.images[:, 0, 13, 14].min()) == 1.0 and float(d.images[:, 0, 0].max()) == 0.0
    native = load("omniglot", "background", root=tmp_path, size=None)
    assert native.images.shape == (12, 1, 105, 105)
    assert native.images[0, 0, 50, 50] == 1 and native.images[0, 0, 20, 50] == 0


def test_omniglot_evaluation_unzipped_into_root(tmp_path):
    write_omniglot(tmp_path / "images_evaluation", alphabets=("Angelic",), characters=3, drawings=2)
    d = load("omniglot", "evaluation", root=tmp_path)
    assert d.images.shape == (6, 1, 28, 28) and d.num_classes == 3 and d.name == "omniglot-evaluation"
    with pytest.raises(RayclError, match="images_background"):
        load("omniglot", "background", root=tmp_path)


def test_mini_imagenet_class_folders(tmp_path):
    write_mini_imagenet(tmp_path)
    d = load("mini-imagenet", "train", root=tmp_path)
    assert d.images.shape == (4, 3, 84, 84)
    assert d.labels.tolist() == [0, 0, 1, 1] and d.class_names == ["n00532829", "n01532829"]
    mean = d.images.mean(dim=(2, 3))
    assert torch.allclose(mean[0], torch.tensor([1.0, 0.0, 0.0]), atol=0.03)
    assert torch.allclose(mean[3], torch.tensor([0.0, 0.0, 1.0]), atol=0.03)
    assert load("mini-imagenet", "train", root=tmp_path, size=32).shape == (3, 32, 32)


def test_mini_imagenet_images_folder_with_split_csv(tmp_path):
    (tmp_path / "images").mkdir()
    rows = ["filename,label"]
    for k, (wnid, color) in enumerate([("n02110063", (0, 255, 0)), ("n01930112", (255, 255, 255))]):
        for j in range(3):
            Image.new("RGB", (500, 375), color).save(tmp_path / "images" / f"{wnid}{j:08d}.jpg")
            rows.append(f"{wnid}{j:08d}.jpg,{wnid}")
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    d = load("mini-imagenet", "val", root=tmp_path)
    assert d.images.shape == (6, 3, 84, 84) and d.class_names == ["n01930112", "n02110063"]  # sorted wnids
    assert d.labels.tolist() == [1, 1, 1, 0, 0, 0]
    assert torch.allclose(d.images[0].mean(dim=(1, 2)), torch.tensor([0.0, 1.0, 0.0]), atol=0.03)
    assert torch.allclose(d.images[5], torch.ones(3, 84, 84), atol=0.03)
    with pytest.raises(RayclError, match=r"'mini-imagenet'.*test.csv"):
        load("mini-imagenet", "test", root=tmp_path)


# --- clear errors ------------------------------------------------------------------------------

REAL = ["mnist", "fashion-mnist", "kmnist", "svhn", "cifar10", "cifar100", "omniglot", "mini-imagenet"]


@pytest.mark.parametrize("name", REAL)
def test_missing_and_empty_root_name_dataset_path_and_fix(tmp_path, name):
    missing = tmp_path / "nowhere"
    with pytest.raises(RayclError) as e:
        load(name, root=missing)
    msg = str(e.value)
    assert f"'{name}'" in msg and str(missing) in msg and "To obtain it" in msg and "does not exist" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RayclError) as e:
        load(name, root=empty)
    msg = str(e.value)
    assert f"'{name}'" in msg and str(empty) in msg and "To obtain it" in msg
    with pytest.raises(RayclError, match="--data-root"):
        load(name)


def _truncate(path, keep: int):
    path.write_bytes(path.read_bytes()[:keep])


def test_truncated_idx_is_a_clear_error(tmp_path):
    raw = write_mnist_family(tmp_path, "MNIST")
    _truncate(raw / "train-images-idx3-ubyte", 1000)
    with pytest.raises(RayclError, match=r"'mnist'.*MNIST.*To obtain it"):
        load("mnist", "train", root=tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"garbage")
    with pytest.raises(RayclError, match="'mnist'"):
        load("mnist", "train", root=tmp_path)


def test_garbage_and_foreign_pickles_are_refused(tmp_path):
    base = write_cifar10(tmp_path)
    (base / "data_batch_3").write_bytes(b"this is not a pickle")
    with pytest.raises(RayclError, match=r"'cifar10'.*cifar-10-batches-py.*To obtain it"):
        load("cifar10", "train", root=tmp_path)
    # A pickle that would call a function when loaded is refused before it runs.
    victim = tmp_path / "created-by-pickle"

    class Opener:
        def __reduce__(self):
            return (open, (str(victim), "w"))

    (base / "data_batch_3").write_bytes(pickle.dumps(Opener(), protocol=2))
    with pytest.raises(RayclError, match="unexpected object .*open"):
        load("cifar10", "train", root=tmp_path)
    assert not victim.exists()
    dump(base / "data_batch_3", {"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4})
    with pytest.raises(RayclError, match=r"data_batch_3: .*expected \(N, 3072\)"):
        load("cifar10", "train", root=tmp_path)
    base100 = write_cifar100(tmp_path)
    _truncate(base100 / "train", 500)
    with pytest.raises(RayclError, match="'cifar100'"):
        load("cifar100", "train", root=tmp_path)


def test_malformed_mat_png_and_jpeg_are_clear_errors(tmp_path):
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, but no")
    with pytest.raises(RayclError, match=r"'svhn'.*train_32x32.mat.*To obtain it"):
        load("svhn", root=tmp_path / "svhn")
    folder = tmp_path / "omni" / "omniglot-py" / "images_background"
    write_omniglot(folder)
    next(folder.glob("*/*/*.png")).write_bytes(b"\x89PNG broken")
    with pytest.raises(RayclError, match=r"'omniglot'.*images_background"):
        load("omniglot", root=tmp_path / "omni")
    write_mini_imagenet(tmp_path / "mini")
    next((tmp_path / "mini").glob("train/*/*.jpg")).write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(RayclError, match="'mini-imagenet'"):
        load("mini-imagenet", root=tmp_path / "mini")
    with pytest.raises(RayclError, match="no download"):
        load("mini-imagenet", root=tmp_path / "mini", download=True)


@pytest.mark.parametrize("name", ["mnist", "svhn", "cifar100", "omniglot"])
def test_download_without_network_is_a_clear_error(tmp_path, monkeypatch, name):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(RayclError, match=rf"'{name}'.*{tmp_path}.*To obtain it"):
        load(name, root=tmp_path / "new", download=True)


def test_unknown_source_and_split():
    with pytest.raises(RayclError, match="choose one of"):
        load("imagenet-21k")
    with pytest.raises(RayclError, match="splits are"):
        load("digits", "validation")


def test_cli_missing_root_exits_2_with_the_message(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["data", "preview", "mnist", "--out", str(out), "--data-root", "/missing"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'mnist'" in err and "/missing" in err and "To obtain it" in err
    assert "Traceback" not in err and not out.exists()


# --- offline sources ---------------------------------------------------------------------------


def test_digits_splits_are_disjoint_and_cover_all():
    full, train, test = load("digits", "all"), load("digits", "train"), load("digits", "test")
    assert len(full) == 1797 and full.shape == (1, 8, 8) and full.num_classes == 10
    assert len(train) + len(test) == 1797 and len(test) == 599

    def rows(d):
        return sorted(bytes(x.numpy().tobytes()) + bytes([y]) for x, y in zip(d.images, d.labels.tolist()))

    # Together the splits are exactly the full set's multiset of (image, label): a partition.
    assert sorted(rows(train) + rows(test)) == rows(full)
    assert 0 <= float(full.images.min()) and float(full.images.max()) == 1.0


def test_glyph_splits_disjoint_classes():
    bg, ev, every = load("glyphs", "background"), load("glyphs", "evaluation"), load("glyphs", "all")
    assert (bg.num_classes, ev.num_classes, every.num_classes) == (300, 100, 400)
    assert bg.images.shape == (6000, 1, 28, 28) and len(ev) == 2000
    assert torch.bincount(bg.labels).tolist() == [20] * 300
    assert torch.bincount(ev.labels).tolist() == [20] * 100
    assert not set(bg.class_names) & set(ev.class_names)
    # evaluation is 'all' restricted to classes 300..399, relabelled from 0
    assert torch.equal(ev.images, every.images[every.labels >= 300])
    assert bg.name == "glyphs-background" and every.name == "glyphs"
    assert 0 <= float(every.images.min()) and float(every.images.max()) == 1.0
    ink = every.images.mean(dim=(1, 2, 3))
    assert float(ink.min()) > 0.02  # every drawing has strokes
    # drawings of one class look more alike than drawings of different classes
    flat = every.images[:200].flatten(1)
    d = torch.cdist(flat, flat)
    same = every.labels[:200, None] == every.labels[None, :200]
    assert d[same & ~torch.eye(200, dtype=torch.bool)].mean() < 0.8 * d[~same].mean()


# The drawing's fingerprint: if it changes on purpose, bump offline.GLYPH_VERSION (so stale
# caches are ignored) and update this.
GLYPHS_8PX_SEED0_SHA256 = "1496ac9b57b08c4880ba730dcf271f2a9dae3f92f01fb266e3f96c58adef7700"


def test_glyphs_deterministic_from_seed(glyph_cache):
    import hashlib

    a = offline._draw_glyphs(8, seed=0)
    assert a.shape == (400, 20, 8, 8) and a.dtype == np.uint8
    assert hashlib.sha256(a.tobytes()).hexdigest() == GLYPHS_8PX_SEED0_SHA256
    assert np.array_equal(a, offline._draw_glyphs(8, seed=0))
    assert not np.array_equal(a, offline._draw_glyphs(8, seed=1))


def test_glyph_cache_reused_validated_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RAYCL_CACHE", str(tmp_path))
    first = offline.glyph_pixels(8, seed=5)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"glyphs-{offline.generator_key()}-8px-seed5.npz"]  # no temp files left

    def no_drawing(*a):
        raise AssertionError("drew glyphs despite a valid cache")

    real_draw = offline._draw_glyphs
    monkeypatch.setattr(offline, "_draw_glyphs", no_drawing)
    assert np.array_equal(offline.glyph_pixels(8, seed=5), first)  # read back, not redrawn

    monkeypatch.setattr(offline, "_draw_glyphs", real_draw)
    for corrupt in (files[0].read_bytes()[:300], b"garbage"):
        files[0].write_bytes(corrupt)
        assert np.array_equal(offline.glyph_pixels(8, seed=5), first)
        assert "corrupt" in caplog.text
        monkeypatch.setattr(offline, "_draw_glyphs", no_drawing)
        assert np.array_equal(offline.glyph_pixels(8, seed=5), first)  # rewritten whole
        monkeypatch.setattr(offline, "_draw_glyphs", real_draw)

    tampered = first.copy()
    tampered[0, 0, 0, 0] ^= 1
    np.savez(files[0], images=tampered, sha256=np.array("0" * 64))  # valid file, wrong checksum
    assert np.array_equal(offline.glyph_pixels(8, seed=5), first)


def test_glyph_cache_unwritable_still_draws(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RAYCL_CACHE", str(blocker / "cache"))
    x = offline.glyph_pixels(8, seed=6)
    # the very drawing a writable cache would hold, a warning naming the fix, nothing written
    assert x.shape == (400, 20, 8, 8) and x.dtype == np.uint8
    assert np.array_equal(x, offline._draw_glyphs(8, seed=6))
    assert "cannot write glyph cache" in caplog.text and "RAYCL_CACHE" in caplog.text
    assert blocker.read_text() == "not a folder" and [p.name for p in tmp_path.iterdir()] == ["file"]


def test_shapes_source():
    d = load("shapes")
    assert d.images.shape == (1600, 1, 8, 8) and d.num_classes == 8
    assert torch.bincount(d.labels).tolist() == [200] * 8
    assert 0 <= float(d.images.min()) and float(d.images.max()) <= 1
    assert torch.equal(d.images, load("shapes").images)  # deterministic
    big = load("shapes", size=16, per_class=5)
    assert big.images.shape == (40, 1, 16, 16)
    d.name = "renamed"  # results are copies: the cached source is untouched
    assert load("shapes").name == "shapes"


def test_cli_preview_digits_writes_a_png(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "preview", "digits", "--out", str(out)]) == 0
    assert "1797 images" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 400 and im.height > 400
        px = np.asarray(im.convert("L"), dtype=float)
    assert px.std() > 20  # not blank
    assert not list(tmp_path.glob(".*.tmp"))


# --- ImageSet, to_common, mix ----------------------------------------------------------------


def small_set(n_classes=4, per=3, c=1, hw=6, name="toy") -> ImageSet:
    labels = torch.arange(n_classes).repeat_interleave(per)
    images = torch.rand(len(labels), c, hw, hw)
    return ImageSet(name, images, labels, [f"c{i}" for i in range(n_classes)],
                    coarse_labels=labels // 2, coarse_names=["low", "high"])


def test_imageset_subset_classes_by_class():
    d = small_set()
    s = d.subset([0, 5, 11])
    assert s.labels.tolist() == [0, 1, 3] and torch.equal(s.images, d.images[[0, 5, 11]])
    assert s.coarse_labels.tolist() == [0, 0, 1]
    k = d.classes([3, 1])
    assert k.class_names == ["c3", "c1"] and k.num_classes == 2
    assert k.labels.tolist() == [1, 1, 1, 0, 0, 0]  # relabelled in `keep` order
    assert torch.equal(k.images, torch.cat([d.images[3:6], d.images[9:12]]))
    assert k.coarse_labels.tolist() == [0, 0, 0, 1, 1, 1]
    groups = small_set().subset([11, 0, 4, 3]).by_class()
    assert [g.tolist() for g in groups] == [[1], [2, 3], [], [0]]
    assert d.shape == (1, 6, 6) and len(d) == 12
    with pytest.raises(ValueError):
        ImageSet("bad", torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long), ["a"])


def test_to_common_channels_and_size():
    rgb = small_set(c=3, hw=32)
    g = to_common(rgb, size=28, channels=1)
    assert g.images.shape == (12, 1, 28, 28)
    same = to_common(rgb, size=32, channels=1)
    assert torch.allclose(same.images[:, 0], rgb.images.mean(1))
    gray = small_set(c=1, hw=8)
    c3 = to_common(gray, size=8, channels=3)
    assert c3.images.shape == (12, 3, 8, 8) and torch.equal(c3.images[:, 2], gray.images[:, 0])
    up = to_common(gray, size=(16, 12))
    assert up.images.shape == (12, 1, 16, 12) and 0 <= float(up.images.min()) and float(up.images.max()) <= 1
    with pytest.raises(ValueError):
        to_common(rgb, channels=2)


def test_mix_offsets_labels_and_prefixes_names():
    a, b = small_set(3, 2, c=1, hw=8, name="a"), small_set(2, 4, c=3, hw=32, name="b")
    m = mix([a, b], size=28, channels=1)
    assert m.images.shape == (14, 1, 28, 28) and m.name == "a+b"
    assert m.num_classes == 5 and m.class_names == ["a/c0", "a/c1", "a/c2", "b/c0", "b/c1"]
    assert m.labels.tolist() == [0, 0, 1, 1, 2, 2] + [3] * 4 + [4] * 4
    assert mix([a, b], name="both").name == "both"
