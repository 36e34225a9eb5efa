"""Per-sample image distortions for DALBT (§4.4.1): random resized crop, then randomly blur,
color jitter, grayscale, horizontal flip and solarization. torchvision's transforms draw one
set of parameters per call, so a batch would share one distortion; these draw per sample and
run batched (torchvision's functional blur on the whole batch, chosen per sample by a mask)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Augment:
    def __init__(self, channels: int = 1, scale=(0.5, 1.0), p_blur=0.5, p_jitter=0.8, p_gray=0.2,
                 p_flip=0.5, p_solarize=0.2, jitter=0.4):
        self.channels, self.scale = channels, scale
        self.p_blur, self.p_jitter, self.p_gray, self.p_flip, self.p_solarize = p_blur, p_jitter, p_gray, p_flip, p_solarize
        self.jitter = jitter

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        n, dev = len(x), x.device
        u = lambda *s: torch.rand(*s, device=dev)  # noqa: E731
        # random resized crop: per-sample affine grid (area in `scale`, aspect in [3/4, 4/3])
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u(n)
        aspect = torch.exp((u(n) - 0.5) * 2 * 0.2877)
        sw, sh = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
        tx, ty = (1 - sw) * (2 * u(n) - 1), (1 - sh) * (2 * u(n) - 1)
        flip = torch.where(u(n) < self.p_flip, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sw * flip, tx, sh, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        pick = lambda p: (u(n) < p).view(n, 1, 1, 1)  # noqa: E731
        k = 3 if x.shape[-1] <= 16 else 5
        x = torch.where(pick(self.p_blur), TF.gaussian_blur(x, [k, k], [0.1 + 1.9 * float(u(1))]), x)
        # color jitter: brightness and contrast for every image, saturation where there is colour
        b = 1 + self.jitter * (2 * u(n, 1, 1, 1) - 1)
        c = 1 + self.jitter * (2 * u(n, 1, 1, 1) - 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        jittered = ((x * b - mean) * c + mean)
        if x.shape[1] == 3:
            gray = jittered.mean(1, keepdim=True)
            s = 1 + self.jitter * (2 * u(n, 1, 1, 1) - 1)
            jittered = gray + (jittered - gray) * s
        x = torch.where(pick(self.p_jitter), jittered.clamp(0, 1), x)
        if x.shape[1] == 3:
            x = torch.where(pick(self.p_gray), x.mean(1, keepdim=True).expand_as(x), x)
        return torch.where(pick(self.p_solarize) & (x >= 0.5), 1 - x, x)
