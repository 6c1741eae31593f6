"""Synthetic probe results with known laws, for the results directory without training anything.

Ladder: the smoke plan's ladder points with losses from L = E + A/N^alpha + B/D^beta (byte units).
CBS: steps to reach loss l at batch B follow R(B) = S_min + E_min/B exactly (McCandlish eq. 2.11),
with E_min(l) = ((l - 1)/10)^(-1/0.3) sequences and a noise scale B_noise = E_min/S_min = 2*E_min^0.3
that grows with E_min, so the CBS grows with D as in Zhang et al. 2024.
"""

from __future__ import annotations

import math

import pytest

from planner import probe_plan as pp
from planner.schemas.probe import CurvePoint, ProbeResult

LAW = {"E": 0.9, "A": 40.0, "B": 80.0, "alpha": 0.32, "beta": 0.3}


def _base(spec, rid, **kw) -> dict:
    shape = pp.Shape(spec.n_layer, spec.n_embd, spec.n_head)
    total, non_emb = pp.shape_params(shape, spec.vocab_size, spec.seq_len)
    out = {"id": rid, "probe_id": spec.id, "kind": spec.kind, "status": "ok", "n_params": total,
           "n_params_non_embedding": non_emb, "n_layer": spec.n_layer, "n_embd": spec.n_embd,
           "seq_len": spec.seq_len, "vocab_size": spec.vocab_size,
           "flops_per_token": pp.flops_per_token(shape, spec.vocab_size, spec.seq_len),
           "batch_tokens": spec.tokens_per_step, "lr": spec.lr, "tokens": 0.0, "steps": 0, "data": spec.data,
           "data_unit": "bytes", "device": "cpu", "n_procs": spec.n_procs, "wall_s": 1.0, "tokens_per_s": 1e5}
    out.update(kw)
    return out


def law_loss(n, d, wobble=0.0):
    return (LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]) * (1 + wobble)


def ladder_results(spec) -> list[ProbeResult]:
    total = pp.shape_params(pp.Shape(spec.n_layer, spec.n_embd, spec.n_head), spec.vocab_size, spec.seq_len)[0]
    out = []
    ratios = [*spec.branch_ratios, spec.final_ratio]
    curve = [CurvePoint(step=s, tokens=float(s * spec.tokens_per_step), loss=law_loss(total, s * spec.tokens_per_step)
                        + 0.05) for s in range(1, 40, 4)]
    for k, (rid, ratio) in enumerate(zip(spec.result_ids(), ratios)):
        d = ratio * total
        loss = law_loss(total, d, 0.002 * math.sin(7 * k + total))
        point = CurvePoint(step=round(d / spec.tokens_per_step), tokens=d, loss=loss, ewa_loss=loss)
        out.append(ProbeResult(**_base(spec, rid, tokens=d, steps=point.step, branch_ratio=ratio, loss=loss,
                                       ewa_loss=loss, curve=[*curve, point])))
    return out


def _e_min(loss):
    return ((loss - 1.0) / 10.0) ** (-1 / 0.3)


def cbs_result(spec) -> ProbeResult:
    b = spec.batch_seqs
    curve = []
    for step in range(0, 400, 2):  # invert R(B) = E_min/B_noise + E_min/B, B_noise = 2*E_min^0.3
        lo, hi = 1.0001, 20.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            e = _e_min(mid)
            need = e / (2.0 * e**0.3) + e / b
            lo, hi = (mid, hi) if need > step else (lo, mid)
        curve.append(CurvePoint(step=step, tokens=float(step * spec.tokens_per_step), loss=hi, ewa_loss=hi))
    hits = {f"{t:g}": next((p.step for p in curve if p.ewa_loss < t), None) for t in spec.targets}
    last = curve[-1]
    return ProbeResult(**_base(spec, spec.id, tokens=last.tokens, steps=last.step, loss=last.loss,
                               ewa_loss=last.ewa_loss, curve=curve, steps_to_target=hits))


@pytest.fixture
def smoke_plan():
    return pp.plan_smoke(2)


@pytest.fixture
def synthetic_results(smoke_plan):
    out = []
    for spec in smoke_plan.specs():
        out += ladder_results(spec) if spec.kind == "ladder" else [cbs_result(spec)]
    return out
