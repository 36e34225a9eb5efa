"""Deep Artificial Neurons (Chapter 5, §6.1): the phenotype φ, DAN layers, networks of DANs,
the DAN auto-encoder, the MLP and WarpGrad baselines, and the θ/φ parameter split."""

from raycl.dan.builders import (
    build_dan_classifier,
    build_dan_regressor,
    dan_param_count,
    match_warp_to,
    phenotype_param_count,
    warp_param_count,
    width_for_params,
)
from raycl.dan.layer import DANLayer
from raycl.dan.networks import MLP, READOUTS, SHARING_MODES, DANAutoEncoder, DANNetwork, WarpLayer, WarpNetwork
from raycl.dan.params import (
    count_parameters,
    load_into,
    reset_phenotype,
    reset_synapses,
    snapshot,
    split_parameters,
)
from raycl.dan.phenotype import Phenotype

__all__ = [
    "Phenotype", "DANLayer", "DANNetwork", "DANAutoEncoder", "MLP", "WarpLayer", "WarpNetwork",
    "SHARING_MODES", "READOUTS",
    "split_parameters", "count_parameters", "reset_phenotype", "reset_synapses", "snapshot", "load_into",
    "build_dan_classifier", "build_dan_regressor", "match_warp_to",
    "dan_param_count", "phenotype_param_count", "warp_param_count", "width_for_params",
]
