"""AdamW for the CPU path, arithmetic identical to torch.optim.AdamW (single-tensor, non-fused).

Why not torch.optim on CPU: constructing any torch.optim optimizer imports torch._dynamo (through
torch._disable_dynamo), 1.4 s per process on the CI host, about a third of a tiny probe's startup.
The GPU path keeps torch.optim.AdamW(fused=True). tests/calibrate/test_model.py checks the two agree.

Update (Loshchilov & Hutter 2019, decoupled weight decay; as in torch/optim/adamw.py):
    p  <- p·(1 - lr·wd)
    m  <- beta1·m + (1-beta1)·g ;  v <- beta2·v + (1-beta2)·g²
    p  <- p - lr/(1-beta1^t) · m / (sqrt(v)/sqrt(1-beta2^t) + eps)
"""

from __future__ import annotations

import copy
import math

import torch


class AdamW:
    def __init__(self, param_groups, lr: float, betas=(0.9, 0.95), eps: float = 1e-8):
        self.param_groups = [dict(g, lr=lr, betas=tuple(betas), eps=eps) for g in param_groups]
        self.state: list[dict] = [{} for g in self.param_groups for _ in g["params"]]

    @torch.no_grad()
    def step(self) -> None:
        i = 0
        for g in self.param_groups:
            beta1, beta2 = g["betas"]
            for p in g["params"]:
                st, i = self.state[i], i + 1
                if p.grad is None:
                    continue
                if not st:
                    st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                st["step"] += 1
                t, m, v, grad = st["step"], st["exp_avg"], st["exp_avg_sq"], p.grad
                p.mul_(1 - g["lr"] * g["weight_decay"])
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(g["eps"])
                p.addcdiv_(m, denom, value=-g["lr"] / (1 - beta1**t))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def state_dict(self) -> dict:
        return {"state": copy.deepcopy(self.state), "lr": [g["lr"] for g in self.param_groups]}

    def load_state_dict(self, sd: dict) -> None:
        self.state = copy.deepcopy(sd["state"])
        for g, lr in zip(self.param_groups, sd["lr"]):
            g["lr"] = lr
