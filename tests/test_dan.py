import itertools

import pytest
import torch

from raycl.dan import (
    MLP,
    DANAutoEncoder,
    DANLayer,
    DANNetwork,
    Phenotype,
    WarpNetwork,
    build_dan_classifier,
    build_dan_regressor,
    count_parameters,
    dan_param_count,
    match_warp_to,
    reset_phenotype,
    reset_synapses,
    split_parameters,
)



pytestmark = pytest.mark.usefixtures("one_thread")

@pytest.fixture(autouse=True)
def float64():
    """The 1e-6 equivalences below are about algebra, not rounding."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "sharing,skips,readout,hidden",
    list(itertools.product(["net0", "net1", "net2"], [False, True], ["linear", "dan"], [(7,), (7, 5), (6, 5, 4)])),
)
def test_network_shapes(sharing, skips, readout, hidden):
    net = DANNetwork(3, hidden, 2, n_channels=4, sharing=sharing, skips=skips, readout=readout, generator=g())
    x = torch.randn(11, 3, generator=g(1))
    out, hid = net(x, return_hidden=True)
    assert out.shape == (11, 2)
    assert [h.shape for h in hid] == [(11, w) for w in hidden]
    assert torch.equal(net(x), out)
    if readout == "dan":
        assert out.abs().max() <= 1.0  # output DANs end in tanh
    # analytic count agrees with the real module
    assert count_parameters(net)["total"] == dan_param_count(3, hidden, 2, 4, sharing, skips, readout)
    n_phen = {"net0": 1, "net1": len(net.layers), "net2": len(net.layers)}[sharing]
    assert len(net.phenotypes()) == n_phen


def test_skip_layout_chapter5():
    net = build_dan_regressor()
    assert [layer.skip_in for layer in net.layers] == [(), (1,), (40,)]  # 0->2 and 1->3
    assert net.layers[0].weight.shape == (1, 40 * 40)
    assert net.layers[2].skip_weights[0].shape == (40, 1 * 40)
    assert net(torch.randn(5, 1)).shape == (5, 1)


def test_skip_adds_to_dan_input():
    layer = DANLayer(3, 4, 5, skip_in=(2,), phenotype=Phenotype(5))
    x, s = torch.randn(6, 3), torch.randn(6, 2)
    ref = (x @ layer.weight + layer.bias + s @ layer.skip_weights[0]).view(6, 4, 5)
    assert torch.allclose(layer.dan_input(x, (s,)), ref)
    with pytest.raises(ValueError):
        layer(x)  # missing the skip input


def _loop_reference(layer: DANLayer, x, skips=(), shared=None):
    """Per-neuron reference: each DAN i sees its own slice of the synaptic signal."""
    z = x @ layer.weight + layer.bias
    for s, w in zip(skips, layer.skip_weights):
        z = z + s @ w
    c = layer.n_channels
    outs = []
    for i in range(layer.n_out):
        xi = z[:, i * c : (i + 1) * c]
        phen = shared if shared is not None else layer.phenotype
        if phen.n_units is not None:
            phen = phen.unit(i)
        h = xi
        for w, b in zip(phen.weights, phen.biases):
            h = torch.tanh(h @ w + b)
        outs.append(h[:, 0])
    return torch.stack(outs, 1)


@pytest.mark.parametrize("bank", [False, True])
def test_batched_layer_equals_per_neuron_loop(bank):
    torch.manual_seed(0)
    phen = Phenotype(6, n_units=9 if bank else None, gain=1.7)
    for b in phen.biases:  # non-zero biases so they are exercised too
        torch.nn.init.normal_(b)
    layer = DANLayer(5, 9, 6, skip_in=(4,), phenotype=phen)
    x, s = torch.randn(13, 5), torch.randn(13, 4)
    assert (layer(x, (s,)) - _loop_reference(layer, x, (s,))).abs().max() < 1e-6


def test_shared_phenotype_net_equals_loop():
    torch.manual_seed(1)
    net = DANNetwork(4, (6, 5), 1, n_channels=3, sharing="net0", skips=True, readout="dan")
    x = torch.randn(8, 4)
    acts = [x]
    for k, layer in enumerate(net.layers, start=1):
        skips = (acts[k - 2],) if layer.skip_in else ()
        acts.append(_loop_reference(layer, acts[-1], skips, shared=net.phenotype))
    assert (net(x) - acts[-1]).abs().max() < 1e-6


def test_phenotype_bank_units_independent():
    bank = Phenotype(4, n_units=3)
    x = torch.randn(2, 3, 4)
    y = bank(x)
    assert y.shape == (2, 3, 1)
    for i in range(3):
        assert torch.allclose(y[:, i], bank.unit(i)(x[:, i]))


def _models():
    dan = DANNetwork(5, (8, 6), 3, 4, sharing="net1", skips=True, readout="dan")
    return {
        "net0": DANNetwork(5, (8, 6), 3, 4, sharing="net0", skips=True),
        "net1": dan,
        "net2": DANNetwork(5, (8, 6), 3, 4, sharing="net2"),
        "ae": DANAutoEncoder(5, (8,), 2, 4),
        "mlp": MLP(5, (8, 6), 3),
        "warp": match_warp_to(dan),
    }


@pytest.mark.parametrize("name", ["net0", "net1", "net2", "ae", "mlp", "warp"])
def test_split_covers_every_parameter_once(name):
    model = _models()[name]
    theta, phi = split_parameters(model)
    names = [n for n, _ in model.named_parameters()]
    assert sorted(theta) + sorted(phi) != [] and set(theta).isdisjoint(phi)
    assert sorted([*theta, *phi]) == sorted(names)
    if name == "mlp":
        assert not phi
    else:
        assert phi and theta
    if name == "warp":
        assert all(k.startswith("warp_layers.") for k in phi)
    x = torch.randn(4, 5)
    out = torch.func.functional_call(model, {**theta, **phi}, (x,))
    assert torch.equal(out, model(x))
    # a different φ changes the output only through φ
    phi2 = {k: v + 0.1 for k, v in phi.items()}
    if phi:
        assert not torch.allclose(torch.func.functional_call(model, {**theta, **phi2}, (x,)), out)


def test_split_gradients_flow_to_both_sets():
    net = build_dan_regressor(hidden=(6, 6), n_channels=5)
    theta, phi = split_parameters(net)
    x = torch.randn(7, 1, generator=g(2))
    params = {**theta, **phi}

    def loss_at(p):
        return torch.func.functional_call(net, p, (x,)).pow(2).mean()

    grads = dict(zip(params, torch.autograd.grad(loss_at(params), list(params.values()))))
    assert set(grads) == set(theta) | set(phi)
    assert all(grads[n].abs().sum() > 0 for n in params)  # every synapse and phenotype parameter is reached
    # and each gradient is the loss's slope: central differences on the largest entry of every tensor
    eps = 1e-6
    for n, v in params.items():
        i = int(grads[n].abs().flatten().argmax())
        slopes = []
        for sign in (1, -1):
            bumped = v.detach().clone().flatten()
            bumped[i] += sign * eps
            with torch.no_grad():
                slopes.append(float(loss_at({**params, n: bumped.view_as(v)})))
        assert (slopes[0] - slopes[1]) / (2 * eps) == pytest.approx(float(grads[n].flatten()[i]), rel=1e-5, abs=1e-9), n


def test_resets_are_seeded_and_touch_only_their_set():
    net = DANNetwork(3, (5,), 2, 4, sharing="net2", skips=False)
    theta, phi = split_parameters(net)
    t0 = {k: v.clone() for k, v in theta.items()}
    reset_phenotype(net, gain=2.0, generator=g(3))
    assert all(torch.equal(t0[k], v) for k, v in theta.items())
    p1 = {k: v.clone() for k, v in phi.items()}
    reset_phenotype(net, gain=2.0, generator=g(3))
    assert all(torch.equal(p1[k], v) for k, v in phi.items())
    reset_synapses(net, generator=g(4))
    assert all(torch.equal(p1[k], v) for k, v in phi.items())
    assert not torch.equal(t0["layers.0.weight"], theta["layers.0.weight"])
    # phenotype weights ~ N(0, gain²/fan_in), biases 0
    big = Phenotype(400, hidden=(300,), gain=2.0)
    assert abs(big.weights[0].std().item() - 2.0 / 20) < 0.005
    assert big.biases[0].abs().sum() == 0


@pytest.mark.parametrize("target", [100_000, 1_000_000, 10_000_000, 200_000_000])
def test_classifier_hits_target_params(target):
    kw = dict(input_dim=784, output_dim=10, n_channels=4, sharing="net1", skips=False, readout="linear")
    from raycl.dan import width_for_params

    h = width_for_params(target, 2, **kw)
    n = dan_param_count(hidden=(h, h), **kw)
    assert abs(n - target) / target < 0.03
    if target <= 1_000_000:  # build it for real and check the count
        net = build_dan_classifier(784, 10, n_channels=4, target_params=target, sharing="net1")
        assert count_parameters(net)["total"] == n


def test_classifier_trains():
    torch.manual_seed(0)
    x = torch.randn(64, 10)
    y = (x[:, 0] > 0).long()
    net = build_dan_classifier(10, 2, hidden=(16,), n_channels=3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        grads = torch.autograd.grad(loss, list(net.parameters()))
        with torch.no_grad():
            for p, gr in zip(net.parameters(), grads):
                p -= 0.5 * gr
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "dan",
    [
        lambda: build_dan_regressor(),
        lambda: DANNetwork(784, (64, 64), 10, 4, sharing="net1"),
        lambda: DANNetwork(64, (100, 50), 10, 8, sharing="net2", skips=True, readout="dan"),
        lambda: DANAutoEncoder(64, (100,), 10, 4),
    ],
)
def test_warp_matches_dan_param_count(dan):
    model = dan()
    warp = match_warp_to(model)
    n_dan, n_warp = count_parameters(model)["total"], count_parameters(warp)["total"]
    assert abs(n_warp - n_dan) / n_dan < 0.05
    assert isinstance(warp, WarpNetwork)
    x = torch.randn(3, model.input_dim)
    assert warp(x).shape == model(x).shape


def test_autoencoder_encode_decode():
    ae = DANAutoEncoder(12, (10,), 3, 4)
    x = torch.rand(5, 12)
    z = ae.encode(x)
    assert z.shape == (5, 3)
    assert torch.allclose(ae.decode(z), ae(x))
    loss = ae.loss(x)
    assert loss.ndim == 0 and loss.item() == pytest.approx((ae(x) - x).pow(2).mean().item(), rel=1e-12)
    assert z.abs().max() <= 1.0  # the code is the output of a DAN layer (tanh-bounded)


def test_bad_options():
    with pytest.raises(ValueError, match="sharing"):
        DANNetwork(2, (3,), 1, 4, sharing="net7")
    with pytest.raises(ValueError, match="readout"):
        DANNetwork(2, (3,), 1, 4, readout="softmax")
