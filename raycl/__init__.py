"""raycl: a Ray-distributed population trainer for continual and active learning.

Implements the systems of the dissertation "Hyper-Learning with Deep Artificial Neurons"
(2023): Deep Artificial Neurons, Hyper-Learning, Self-Net, DAL-OSR and DALBT.
"""

__version__ = "0.1.0"


class RayclError(Exception):
    """An error a user can fix; the CLI prints its message without a traceback."""
