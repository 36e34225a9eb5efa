"""Chapter 5: meta-learning a neuronal phenotype for continual sine regression."""
