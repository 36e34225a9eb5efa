"""Self-Net's task streams by name, free of torch so that `--help` can list them."""

STREAMS = ("permuted", "split", "pairs", "cifar10", "cifar100")
STREAM_ARCH = {"permuted": "mnist", "split": "mnist", "pairs": "mnist", "cifar10": "cifar", "cifar100": "cifar"}
