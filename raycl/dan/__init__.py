"""Deep Artificial Neurons (Chapter 5, §6.1): the phenotype φ, DAN layers, networks of DANs,
the DAN auto-encoder, the MLP and WarpGrad baselines, and the θ/φ parameter split."""

from raycl import lazy_exports

# imported on first use (raycl --help stays free of torch)
_EXPORTS = {
    "build_dan_classifier": "raycl.dan.builders",
    "build_dan_regressor": "raycl.dan.builders",
    "dan_param_count": "raycl.dan.builders",
    "match_warp_to": "raycl.dan.builders",
    "phenotype_param_count": "raycl.dan.builders",
    "warp_param_count": "raycl.dan.builders",
    "width_for_params": "raycl.dan.builders",
    "DANLayer": "raycl.dan.layer",
    "MLP": "raycl.dan.networks",
    "READOUTS": "raycl.dan.networks",
    "SHARING_MODES": "raycl.dan.networks",
    "DANAutoEncoder": "raycl.dan.networks",
    "DANNetwork": "raycl.dan.networks",
    "WarpLayer": "raycl.dan.networks",
    "WarpNetwork": "raycl.dan.networks",
    "count_parameters": "raycl.dan.params",
    "load_into": "raycl.dan.params",
    "reset_phenotype": "raycl.dan.params",
    "reset_synapses": "raycl.dan.params",
    "snapshot": "raycl.dan.params",
    "split_parameters": "raycl.dan.params",
    "Phenotype": "raycl.dan.phenotype",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
