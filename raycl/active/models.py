"""Active-learning classifiers. Both expose one interface the loop and the query strategies use:
`loss(x, y) -> (scalar, parts)`, and `predict(x, stochastic=False) -> (logits, latent)` that
gives probabilities and latents from ONE forward pass (stochastic=True samples z and keeps
dropout on, for MC-dropout / BALD).

- VariationalNet (DAL-OSR, §3.3.2.1): β-VAE encoder q(z|x), linear classifier on z;
  M1 = cross-entropy + β KL (eq 3.2), M2 adds a decoder and a reconstruction term (eq 3.1).
- BarlowTwinsNet (DALBT, §4.3): encoder, projector, linear classifier on the latent of the
  undistorted image; loss = CE + γ (Σ(1-C_ii)² + λ Σ_{i≠j} C_ij²) (eq 4.2).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from raycl import RayclError


# --- encoders (image -> feature vector) and decoders (latent -> image logits) ---------------

class SmallEncoder(nn.Module):
    """For 8x8-16x16 images (the offline digits): two convolutions and a dense layer."""

    def __init__(self, channels: int, size: int, dropout: float = 0.2, width: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(32 * ((size + 1) // 2) ** 2, width), nn.ReLU(), nn.Dropout(dropout),
        )
        self.out_dim = width

    def forward(self, x):
        return self.net(x)


class LeNetEncoder(nn.Module):
    """LeNet-5 style, for 28x28 (MNIST-like) images, as the dissertation uses for MNIST."""

    def __init__(self, channels: int, size: int, dropout: float = 0.2):
        super().__init__()
        s = ((size - 4) // 2 - 4) // 2
        self.net = nn.Sequential(
            nn.Conv2d(channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(50 * s * s, 500), nn.ReLU(), nn.Dropout(dropout),
        )
        self.out_dim = 500

    def forward(self, x):
        return self.net(x)


class VGG16Encoder(nn.Module):
    """torchvision's VGG16 convolutional trunk (random init, batch norm) for 32x32 images."""

    def __init__(self, channels: int, size: int, dropout: float = 0.2):
        super().__init__()
        from torchvision.models import vgg16_bn

        feats = vgg16_bn(weights=None).features
        if channels != 3:
            feats[0] = nn.Conv2d(channels, 64, 3, padding=1)
        self.net = nn.Sequential(feats, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.out_dim = 512

    def forward(self, x):
        return self.net(x)


ENCODERS = {"small": SmallEncoder, "lenet": LeNetEncoder, "vgg16": VGG16Encoder}


class DANEncoder(nn.Module):
    """The hidden DAN layers of a hyper-trained network's architecture as an image encoder.

    Images are brought to the form the phenotype was hyper-trained on (one channel,
    image_size², standardised per image) and sent through DAN layers of widths `hidden`; the
    last layer's activations are the features. `phi` (a φ state dict of the same sharing and
    phenotype sizes) is loaded and frozen: only the synapses learn."""

    def __init__(self, image_size: int, hidden, n_channels: int, sharing: str = "net0",
                 phenotype_hidden=(15, 8), phi: dict | None = None, generator: torch.Generator | None = None):
        super().__init__()
        from raycl.dan.networks import DANNetwork
        from raycl.dan.params import load_into, split_parameters

        self.image_size = int(image_size)
        self.dans = DANNetwork(self.image_size ** 2, hidden, 1, n_channels, sharing=sharing,
                               phenotype_hidden=phenotype_hidden, generator=generator)
        self.dans.head = None  # the features are the last hidden layer; the classifier comes after
        _, phenotype = split_parameters(self.dans)
        if phi is not None:
            if set(phi) != set(phenotype) or any(p.shape != phi[n].shape for n, p in phenotype.items()):
                raise RayclError("the phenotype does not fit this DAN encoder (its sharing or sizes differ from "
                                 f"the architecture: {len(phi)} tensors for {len(phenotype)} phenotype parameters)")
            load_into(phenotype, phi)
        for p in phenotype.values():  # frozen, hyper-trained or random: only the synapses learn
            p.requires_grad_(False)
        self.out_dim = int(self.dans.hidden[-1])

    def forward(self, x):
        from raycl.hyper.stream import standardise

        x = x.mean(1, keepdim=True)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.dans(standardise(x.flatten(1)))


def pick_backbone(name: str, shape: tuple[int, int, int]) -> str:
    if name != "auto":
        if name not in ENCODERS:
            raise RayclError(f"unknown backbone '{name}'; choose auto or one of {', '.join(ENCODERS)}")
        return name
    size = shape[1]
    return "small" if size <= 16 else "lenet" if size <= 28 else "vgg16"


class Decoder(nn.Module):
    """Latent -> image logits: a dense layer to a small grid, then transposed convolutions that
    double it (plain conv decoder; the authors used a WRN-style one for CIFAR)."""

    def __init__(self, latent: int, shape: tuple[int, int, int]):
        super().__init__()
        c, h, w = shape
        ups = 3 if h >= 32 else 2
        if h % (2 ** ups) or h != w:
            raise RayclError(f"decoder needs square images divisible by {2 ** ups}, got {h}x{w}")
        self.grid = h // 2 ** ups
        width = [128, 64, 32][-ups:]
        self.fc = nn.Linear(latent, width[0] * self.grid ** 2)
        layers: list[nn.Module] = []
        for i in range(ups):
            out = width[i + 1] if i + 1 < ups else c
            layers.append(nn.ConvTranspose2d(width[i], out, 4, stride=2, padding=1))
            if i + 1 < ups:
                layers += [nn.BatchNorm2d(out), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.width0 = width[0]

    def forward(self, z):
        return self.net(F.relu(self.fc(z)).view(len(z), self.width0, self.grid, self.grid))


# --- DAL-OSR: the variational neural network ------------------------------------------------

class VariationalNet(nn.Module):
    def __init__(self, shape, num_classes: int, latent: int = 60, variant: str = "M2", backbone: str = "auto",
                 beta: float = 0.1, dropout: float = 0.2):
        super().__init__()
        if variant not in ("M1", "M2"):
            raise RayclError(f"variant must be M1 or M2, got {variant}")
        c, h, _ = shape
        self.encoder = ENCODERS[pick_backbone(backbone, shape)](c, h, dropout=dropout)
        self.mu = nn.Linear(self.encoder.out_dim, latent)
        self.logvar = nn.Linear(self.encoder.out_dim, latent)
        self.classifier = nn.Linear(latent, num_classes)
        self.decoder = Decoder(latent, shape) if variant == "M2" else None
        self.beta = beta
        self.latent_dim = latent

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(-10, 10)

    def loss(self, x, y):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        ce = F.cross_entropy(self.classifier(z), y)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()  # per latent element, as the authors' code
        total = ce + self.beta * kl
        parts = {"ce": ce.detach(), "kl": kl.detach()}
        if self.decoder is not None:
            rec = F.binary_cross_entropy_with_logits(self.decoder(z), x)
            total = total + rec
            parts["rec"] = rec.detach()
        return total, parts

    def predict(self, x, stochastic: bool = False):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if stochastic else mu
        return self.classifier(z), mu


# --- DALBT: Barlow Twins with a classifier --------------------------------------------------

def barlow_twins_terms(z1, z2):
    """(Σ_i (1 - C_ii)², Σ_{i≠j} C_ij²) with C = BN(z1)ᵀ BN(z2) / batch (BN without affine)."""
    n = len(z1)
    c = F.batch_norm(z1, None, None, training=True).T @ F.batch_norm(z2, None, None, training=True) / n
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on, off


class BarlowTwinsNet(nn.Module):
    def __init__(self, shape, num_classes: int, latent: int | None = None, backbone: str = "auto",
                 projector: int = 256, gamma: float = 1e-3, lambd: float = 0.0051, dropout: float = 0.2,
                 augment=None, encoder: nn.Module | None = None):
        """`encoder` (e.g. a DANEncoder) replaces the backbone; its features are then the latent."""
        super().__init__()
        from raycl.active.augment import Augment

        c, h, _ = shape
        if encoder is None:
            name = pick_backbone(backbone, shape)
            self.encoder = ENCODERS[name](c, h, dropout=dropout)
            latent = latent or (512 if name == "vgg16" else 60)
            self.to_latent = nn.Linear(self.encoder.out_dim, latent)
        else:
            self.encoder, latent = encoder, encoder.out_dim
            self.to_latent = nn.Identity()
        self.projector = nn.Sequential(
            nn.Linear(latent, projector, bias=False), nn.BatchNorm1d(projector), nn.ReLU(),
            nn.Linear(projector, projector, bias=False), nn.BatchNorm1d(projector), nn.ReLU(),
            nn.Linear(projector, projector, bias=False),
        )
        self.classifier = nn.Linear(latent, num_classes)
        self.gamma, self.lambd = gamma, lambd
        self.augment = augment or Augment(channels=c)
        self.latent_dim = latent

    def embed(self, x):
        return self.to_latent(self.encoder(x))

    def loss(self, x, y):
        ce = F.cross_entropy(self.classifier(self.embed(x)), y)
        if len(x) < 2:  # batch statistics need two samples
            return ce, {"ce": ce.detach()}
        z1 = self.projector(self.embed(self.augment(x)))
        z2 = self.projector(self.embed(self.augment(x)))
        on, off = barlow_twins_terms(z1, z2)
        bt = on + self.lambd * off
        return ce + self.gamma * bt, {"ce": ce.detach(), "bt": bt.detach()}

    def predict(self, x, stochastic: bool = False):
        latent = self.embed(x)
        return self.classifier(latent), latent


MODELS = {"vnn": VariationalNet, "dalbt": BarlowTwinsNet}


def make_model(kind: str, shape, num_classes: int, **options) -> nn.Module:
    if kind not in MODELS:
        raise RayclError(f"unknown model '{kind}'; choose one of {', '.join(MODELS)}")
    return MODELS[kind](shape, num_classes, **options)


def set_dropout(model: nn.Module, on: bool) -> None:
    """Dropout on while the rest stays in eval mode (batch norm frozen): MC-dropout inference."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train(on)
