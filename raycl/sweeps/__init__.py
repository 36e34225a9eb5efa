"""Ray Tune sweeps of whole Hyper-Learning populations: the over-training settings of §6.4.3
and the model sizes of §6.4.5 (space), one trial = one population (trial), the Tuner with
placement groups, schedulers and resume (tuning), the table and figures (results)."""
