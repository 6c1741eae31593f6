"""Fits of `planner calibrate` from probe results: the loss law and the CBS(D) law. No file writing.

Loss law (calibration.md §1.2-§1.4): planner.laws.fit's 4,500-start Huber fit to post-decay ladder
points only, bootstrapped over whole probe sizes (planner.laws.fit_uncertainty). Batch law (§2.1,
§2.4): planner.laws.cbs_fit, one group per loss target, D = the tokens the smallest-batch run needed to
reach that target, and Zhang's B_ref = that smallest batch (the run closest to the linear-scaling regime).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from planner.errors import FitError
from planner.schemas.probe import ProbePlan, ProbeResult

# The results directory's file names (shared by the writer and the report).
RUNS = "runs.jsonl"
LADDER_CSV = "ladder.csv"
CURVES_CSV = "curves.csv"
CBS_CSV = "cbs.csv"
MFU_CSV = "mfu.csv"
LAW = "law.yaml"
BATCH = "batch.yaml"
REPORT = "report.md"
LOSS_PNG = "loss.png"
CBS_PNG = "cbs.png"
WORK = "work"

PRIOR_LAW = "besiroglu-2024"  # the planner's default law: what the calibration is compared against
MIN_SIZES, MIN_POINTS = 4, 6  # calibration.md §1.3: 4-5 sizes minimum; 5 constants need >= 6 points
MIN_BATCHES = 3  # R(B) = a + b/B has 2 parameters: 3 batch sizes per target leave one to check the fit
CBS_OVERHEAD = 0.2  # Zhang et al. 2024's 20% step overhead
TOKEN_SUFFIXES = (".bin", ".npy", ".npz")  # calibrate/data.py: pre-tokenised sources; text is byte-level
FLOOR_RTOL = 0.01  # a fitted E more than 1% below a source's known entropy fails the recovery check (§4.2)


# ----------------------------------------------------------------------------- units


@dataclass(frozen=True)
class Units:
    loss: str
    tokens: str
    byte_level: bool
    corpus: str
    entropy_nats: float | None = None  # the source's exact entropy rate, the floor of E (synthetic sources only)

    @property
    def per(self) -> str:
        return "nats per byte" if self.byte_level else "nats per token"


def corpus_label(data: str) -> str:
    if data == "stdlib":
        return "stdlib: the Python standard library source, byte-level"
    if data.startswith("synthetic:"):
        return f"{data} (synthetic, known entropy; for tests only)"
    return data


def units_of(results: list[ProbeResult]) -> Units:
    """Honest units of the fit: what the probes' `tokens` counted (bytes for byte-level text)."""
    ok = [r for r in results if r.status == "ok"] or results
    data = ok[0].data if ok else "stdlib"
    unit = next((r.data_unit for r in ok if r.data_unit), None)
    if unit is None:  # lines written before data_unit existed: infer as calibrate/data.py does
        byte = not (data.startswith("synthetic:") or data.lower().endswith(TOKEN_SUFFIXES))
    else:
        byte = unit == "bytes"
    label, floor = corpus_label(data), known_entropy(data)
    if byte:
        return Units(f"nats per byte ({label})", "training bytes", True, label, floor)
    return Units(f"nats per token ({label})", "training tokens", False, label, floor)


def known_entropy(data: str) -> float | None:
    """The exact entropy rate of a synthetic source (calibrate.data), None for real data.

    It depends only on the source's vocabulary and Zipf exponent, so the source is rebuilt as an order-1
    chain with a short stream (milliseconds, numpy only) rather than the probes' millions of tokens.
    """
    if not data.startswith("synthetic:"):
        return None
    from urllib.parse import parse_qsl, urlencode

    from calibrate import data as datamod  # lazily: planner never imports calibrate at module level

    source, _, query = data.partition("?")
    small = f"{source}?{urlencode({**dict(parse_qsl(query)), 'order': 1, 'tokens': 1024, 'val': 1024})}"
    try:
        return datamod.load(small).entropy_nats
    except ValueError:  # an unknown synthetic source: the probes failed on it already
        return None


def floor_flags(fit, units: Units) -> list[str]:
    """The recovery check of a known-entropy source (calibration.md §4.2): fitted E >= the true entropy.

    Flags E, or its whole 95% interval, more than FLOOR_RTOL below the floor; nothing when the floor is unknown.
    """
    h = units.entropy_nats
    if h is None:
        return []
    iv = ((fit.intervals or {}).get("params") or {}).get("E")
    band = f" (95% interval {iv['low']:.3g}–{iv['high']:.3g})" if iv else ""
    below = fit.E < h * (1 - FLOOR_RTOL) or (iv is not None and iv["high"] < h * (1 - FLOOR_RTOL))
    if not below:
        return []
    return [(f"below the floor: E = {fit.E:.4g}{band} is more than {FLOOR_RTOL:.0%} below the source's known "
             f"entropy {h:.4g} {units.per}, so the fit fails the recovery check (fitted E >= true entropy, "
             "calibration.md §4.2)")]


# ----------------------------------------------------------------------------- the loss law


@dataclass
class LawOutcome:
    n_points: int
    n_sizes: int
    planned_points: int
    planned_sizes: int
    fit: object | None = None  # planner.laws.fit.LossFit (with intervals)
    boot: object | None = None  # planner.laws.fit.Bootstrap
    profile: dict | None = None
    problem: str | None = None  # why there is no law.yaml
    too_few: bool = False
    notes: list[str] = field(default_factory=list)


def ladder_rows(results: list[ProbeResult]) -> list[ProbeResult]:
    """The fit points: ok ladder results with a post-decay loss (calibration.md §1.2)."""
    return sorted((r for r in results if r.kind == "ladder" and r.status == "ok" and r.loss is not None),
                  key=lambda r: (r.n_params, r.tokens))


def planned_ladder(plan: ProbePlan | None, results: list[ProbeResult]) -> tuple[int, int]:
    """(points, sizes) the plan asked for (from the results when no plan is given)."""
    if plan is not None:
        specs = [s for s in plan.specs() if s.kind == "ladder"]
        return sum(len(s.result_ids()) for s in specs), len({(s.n_layer, s.n_embd) for s in specs})
    ladder = [r for r in results if r.kind == "ladder"]
    return len(ladder), len({r.probe_id for r in ladder})


def fit_law(results, *, plan=None, n_bootstrap=1000, seed=0, name="calibration", date="",
            input_sha256="", units: Units | None = None) -> LawOutcome:
    """Fit and bootstrap the loss law on the ladder points; a profile dict when the fit can be one."""
    rows = ladder_rows(results)
    planned_points, planned_sizes = planned_ladder(plan, results)
    out = LawOutcome(len(rows), len({r.n_params for r in rows}), planned_points, planned_sizes)
    if out.n_points < MIN_POINTS or out.n_sizes < MIN_SIZES:
        out.too_few = True
        out.problem = (f"too few probes finished to fit: {out.n_points} of {planned_points} ladder points "
                       f"({out.n_sizes} of {planned_sizes} sizes); the fit needs at least {MIN_POINTS} points "
                       f"over {MIN_SIZES} sizes")
        return out
    import numpy as np

    from planner.laws import fit as core
    from planner.laws import fit_uncertainty as unc

    N, D, L = (np.array(v, dtype=float) for v in zip(*[(r.n_params, r.tokens, r.loss) for r in rows]))
    try:
        fit = core.fit_loss_law(N, D, L, objective="huber")
    except FitError as exc:
        out.problem = f"the loss-law fit failed: {exc.message}"
        return out
    boot = None
    if n_bootstrap > 0:
        # whole probe sizes: a size's cooldown branches share one run, so its points are correlated
        boot = unc.bootstrap_loss_law(N, D, L, fit, n_samples=n_bootstrap, seed=seed,
                                      extra_starts=fit.distinct_optima[1:], groups=N)
        fit = unc.with_intervals(fit, boot)
    units = units or units_of(results)
    fit = replace(fit, flags=fit.flags + tuple(floor_flags(fit, units)))
    out.fit, out.boot = fit, boot
    _law_profile(out, rows, units, name=name, date=date, input_sha256=input_sha256)
    return out


def _law_profile(out: LawOutcome, rows, units: Units, *, name: str, date: str, input_sha256: str) -> None:
    """Set out.profile (a validated LawProfile dict with notes) or out.problem when the fit is no law."""
    from planner.laws.fit_uncertainty import loss_law_profile
    from planner.schemas.laws import LawProfile

    fit, boot = out.fit, out.boot
    try:
        prof = loss_law_profile(
            fit, name=name, date=date, input_file=LADDER_CSV, input_sha256=input_sha256,
            title=f"Chinchilla law calibrated on {units.corpus} ({fit.n_runs} post-decay probe points)",
            dataset=f"{units.corpus}; {out.n_sizes} model sizes {_span(rows)}", loss_units=units.loss,
            params_kind="total", tokens_units=units.tokens, boot=boot)
    except FitError as exc:  # alpha or beta at 0: not a law (LawConstants needs them positive)
        out.problem = f"the fit cannot be written as a law: {exc.message}"
        return
    out.notes = law_notes(fit, units)
    if boot is not None:
        out.notes += _usable_samples(prof["uncertainty"], fit.flags)
        prof["provenance"]["bootstrap"] = "resamples whole probe sizes (each with its cooldown branches)"
    if units.entropy_nats is not None:
        prof["provenance"]["entropy_floor_nats"] = units.entropy_nats
    prof["provenance"].update(_fitted_runs(rows))  # read by `recommend` (defaults, fitted-range warnings)
    prof["notes"] = " ".join(out.notes) or None
    out.profile = LawProfile.model_validate(prof).model_dump(mode="json", exclude_none=True)


def _usable_samples(uncertainty: dict, flags) -> list[str]:
    """Bootstrap draws for `recommend`'s bands: each draw becomes a law there, so keep only laws.

    When the bootstrap cannot identify the constants (an `unidentified` flag) the draws reach the box
    bounds (alpha at 0 or 10, A at 1e-40 or 1e40) and their recommendations are meaningless or overflow:
    no draws are written, only the intervals. Otherwise draws with a constant at 0 are dropped.
    """
    draws = uncertainty["samples"]
    if any(flag.startswith("unidentified") for flag in flags):
        del uncertainty["samples"]
        return [(f"The {len(draws)} bootstrap draws are not written (the bootstrap cannot identify the law; "
                "intervals_95 summarises them), so `recommend` prints no bands for this law.")]
    good = [d for d in draws if all(math.isfinite(v) for v in d) and d[0] >= 0 and min(d[1:]) > 0]
    uncertainty["samples"] = good
    if len(good) == len(draws):
        return []
    return [(f"{len(draws) - len(good)} of {len(draws)} bootstrap draws put a constant at 0 and are left out of "
            "`samples` (intervals_95 counts them all).")]


def law_notes(fit, units: Units) -> list[str]:
    notes = [f"FLAG {flag}." for flag in fit.flags]
    if units.entropy_nats is not None:
        notes.append(f"The synthetic source's exact entropy rate is {units.entropy_nats:.4g} {units.per}: the floor "
                     "that E must not fall below (calibration.md §4.2).")
    if units.byte_level:
        notes.append("Byte-level data: the constants are nats per byte with D in bytes, NOT comparable with "
                     "token-level published constants (calibration.md §1.5 item 9).")
    notes.append("Fitted on tiny probes: extrapolate E-dominated quantities with care (calibration.md §1.3).")
    return notes


def _fitted_runs(rows) -> dict:
    """What the law was fitted on, for `recommend`: the D/N range and the probes' one seq_len and vocab."""
    out: dict = {"tokens_per_param": [min(r.tokens / r.n_params for r in rows),
                                      max(r.tokens / r.n_params for r in rows)]}
    for key in ("seq_len", "vocab_size"):
        values = {getattr(r, key) for r in rows}
        if len(values) == 1:
            out[key] = values.pop()
    return out


def _span(rows) -> str:
    sizes = sorted({r.n_params for r in rows})
    return f"({sizes[0]:,}-{sizes[-1]:,} total parameters, D/N {min(r.tokens / r.n_params for r in rows):.3g}-" \
           f"{max(r.tokens / r.n_params for r in rows):.3g})"


# ----------------------------------------------------------------------------- the batch law


@dataclass
class BatchOutcome:
    rows: list[dict]
    b_ref: float | None = None
    fit: object | None = None  # planner.laws.cbs_fit.CbsFit
    profile: dict | None = None
    dropped: list[str] = field(default_factory=list)
    problem: str | None = None
    flags: list[str] = field(default_factory=list)


def cbs_rows(results: list[ProbeResult]) -> list[dict]:
    """Rows for planner.laws.cbs_fit: one group per loss target.

    D (tokens_at_target) is what the smallest-batch run needed to reach the target: the data the loss
    corresponds to in the linear-scaling regime (calibration.md §2.4 step 3). Targets reached by fewer
    than MIN_BATCHES batch sizes, or at the same D as a higher target, are left out.
    """
    from planner.calibrate_run import cbs_table

    runs = {r.batch_tokens: r for r in results if r.kind == "cbs" and r.status == "ok" and r.curve}
    if len(runs) < MIN_BATCHES:
        return []
    table = cbs_table(list(runs.values()))
    smallest = min(runs)
    rows, seen_d = [], set()
    for target in sorted({row["target"] for row in table}, reverse=True):
        mine = [row for row in table if row["target"] == target]
        ref = next((row for row in mine if row["batch_tokens"] == smallest), None)
        if ref is None or len(mine) < MIN_BATCHES or ref["tokens"] in seen_d:
            continue
        seen_d.add(ref["tokens"])
        for row in mine:
            r = runs[row["batch_tokens"]]
            rows.append({"target": target, "model_nonemb_params": r.n_params_non_embedding,
                         "tokens_at_target": ref["tokens"], "batch_size_sequences": r.batch_tokens // r.seq_len,
                         "steps_to_target": row["steps"], "seq_len": r.seq_len})
    return rows


def fit_batch(results, *, name="calibration-cbs", date="", units: Units | None = None) -> BatchOutcome:
    """Zhang CBS per target and the CBS(D) law; targets whose R(B) cannot identify a CBS are dropped."""
    from planner.laws import cbs_fit as core

    rows = cbs_rows(results)
    out = BatchOutcome(rows)
    if not rows:
        out.problem = f"the CBS sweep has no loss target reached by at least {MIN_BATCHES} batch sizes"
        return out
    out.b_ref = float(min(r["batch_size_sequences"] for r in rows))
    kept = []
    for target in sorted({r["target"] for r in rows}, reverse=True):
        group = [r for r in rows if r["target"] == target]
        try:
            _fit_rows(core, group, out.b_ref)
            kept += group
        except FitError as exc:
            out.dropped.append(f"target {target:g}: {exc.message}")
    if len({r["tokens_at_target"] for r in kept}) < 2:
        out.problem = (f"only {len({r['target'] for r in kept})} loss target(s) identify a CBS; the CBS(D) law "
                       "needs 2 (a longer sweep, or more batch sizes, reaches more targets)")
        return out
    out.fit = _fit_rows(core, kept, out.b_ref)
    units = units or units_of(results)
    seq_len = rows[0]["seq_len"]
    prof = core.batch_law_profile(out.fit, name=name, seq_len=seq_len,
                                  source=f"planner calibrate CBS sweep ({units.corpus}), {date}",
                                  n_groups_label="one group per loss target")
    prof["title"] = f"Critical batch size calibrated on {units.corpus} ({len(out.fit.groups)} loss targets)"
    for law in prof["laws"]:  # D counts what the probes counted (bytes for byte-level text)
        law["input_units"] = {k: (units.tokens if k == "D" else v) for k, v in law["input_units"].items()}
    prof["notes"] = (f"B_ref = {out.b_ref:g} sequences, the sweep's smallest batch: Zhang et al.'s CBS counts the "
                     "steps overhead against linear scaling from a reference batch inside the linear regime. "
                     f"D is in {units.tokens}" + ("; byte-level data, not comparable with token-level laws."
                                                   if units.byte_level else "."))
    if out.fit.d_law[1] <= 0:  # Zhang et al. 2024 find the CBS growing with D (exponent about 0.47)
        out.flags.append(f"CBS falls with D (exponent {out.fit.d_law[1]:.3g}), against Zhang et al. 2024's CBS "
                         "growing with D: the sweep is too short or too noisy to trust this law")
        prof["notes"] += " FLAG " + out.flags[-1] + "."
    prof["provenance"] = {"input_file": CBS_CSV, "date": date, "targets": len({r['target'] for r in kept}),
                          "batch_sizes": len({r["batch_size_sequences"] for r in kept})}
    from planner.schemas.batch import BatchLawProfile

    out.profile = BatchLawProfile.model_validate(prof).model_dump(mode="json", exclude_none=True)
    return out


def _fit_rows(core, rows, b_ref):
    import numpy as np

    col = lambda k: np.array([r[k] for r in rows], dtype=float)
    return core.fit_cbs(col("model_nonemb_params"), col("tokens_at_target"), col("batch_size_sequences"),
                        col("steps_to_target"), b_ref=b_ref, overhead=CBS_OVERHEAD)
