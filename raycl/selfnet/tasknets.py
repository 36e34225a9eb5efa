"""The dissertation's task networks (§2.4.2-2.4.6), as sequences of stages so that
Progress & Compress can read every layer's input and add lateral connections.

MNIST TN: conv 1->10 5x5, conv 10->20 5x5, fc 320->50, fc 50->10 = 21,840 parameters
(28x28x1 input). CIFAR TN: conv 3->6 5x5, conv 6->16 5x5, fc 400->120->84->2 = 61,326
= 3 x 20,442 (32x32x3 input); with 10 outputs (Split CIFAR-100) it has 62,006.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pool_relu(x):
    return F.relu(F.max_pool2d(x, 2))


def _relu_pool(x):
    return F.max_pool2d(F.relu(x), 2)


def _flat_relu(x):
    return F.relu(x)


class TaskNet(nn.Module):
    """layers[i] is applied to the output of post[i-1]; `forward(x, lateral)` adds
    lateral[i] (a tensor shaped like layer i's output) before post[i]."""

    arch: str = ""
    input_shape: tuple[int, int, int] = (1, 28, 28)

    def __init__(self, layers: list[nn.Module], posts: list, flatten_before: int, num_outputs: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self._posts = posts
        self._flatten_before = flatten_before
        self.num_outputs = num_outputs

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input each layer sees (for Progress & Compress's lateral adaptors)."""
        inputs = []
        for i, layer in enumerate(self.layers):
            if i == self._flatten_before:
                x = x.flatten(1)
            inputs.append(x)
            x = layer(x)
            if self._posts[i] is not None:
                x = self._posts[i](x)
        return inputs

    def forward(self, x: torch.Tensor, lateral: list | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if i == self._flatten_before:
                x = x.flatten(1)
            x = layer(x)
            if lateral is not None and lateral[i] is not None:
                x = x + lateral[i]
            if self._posts[i] is not None:
                x = self._posts[i](x)
        return x


class MnistTaskNet(TaskNet):
    arch = "mnist"
    input_shape = (1, 28, 28)

    def __init__(self, num_outputs: int = 10):
        super().__init__(
            [nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5), nn.Linear(320, 50), nn.Linear(50, num_outputs)],
            [_pool_relu, _pool_relu, _flat_relu, None],
            flatten_before=2,
            num_outputs=num_outputs,
        )


class CifarTaskNet(TaskNet):
    arch = "cifar"
    input_shape = (3, 32, 32)

    def __init__(self, num_outputs: int = 2):
        super().__init__(
            [nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5), nn.Linear(400, 120), nn.Linear(120, 84),
             nn.Linear(84, num_outputs)],
            [_relu_pool, _relu_pool, _flat_relu, _flat_relu, None],
            flatten_before=2,
            num_outputs=num_outputs,
        )


ARCHS = {"mnist": MnistTaskNet, "cifar": CifarTaskNet}


def make_tasknet(arch: str, num_outputs: int, seed: int | None = None) -> TaskNet:
    if arch not in ARCHS:
        raise ValueError(f"unknown task network '{arch}'; choose one of: {', '.join(ARCHS)}")
    if seed is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return ARCHS[arch](num_outputs)
    return ARCHS[arch](num_outputs)
