"""Default profile names and shared bounds, importable without loading anything else (the CLI's option
defaults, the planner and the plan schema use them)."""

DEFAULT_LAW = "besiroglu-2024"  # Epoch's refit of Chinchilla's data (README: "why the default")
DEFAULT_GPU = "h100-sxm5-80gb"
DEFAULT_BATCH_LAW = "zhang-2024"  # the critical batch size (CBS) grows with D (Zhang et al. 2024)
B_OPT_LAW = "steplaw-2025"  # loss-optimal batch and LR (Li et al. 2025)

# Validity floor of a model (README, `planner recommend`). The smallest models any loss law has been fitted
# to are ~1e3 parameters: Kaplan et al. 2020 go down to 768 non-embedding parameters, and
# `planner calibrate --preset smoke` fits 9k-54k (Chinchilla's own fits start at 44M). Below it the laws
# return fractions of a parameter; a smaller --params is a usage error, a smaller result is infeasible,
# and a plan file below it is invalid.
MIN_PARAMS = 1000.0
