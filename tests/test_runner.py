"""raycl.runner: the same jobs give the same results in this process and as Ray tasks."""

import torch


def _job(shared: list, i: int, scale: float = 1.0) -> tuple:
    # a job that reads a shared object, draws from torch's RNG and reports its thread count
    torch.manual_seed(i)
    return i, sum(shared) * scale + float(torch.rand(1)), torch.get_num_threads()


def test_runner_in_process_and_on_ray_agree_and_resolve_shared_objects():
    import ray

    from raycl.runner import Runner

    shared = list(range(100))
    here = Runner(use_ray=False, progress=False)
    expected = here.gather([here.submit(_job, here.put(shared), i, scale=2.0) for i in range(4)])
    assert [e[0] for e in expected] == [0, 1, 2, 3] and all(e[2] == 1 for e in expected)
    assert expected[1][1] == 9900 + float(torch.manual_seed(1) and torch.rand(1))
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module
    try:
        remote = Runner(use_ray=True, num_cpus=2, progress=False)
        ref = remote.put(shared)
        assert isinstance(ref, ray.ObjectRef)
        handles = [remote.submit(_job, ref, i, scale=2.0) for i in range(4)]
        assert remote.gather(handles) == expected  # submission order, whatever order they finish in
        assert sorted(remote.as_completed(handles)) == list(enumerate(expected))
    finally:
        ray.shutdown()
