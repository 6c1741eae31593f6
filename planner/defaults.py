"""Default profile names, importable without loading anything else (the CLI's option defaults use them)."""

DEFAULT_LAW = "besiroglu-2024"  # Epoch's refit of Chinchilla's data (README: "why the default")
DEFAULT_GPU = "h100-sxm5-80gb"
DEFAULT_BATCH_LAW = "zhang-2024"  # the critical batch size (CBS) grows with D (Zhang et al. 2024)
B_OPT_LAW = "steplaw-2025"  # loss-optimal batch and LR (Li et al. 2025)
