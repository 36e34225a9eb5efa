"""The incremental Atari presets, free of torch so that `--help` can list them."""

# small: CPU in minutes (short training; the AE has no hidden layer and a higher lr so each
# fold takes tens of full-batch updates). cluster: the dissertation's settings.
PRESETS = {
    "small": dict(frames=2_000, workers=2, episodes=3, eval_max_steps=200, ae_hidden=(), ae_lr=5e-3,
                  ae_max_iters=2_000, checkpoint_every=10_000),
    "cluster": dict(frames=40_000_000, workers=20, episodes=80, eval_max_steps=None, ae_hidden=(2000,),
                    ae_lr=1e-4, ae_max_iters=50_000, checkpoint_every=1_000_000),
}
