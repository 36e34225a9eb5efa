"""Deep Artificial Neurons (Chapter 5, §6.1): the phenotype φ, DAN layers, networks of DANs,
the DAN auto-encoder, the MLP and WarpGrad baselines, and the θ/φ parameter split."""

from raycl import lazy_exports

# imported on first use (raycl --help stays free of torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    f"{__name__}.builders": (
        "build_dan_classifier", "build_dan_regressor", "dan_param_count", "match_warp_to",
        "phenotype_param_count", "warp_param_count", "width_for_params"),
    f"{__name__}.layer": ("DANLayer",),
    f"{__name__}.networks": (
        "MLP", "READOUTS", "SHARING_MODES", "DANAutoEncoder", "DANNetwork", "WarpLayer", "WarpNetwork"),
    f"{__name__}.params": (
        "count_parameters", "load_into", "reset_phenotype", "reset_synapses", "snapshot", "split_parameters"),
    f"{__name__}.phenotype": ("Phenotype",),
})
