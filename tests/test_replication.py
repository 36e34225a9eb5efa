"""Independent hyper-trainings as the unit of replication: --seeds folders, bit-identical
phenotypes in-process and as Ray tasks, deployment summarised across phenotypes with paired
verdicts, learning rates chosen per metric, replay at equal budget, data provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raycl.hyper.config import preset
from raycl.hyper.evaluate import (
    Contender,
    deploy_at_rates,
    rates_for,
    run_contender,
    summarize_phenotypes,
)
from raycl.hyper.models import build_model


def phi_of(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["server"]["phi"]


def same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    """`raycl hyper-train --preset tiny --seeds 2 --seed 3 --no-ray`."""
    from raycl.cli import main

    run = tmp_path_factory.mktemp("rep") / "rep"
    assert main(["hyper-train", "--preset", "tiny", "--seeds", "2", "--seed", "3", "--no-ray", "--out", str(run)]) == 0
    return run


def test_seeds_train_independent_phenotypes_into_seed_folders(replicated, tmp_path):
    from raycl.cli import main

    listing = json.loads((replicated / "seeds.json").read_text())
    assert listing["seeds"] == [3, 4] and [r["seed"] for r in listing["runs"]] == [3, 4]
    a, b = phi_of(replicated / "seed_3"), phi_of(replicated / "seed_4")
    assert not same(a, b)  # independent: own θ0/φ0 and streams
    c3 = torch.load(replicated / "seed_3" / "checkpoint.pt", weights_only=True)
    c4 = torch.load(replicated / "seed_4" / "checkpoint.pt", weights_only=True)
    assert not torch.equal(next(iter(c3["phi0"].values())), next(iter(c4["phi0"].values())))
    # each seed folder is exactly the single run of that seed
    assert main(["hyper-train", "--preset", "tiny", "--seed", "4", "--out", str(tmp_path / "one")]) == 0
    assert same(phi_of(tmp_path / "one"), b)


def test_seeds_as_ray_tasks_give_bit_identical_phenotypes(replicated, tmp_path):
    from raycl.cli import main

    out = tmp_path / "ray"
    assert main(["hyper-train", "--preset", "tiny", "--seeds", "2", "--seed", "3", "--num-cpus", "2",
                 "--out", str(out)]) == 0
    for s in (3, 4):
        assert same(phi_of(out / f"seed_{s}"), phi_of(replicated / f"seed_{s}"))


def test_same_seed_twice_is_bit_identical(tmp_path):
    from raycl.hyper.trainer import ReferenceTrainer

    cfg = preset("tiny")
    a, b = ReferenceTrainer(cfg), ReferenceTrainer(cfg)
    a.train(progress=False)
    b.train(progress=False)
    assert same(a.phi, b.phi)


def test_deploy_summarises_across_phenotypes_with_paired_verdicts(replicated, capsys):
    from raycl.cli import main

    assert main(["deploy", str(replicated), "--d", "3", "--sequences", "2", "--no-ray", "--lrs", "0.1", "1"]) == 0
    printed = capsys.readouterr().out
    assert "over 2 phenotype(s)" in printed and "best tuned baseline" in printed
    s = json.loads((replicated / "summary.json").read_text())
    assert s["phenotypes"] == [3, 4] and s["criterion"] == "matched"
    res = s["by_d"]["3"]["results"]
    ht = res["hyper-trained"]["meta-eval"]["memory"]
    assert ht["over_phenotypes"]["n"] == 2 and ht["over_sequences"]["n"] == 4
    per = ht["per_phenotype"]
    assert ht["over_phenotypes"]["mean"] == pytest.approx(sum(per.values()) / 2)
    rp = res["random phenotype g=1"]["meta-eval"]["memory"]
    v = rp["vs_reference"]
    # the verdict is the rule documented: the paired mean beats twice the larger spread over phenotypes
    assert v["n"] == 2 and v["spread"] == max(ht["over_phenotypes"]["std"], rp["over_phenotypes"]["std"])
    assert v["ahead_by_2std"] is (v["mean"] > 2 * v["spread"])
    assert all(0 <= a <= 1 for a in [*per.values(), *rp["per_phenotype"].values()])
    diff = [per[p] - res["random phenotype g=1"]["meta-eval"]["memory"]["per_phenotype"][p] for p in per]
    assert v["mean"] == pytest.approx(sum(diff) / 2)
    for c in ("iid replay (500)", "iid replay (k·d)", "tanh MLP", "random phenotype g=2.0"):
        assert c in res
    # the rates each phenotype's contenders were reported at, per metric
    assert set(res["hyper-trained"]["meta-eval"]["lr"]) == {"3", "4"}
    import pandas as pd

    rows = pd.read_parquet(replicated / "deployment.parquet")
    assert {"phenotype", "lr_memory", "lr_generalization"} <= set(rows.columns)
    assert set(rows["phenotype"]) == {3, 4}


def test_ladder_report_reads_each_rungs_deployment_and_a_readout_rule_deploys_beside_it(replicated, tmp_path, capsys):
    from raycl.cli import main

    if not (replicated / "summary.json").exists():
        assert main(["deploy", str(replicated), "--d", "3", "--sequences", "2", "--no-ray", "--lrs", "0.1", "1"]) == 0
    out = tmp_path / "ladder.md"
    assert main(["report", "ladder", str(replicated), str(replicated), "--d", "3", "--out", str(out)]) == 0
    md = out.read_text()
    res = json.loads((replicated / "summary.json").read_text())["by_d"]["3"]["results"]
    ht = res["hyper-trained"]["meta-test"]["generalization"]["over_phenotypes"]
    assert f"| `rep` | 2, 4, 6 | meta-test | {100 * ht['mean']:.1f} ± {100 * ht['std']:.1f} |" in md
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["report", "ladder", str(replicated), "--d", "5", "--out", str(tmp_path / "l5.md")]) == 2
    assert "--d 5" in capsys.readouterr().err
    # a nearest-class-mean deployment goes beside the linear one; the linear results stay as they were
    before = (replicated / "summary.json").read_bytes()
    assert main(["deploy", str(replicated), "--d", "3", "--sequences", "2", "--no-ray", "--lrs", "0.1",
                 "--readout-rule", "ncm"]) == 0
    assert (replicated / "summary.json").read_bytes() == before
    ncm = json.loads((replicated / "summary_ncm.json").read_text())
    assert ncm["readout_rule"] == "ncm" and ncm["phenotypes"] == [3, 4]
    mem = ncm["by_d"]["3"]["results"]["hyper-trained"]["meta-eval"]["memory"]
    assert mem["over_phenotypes"]["n"] == 2 and all(0 <= a <= 1 for a in mem["per_phenotype"].values())
    assert (replicated / "deployment_ncm_d3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["deploy", str(replicated), "--d", "3", "--readout-rule", "ncm"]) == 2  # no silent replacement


def test_matched_rates_report_each_metric_at_its_own_rate():
    selected = {"memory": {"lr": 0.1}, "generalization": {"lr": 1.0}, "both": {"lr": 0.3}}
    assert rates_for(selected, "matched") == {"memory": 0.1, "generalization": 1.0}
    assert rates_for(selected, "both") == {"memory": 0.3, "generalization": 0.3}

    calls = []

    def fake(c, stream, cfg, lr, seed, rule="linear"):
        calls.append(lr)
        return [{"task": 1, "memory": lr, "generalization": -lr, "last_task": lr}]

    import raycl.hyper.evaluate as ev

    real, ev.run_contender = ev.run_contender, fake
    try:
        rows = deploy_at_rates(None, None, None, {"memory": 0.1, "generalization": 1.0}, 0)
        assert rows == [{"task": 1, "memory": 0.1, "generalization": -1.0, "last_task": 0.1, "lr_memory": 0.1,
                         "lr_generalization": 1.0}]
        calls.clear()
        deploy_at_rates(None, None, None, {"memory": 0.3, "generalization": 0.3}, 0)
        assert calls == [0.3]  # one deployment when the rates agree
    finally:
        ev.run_contender = real


def test_replay_at_equal_budget_makes_k_times_d_updates(monkeypatch):
    import raycl.hyper.evaluate as ev
    from raycl.hyper.stream import HyperStream

    cfg = preset("tiny")
    model, theta0, phi0 = build_model(cfg)
    budgets = []
    monkeypatch.setattr(ev, "deploy_replay", lambda m, t, p, st, budget, *a: budgets.append(budget) or [])
    stream = HyperStream(torch.arange(4), torch.zeros(4, 2, 64), torch.zeros(4, 2, 64))
    run_contender(Contender("r", model, theta0, phi0, kind="replay", budget=None), stream, cfg, 0.1, 0)
    run_contender(Contender("r", model, theta0, phi0, kind="replay"), stream, cfg, 0.1, 0)
    assert budgets == [cfg.k * 4, 500]


def test_summary_has_no_verdict_from_one_phenotype():
    rows = [{"contender": c, "set": "meta-eval", "phenotype": 0, "seed": s, "d": 1, "task": 1, "memory": m,
             "generalization": m, "last_task": m, "lr_memory": 0.1, "lr_generalization": 0.1}
            for c, m in (("hyper-trained", 0.9), ("random phenotype g=1", 0.5)) for s in range(3)]
    s = summarize_phenotypes(rows)
    v = s["random phenotype g=1"]["meta-eval"]["memory"]["vs_reference"]
    assert v["ahead_by_2std"] is None and v["n"] == 1 and v["mean"] == pytest.approx(0.4)


def test_a_changed_data_fingerprint_is_reported(tmp_path, capsys):
    from raycl.cli import main

    run = tmp_path / "run"
    assert main(["hyper-train", "--preset", "tiny", "--out", str(run)]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    prov = ckpt["provenance"]
    assert len(prov["data"]["meta-train"]) == 16 and prov["environment"]["torch"] == str(torch.__version__)
    assert prov["environment"]["torch_threads"] >= 1 and "cpu" in prov["environment"]
    capsys.readouterr()
    assert main(["deploy", str(run), "--d", "3", "--sequences", "2", "--lrs", "0.3"]) == 0
    assert "other data" not in capsys.readouterr().err
    ckpt["provenance"]["data"]["meta-train"] = "0" * 16  # as if trained on other pixels
    torch.save(ckpt, run / "checkpoint.pt")
    assert main(["deploy", str(run), "--d", "3", "--sequences", "2", "--lrs", "0.3", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "deployed on other data than the run trained on" in err and "meta-train" in err
    assert json.loads((run / "summary.json").read_text())["data_changed"] == ["seed 0: meta-train"]


def test_glyph_cache_name_follows_the_drawing_code(monkeypatch):
    from raycl.data import offline

    key = offline.generator_key()
    offline.generator_key.cache_clear()
    real = offline.inspect.getsource
    monkeypatch.setattr(offline.inspect, "getsource", lambda f: real(f) + "# changed")
    try:
        assert offline.generator_key() != key
    finally:
        offline.generator_key.cache_clear()
