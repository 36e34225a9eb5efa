"""The Atari task network, as baby-a3c (Greydanus 2017) builds it.

80x80 grayscale -> 4 x [Conv2d(32, 3x3, stride 2, pad 1) + ELU] -> 32x5x5 = 800
-> GRUCell(800, 256) -> critic (256 -> 1) and actor (256 -> actions).

With the full 18-action set its flat vector has 845,491 weights: 11 sub-vectors of 76,863
with 2 zeros of padding, the 845,493 = 11 x 76,863 of the authors' Self-Net code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FULL_ACTIONS = 18
HIDDEN = 256


class ActorCritic(nn.Module):
    def __init__(self, num_actions: int = FULL_ACTIONS, channels: int = 1, memsize: int = HIDDEN):
        super().__init__()
        self.num_actions, self.memsize = num_actions, memsize
        self.conv1 = nn.Conv2d(channels, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.gru = nn.GRUCell(32 * 5 * 5, memsize)
        self.critic_linear = nn.Linear(memsize, 1)
        self.actor_linear = nn.Linear(memsize, num_actions)

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(batch, self.memsize)

    def forward(self, x: torch.Tensor, hx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, 1, 80, 80) in [0, 1], hx (B, 256) -> value (B, 1), action logits (B, A), new hx."""
        x = F.elu(self.conv1(x))
        x = F.elu(self.conv2(x))
        x = F.elu(self.conv3(x))
        x = F.elu(self.conv4(x))
        hx = self.gru(x.reshape(-1, 32 * 5 * 5), hx)
        return self.critic_linear(hx), self.actor_linear(hx), hx


def num_params(num_actions: int = FULL_ACTIONS) -> int:
    """Closed form, so sizes can be checked without building a network."""
    conv = (1 * 9 + 1) * 32 + 3 * (32 * 9 + 1) * 32
    gru = 3 * HIDDEN * (800 + HIDDEN) + 2 * 3 * HIDDEN
    return conv + gru + (HIDDEN + 1) + (HIDDEN + 1) * num_actions
