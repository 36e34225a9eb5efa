"""Self-Net (dissertation Chapter 2): lifelong learning via continual self-modeling.

Pure algorithm, no Ray: `flat` (networks <-> flat vectors <-> padded sub-vectors), `tasknets`
(the MNIST and CIFAR task networks), `ae` (contractive auto-encoder), `store` (latent store
and Algorithm 1), `streams` (continual task streams), `train` (one training loop),
`baselines` (SGD, L2, Online L2, EWC, Online EWC, Progress & Compress), `experiments`.
Ray plumbing lives apart in `parallel` (task networks trained as Ray tasks).
"""

from raycl import lazy_exports

# imported on first use (raycl --help stays free of torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    f"{__name__}.ae": ("ContractiveAE", "cosine"),
    f"{__name__}.store": ("NetMeta", "SelfNet", "fit_ae"),
})
