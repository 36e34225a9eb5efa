"""Active learning (dissertation chapters 3-4): DAL-OSR (variational network with uncertainty
and Weibull open-set sampling) and DALBT (Barlow Twins), with baseline query strategies.

pools / oracle / scenario   the data a run sees and who labels it
models / augment / train    the classifiers and one stage's training with model selection
weibull / strategies / bald / adversarial   query strategies behind one interface
loop                        the pure active-learning loop (no Ray, no files)
distributed / experiment    Ray tasks per (strategy, seed); outputs to a run folder
report / timing / cli       summaries and curves; sampling-time table; `raycl active`
"""
