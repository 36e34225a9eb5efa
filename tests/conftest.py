import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny nets: one thread avoids spin-waiting on a shared, loaded machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
