import itertools

import pytest
import torch

from raycl.dan import DANNetwork, split_parameters
from raycl.dan.fused import FusedDAN



pytestmark = pytest.mark.usefixtures("one_thread")

@pytest.mark.parametrize(
    "sharing,skips,readout,hidden",
    list(itertools.product(["net0", "net1", "net2"], [False, True], ["linear", "dan"], [(6,), (6, 5), (5, 4, 3)])),
)
def test_fused_gradients_equal_autograd(sharing, skips, readout, hidden):
    gen = torch.Generator().manual_seed(0)
    net = DANNetwork(2, hidden, 3, 4, sharing, skips, readout, generator=gen).double()
    for p in net.parameters():  # non-zero phenotype biases too
        torch.nn.init.normal_(p, std=0.5, generator=gen) if p.dim() == 1 else None
    x, y = torch.randn(7, 2, dtype=torch.float64, generator=gen), torch.randn(7, 3, dtype=torch.float64, generator=gen)
    loss = torch.nn.functional.mse_loss(net(x), y)
    names, params = zip(*net.named_parameters())
    ref = dict(zip(names, torch.autograd.grad(loss, params)))
    f_loss, grads = FusedDAN(net).loss_and_grads(x, y)
    assert abs(f_loss.item() - loss.item()) < 1e-12
    assert sorted(grads) == sorted(ref)
    for k in ref:
        assert torch.allclose(grads[k], ref[k], atol=1e-12, rtol=1e-9), k
    _, phi = split_parameters(net)
    _, phi_only = FusedDAN(net).loss_and_grads(x, y, want_theta=False)
    assert sorted(phi_only) == sorted(phi)
