import pytest
import torch

from raycl.data import ImageSet
from raycl.hyper.config import preset
from raycl.hyper.diagnostics import centred_cosine
from raycl.hyper.evaluate import Contender, compare
from raycl.hyper.models import build_model
from raycl.hyper.stream import prepare_pool

torch.set_num_threads(1)


def test_centred_cosine_identical_rows_is_one_and_orthogonal_codes_zero():
    row = torch.tensor([0.3, -0.2, 0.9, 0.1])
    same = centred_cosine(row.repeat(4, 1), torch.tensor([0, 0, 1, 1]))
    assert same["within"] == pytest.approx(1.0)
    assert same["between"] == pytest.approx(1.0)
    h = torch.tensor([[1.0, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]])  # zero-mean, mutually orthogonal
    ortho = centred_cosine(h, torch.tensor([0, 0, 1]))
    assert ortho["within"] == pytest.approx(0.0, abs=1e-12)
    assert ortho["between"] == pytest.approx(0.0, abs=1e-12)


def _pool(name, n_classes, seed, nan=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_classes * 8, 1, 8, 8, generator=g)
    if nan:
        x = torch.full_like(x, float("nan"))
    y = torch.arange(n_classes).repeat_interleave(8)
    return prepare_pool(ImageSet(name, x, y, [str(i) for i in range(n_classes)]), 8)


def test_learning_rates_are_chosen_without_touching_meta_test_or_meta_eval():
    cfg = preset("tiny", deploy_i=2, deploy_holdout=2)
    model, theta0, phi0 = build_model(cfg)
    cont = [Contender("a", model, theta0, phi0), Contender("b", model, theta0, phi0, kind="replay", budget=20)]
    lrs = (0.01, 0.1, 1.0)
    clean = {"meta-train": _pool("tr", 12, 0), "meta-test": _pool("te", 12, 1), "meta-eval": _pool("ev", 10, 2)}
    poisoned = {**clean, "meta-test": _pool("te", 12, 1, nan=True), "meta-eval": _pool("ev", 10, 2, nan=True)}
    _, chosen_clean = compare(cont, clean, cfg, 3, seeds=2, lrs=lrs, progress=False)
    rows, chosen_poisoned = compare(cont, poisoned, cfg, 3, seeds=2, lrs=lrs, progress=False)
    assert chosen_clean == chosen_poisoned
    # the poisoned sets were really deployed on (and gave NaN-driven chance accuracy), yet changed no choice
    assert {r["set"] for r in rows} == {"meta-train", "meta-test", "meta-eval"}


def test_a_cached_deployment_is_read_back_only_for_the_same_network_and_data(tmp_path, monkeypatch):
    import raycl.hyper.evaluate as ev

    cfg = preset("tiny", deploy_i=2, deploy_holdout=2)
    model, theta0, phi0 = build_model(cfg)
    sets = {"meta-train": _pool("tr", 12, 0), "meta-eval": _pool("ev", 10, 2)}
    a = [Contender("a", model, theta0, phi0)]
    fresh = compare(a, sets, cfg, 3, seeds=2, lrs=(0.1, 1.0), progress=False)
    assert compare(a, sets, cfg, 3, seeds=2, lrs=(0.1, 1.0), progress=False, cache=tmp_path) == fresh
    assert len(list(tmp_path.glob("*.json"))) == 1

    def no_deploying(*args, **kwargs):
        raise AssertionError("deployed again")

    monkeypatch.setattr(ev, "run_contender", no_deploying)
    assert compare(a, sets, cfg, 3, seeds=2, lrs=(0.1, 1.0), progress=False, cache=tmp_path) == fresh
    other_phi = {n: p + 0.01 for n, p in phi0.items()}
    with pytest.raises(AssertionError, match="deployed again"):
        compare([Contender("a", model, theta0, other_phi)], sets, cfg, 3, seeds=2, lrs=(0.1, 1.0), progress=False,
                cache=tmp_path)


def test_report_hyper_compares_every_run_with_its_baselines_and_iid_control(tmp_path):
    from raycl.cli import main

    for name, extra in (("first-order", []), ("through-2", ["--phi-grad", "through-update", "--unroll", "2"])):
        assert main(["hyper-train", "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / name), *extra]) == 0
    assert main(["report", "hyper", str(tmp_path), "--d", "3", "--sequences", "2", "--lrs", "0.1", "1"]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "## All runs" in md and "`first-order`" in md and "`through-2`" in md
    assert "through 2 steps" in md
    for contender in ("IID control", "random phenotype g=1.5", "random phenotype g=2.0", "tanh MLP", "iid replay (500)",
                      "iid replay (k·d)"):
        assert f"| {contender} |" in md
    # the six baselines of the two same-shaped runs were deployed once (hyper-trained and IID control: twice)
    assert len(list((tmp_path / ".deployments").glob("*.json"))) == 6 + 2 + 2
    for run in ("first-order", "through-2"):
        # the IID control is the same run with the classes shuffled: its own phenotype, same length and gradient
        main_ckpt = torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)
        iid = torch.load(tmp_path / run / "iid-control" / "checkpoint.pt", weights_only=True)
        assert iid["config"]["order"] == "iid" and main_ckpt["config"]["order"] == "sequential"
        assert iid["epoch"] == main_ckpt["epoch"] == 1
        assert iid["config"]["phi_grad"] == main_ckpt["config"]["phi_grad"]
        assert {k: v for k, v in iid["config"].items() if k != "order"} == {
            k: v for k, v in main_ckpt["config"].items() if k != "order"}
        assert any(not torch.equal(iid["server"]["phi"][n], p) for n, p in main_ckpt["server"]["phi"].items())
        assert (tmp_path / run / "report_cosine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the claims name a verdict for memory and generalization on both held-out sets
    claims = [line for line in md.splitlines() if line.startswith("| 3 | meta-")]
    assert {tuple(line.split(" | ")[1:3]) for line in claims} == {
        (s, k) for s in ("meta-test", "meta-eval") for k in ("memory", "generalization")}


def test_report_hyper_takes_a_real_meta_eval_set_from_eval_root(tmp_path, capsys):
    """MNIST as torchvision lays it out (IDX files) is the meta-eval set with --data-root alone;
    a root holding two such sets asks which one."""
    from test_data import write_mnist_family

    from raycl.cli import main

    results, root = tmp_path / "runs", tmp_path / "data"
    write_mnist_family(root, "MNIST", n_train=12, n_test=200)  # 20 test images per digit
    assert main(["hyper-train", "--preset", "tiny", "--epochs", "1", "--out", str(results / "a")]) == 0
    assert main(["report", "hyper", str(results), "--data-root", str(root), "--d", "3", "--sequences", "2",
                 "--lrs", "0.1", "--no-iid-control"]) == 0
    md = (results / "report.md").read_text()
    assert "Meta-eval set: mnist." in md
    study = __import__("json").loads((results / "a" / "report.json").read_text())
    assert study["key"]["eval_source"] == "mnist"
    assert "meta-eval" in study["by_d"]["3"]["results"]["hyper-trained"]
    write_mnist_family(root, "KMNIST", n_train=12, n_test=200)
    capsys.readouterr()
    assert main(["report", "hyper", str(results), "--data-root", str(root), "--d", "3"]) == 2
    err = capsys.readouterr().err
    assert "mnist and kmnist" in err and "--data mnist|" in err
