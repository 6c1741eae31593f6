"""Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv:2001.08361), for comparison.

Legend: N non-embedding parameters; D training tokens; C training FLOPs (6·N·B·S, non-embedding);
C_min the compute at B << B_crit (training at B_crit costs 2·C_min, Kaplan §5.1); L in nats/token on
WebText2 (GPT-2 BPE). These constants are NOT interchangeable with Chinchilla's (different N, data
and tokenizer); the planner uses them only for cross-checks.
"""

from __future__ import annotations

# Joint L(N, D) fit (Kaplan Table 2 / eq. 1.5): do not mix with the single-factor constants.
ALPHA_N = 0.076
ALPHA_D = 0.103
N_C = 6.4e13
D_C = 1.8e13
PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day
N_EFFICIENT_COEF = 1.3e9  # Fig. 14: N = 1.3e9·(C_min/PF-day)^0.73
N_EFFICIENT_EXP = 0.73


def loss(N, D):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (Kaplan et al. 2020, eq. 1.5 / 4.1)."""
    return ((N_C / N) ** (ALPHA_N / ALPHA_D) + D_C / D) ** ALPHA_D


def compute_efficient_params(C):
    """Compute-efficient non-embedding N for training FLOPs C, with C_min = C/2 (Kaplan eq. 1.7, Fig. 14).

    N = 1.3e9·(C_min / 8.64e19)^0.73; at C = 1e21 this is 4.68B (Hoffmann et al. 2022 App. D.4).
    """
    return N_EFFICIENT_COEF * ((C / 2.0) / PF_DAY) ** N_EFFICIENT_EXP
