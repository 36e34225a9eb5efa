"""Adversarial query strategies.

VAAL (Sinha et al. 2019): a β-VAE trained on labeled and unlabeled images and a
discriminator on its latent mean that tells labeled from unlabeled, the VAE also trying to
fool it; the samples the discriminator is surest are unlabeled get queried.

WAAL (Shui et al. 2020), query step: a Wasserstein critic (gradient penalty) on the task
model's latents separates the unlabeled from the labeled distribution; score = uncertainty
(1 - max probability) + `diversity` x critic score scaled to [0, 1]. WAAL also trains the
feature extractor jointly with the critic; here the task model is the stage's model, trained
as every other strategy's is, so only WAAL's query rule is reproduced."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from raycl.active.models import ENCODERS, Decoder, pick_backbone
from raycl.active.query import Strategy, top


def _mlp(dim: int, hidden: int = 128) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class _VAE(nn.Module):
    def __init__(self, shape, latent: int):
        super().__init__()
        self.encoder = ENCODERS[pick_backbone("auto", shape)](shape[0], shape[1], dropout=0.0)
        self.mu = nn.Linear(self.encoder.out_dim, latent)
        self.logvar = nn.Linear(self.encoder.out_dim, latent)
        self.decoder = Decoder(latent, shape)

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h).clamp(-10, 10)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        rec = F.binary_cross_entropy_with_logits(self.decoder(z), x)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()
        return mu, rec, kl


class VAAL(Strategy):
    name = "vaal"

    def __init__(self, steps: int = 300, batch: int = 64, latent: int = 32, beta: float = 1.0, adversary: float = 1.0,
                 lr: float = 5e-4):
        self.steps, self.batch, self.latent = int(steps), int(batch), int(latent)
        self.beta, self.adversary, self.lr = beta, adversary, lr

    def rank(self, ctx, b, rng):
        dev = ctx.device
        torch.manual_seed(int(rng.integers(2 ** 31)))
        vae = _VAE(tuple(ctx.images.shape[1:]), self.latent).to(dev)
        disc = _mlp(self.latent).to(dev)
        opt_v = torch.optim.Adam(vae.parameters(), lr=self.lr)
        opt_d = torch.optim.Adam(disc.parameters(), lr=self.lr)
        lab, unl = ctx.images[torch.as_tensor(ctx.labeled)], ctx.images[torch.as_tensor(ctx.unlabeled)]
        bce = F.binary_cross_entropy_with_logits
        for _ in range(self.steps):
            xl = lab[torch.as_tensor(rng.integers(len(lab), size=self.batch))].to(dev)
            xu = unl[torch.as_tensor(rng.integers(len(unl), size=self.batch))].to(dev)
            vae.train()
            mu_l, rec_l, kl_l = vae(xl)
            mu_u, rec_u, kl_u = vae(xu)
            one = torch.ones(self.batch, 1, device=dev)
            fool = bce(disc(mu_l), one) + bce(disc(mu_u), one)  # the VAE wants everything to look labeled
            loss = rec_l + rec_u + self.beta * (kl_l + kl_u) + self.adversary * fool
            opt_v.zero_grad(set_to_none=True)
            loss.backward()
            opt_v.step()
            d_loss = bce(disc(mu_l.detach()), one) + bce(disc(mu_u.detach()), torch.zeros_like(one))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        vae.eval()
        with torch.no_grad():
            p_labeled = torch.cat([
                torch.sigmoid(disc(vae.mu(vae.encoder(unl[i:i + ctx.batch_size].to(dev))))).squeeze(1).cpu()
                for i in range(0, len(unl), ctx.batch_size)
            ])
        return top(-p_labeled.numpy(), b)


class WAAL(Strategy):
    name = "waal"

    def __init__(self, steps: int = 200, batch: int = 64, diversity: float = 1.0, penalty: float = 10.0, lr: float = 1e-3):
        self.steps, self.batch, self.diversity, self.penalty, self.lr = int(steps), int(batch), diversity, penalty, lr

    def rank(self, ctx, b, rng):
        dev = ctx.device
        probs, z = ctx.predict(np.concatenate([ctx.labeled, ctx.unlabeled]))
        z = z.to(dev)
        zl, zu = z[:len(ctx.labeled)], z[len(ctx.labeled):]
        torch.manual_seed(int(rng.integers(2 ** 31)))
        critic = _mlp(z.shape[1]).to(dev)
        opt = torch.optim.Adam(critic.parameters(), lr=self.lr, betas=(0.5, 0.9))
        for _ in range(self.steps):
            a = zl[torch.as_tensor(rng.integers(len(zl), size=self.batch), device=dev)]
            u = zu[torch.as_tensor(rng.integers(len(zu), size=self.batch), device=dev)]
            mix = torch.rand(self.batch, 1, device=dev)
            x = (mix * a + (1 - mix) * u).requires_grad_(True)
            grad, = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
            gp = (grad.norm(dim=1) - 1).pow(2).mean()
            loss = critic(a).mean() - critic(u).mean() + self.penalty * gp  # critic high on unlabeled
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            d = critic(zu).squeeze(1).cpu()
        d = (d - d.min()) / (d.max() - d.min() + 1e-12)
        uncertainty = 1 - probs[len(ctx.labeled):].max(1).values
        return top((uncertainty + self.diversity * d).numpy(), b)
