"""The Chapter 5 experiment's named choices, free of torch so that `--help` can list them."""

# Fig 5.5's six models, in its order: (phenotype, sharing, plastic at deployment)
VARIANTS = {
    "meta_fixed": "net0: meta-learned, fixed",
    "meta_plastic": "net1: meta-learned, plastic",
    "random_fixed": "net2: random shared, fixed",
    "random_plastic": "net3: random shared, plastic",
    "random_unique_fixed": "net4: random unique, fixed",
    "random_unique_plastic": "net5: random unique, plastic",
}
OPTIMIZERS = ("sgd", "adam")
FILTERS = ("range", "literal")
