"""ALE games through gymnasium, and the frame preprocessing the baby-a3c network expects.

A "frame" in this package is one environment step (one agent decision; ALE v5 repeats it
for 4 emulator frames), as baby-a3c counts them.
"""

from __future__ import annotations

import numpy as np

from raycl import RayclError

GAMES = ("Boxing", "StarGunner", "Kangaroo", "Pong", "SpaceInvaders")  # the dissertation's order
ROWS = slice(35, 195)  # the 160 rows of the playing field (baby-a3c's crop)


def preprocess(frame: np.ndarray) -> np.ndarray:
    """(210, 160) grayscale or (210, 160, 3) RGB uint8 -> (1, 80, 80) float32 in [0, 1]:
    crop rows 35-195 to 160x160, average 2x2 blocks down to 80x80."""
    x = frame[ROWS].astype(np.float32)
    if x.ndim == 3:
        x = x.mean(2)
    x = x.reshape(80, 2, 80, 2).mean((1, 3))
    return (x / 255.0)[None]


def make_env(game: str, seed: int | None = None, full_action_space: bool = True, max_episode_steps: int | None = None):
    """An `ALE/<game>-v5` environment with grayscale observations (sticky actions and
    frameskip 4 as v5 sets them). Full action space by default, so every game's network has
    the same 18-way actor head and one Self-Net architecture serves all games."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    try:
        env = gym.make(f"ALE/{game}-v5", obs_type="grayscale", full_action_space=full_action_space,
                       max_episode_steps=max_episode_steps)
    except gym.error.Error as e:
        raise RayclError(f"cannot make Atari game '{game}' ({e}); use one of: {', '.join(GAMES)} "
                         "(names as in ALE/<Name>-v5)") from None
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def check_games(games) -> None:
    """Fail early, naming the game, if any game cannot be made."""
    for g in games:
        make_env(g).close()


def provenance(games) -> dict:
    """What an Atari run played, in place of data arrays: the ALE/<game>-v5 environments, the
    ale_py and gymnasium versions, and each game's ROM (its MD5, or why it is unavailable),
    all as strings under "data"; and raycl.provenance.environment()."""
    import hashlib

    import ale_py
    import gymnasium as gym

    from raycl.provenance import environment

    gym.register_envs(ale_py)
    data = {"games": ",".join(f"ALE/{g}-v5" for g in games), "ale_py": str(ale_py.__version__),
            "gymnasium": str(gym.__version__)}
    for g in games:
        try:
            rom = gym.spec(f"ALE/{g}-v5").kwargs["game"]
            path = ale_py.roms.get_rom_path(rom)
            data[f"ALE/{g}-v5"] = (f"rom {rom}.bin md5 {hashlib.md5(path.read_bytes()).hexdigest()}" if path
                                   else f"rom {rom}.bin not supported by this ale_py")
        except (gym.error.Error, KeyError, OSError) as e:
            data[f"ALE/{g}-v5"] = f"rom unavailable ({type(e).__name__}: {e})"
    return {"data": data, "environment": environment()}
