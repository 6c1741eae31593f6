"""The results directory of `planner calibrate --out DIR`: fits and files from the probe results (I/O).

Layout (every file is rewritten from DIR/runs.jsonl on each run, so a resumed calibration
reports on every probe finished so far):

    runs.jsonl   one ProbeResult line per finished (or failed) run or cooldown branch; the resume key
    ladder.csv   the loss-law fit points (ok, post-decay ladder points only): `planner fit DIR/ladder.csv`
    curves.csv   every held-out evaluation: result id, probe, phase, step, tokens, loss, EWA loss
    law.yaml     the fitted loss law (planner fit's profile, with bootstrap draws): `recommend --law`
    cbs.csv      steps to each target per batch size (the rows `planner fit-cbs` reads)
    batch.yaml   the fitted CBS(D) law, when the sweep identifies one: `recommend --batch-law`
    mfu.csv      throughput and MFU per probe (with and without the attention term), device
    report.md    the plan, probes finished/failed, constants with intervals, flags, the prior law side
                 by side and what each recommends
    loss.png     loss against tokens per size with the fitted law
    cbs.png      steps to target against batch size, with each target's CBS marked
    work/        spec files, logs and status files of the probe processes

Fitting (calibration.md §1.2-§1.4, §2.1, §2.4): the loss law is fitted by planner.laws.fit (Hoffmann's
4,500-start Huber fit) to post-decay ladder points only, then bootstrapped; the batch law by
planner.laws.cbs_fit, one group per loss target, D = the tokens the smallest-batch run needed to reach
that target, and Zhang's B_ref = that smallest batch (the run closest to the linear-scaling regime).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import FitError, PlannerError, ProbeError
from planner.schemas.probe import ProbePlan, ProbeResult

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


# ----------------------------------------------------------------------------- units


@dataclass(frozen=True)
class Units:
    loss: str
    tokens: str
    byte_level: bool
    corpus: str


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
    label = corpus_label(data)
    if byte:
        return Units(f"nats per byte ({label})", "training bytes", True, label)
    return Units(f"nats per token ({label})", "training tokens", False, label)


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
    out.fit, out.boot = fit, boot
    _law_profile(out, rows, units or units_of(results), name=name, date=date, input_sha256=input_sha256)
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
    if units.byte_level:
        notes.append("Byte-level data: the constants are nats per byte with D in bytes, NOT comparable with "
                     "token-level published constants (calibration.md §1.5 item 9).")
    notes.append("Fitted on tiny probes: extrapolate E-dominated quantities with care (calibration.md §1.3).")
    return notes


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


# ----------------------------------------------------------------------------- tables


def curve_rows(results: list[ProbeResult]) -> list[dict]:
    """Every evaluation once: the main run's curve (stable phase, then its post-decay point), each
    branch's post-decay point (its stable prefix is the main run's), every CBS run's EWA curve."""
    rows = []
    for r in sorted(results, key=lambda r: (r.kind, r.n_params, r.batch_tokens, r.tokens)):
        if r.status != "ok":
            continue
        main = r.id == r.probe_id
        points = r.curve if (main or r.kind == "cbs") else r.curve[-1:]
        for i, p in enumerate(points):
            post = r.kind == "ladder" and (not main or i == len(points) - 1)
            phase = "constant" if r.kind == "cbs" else "post-decay" if post else "stable"
            rows.append({"id": r.id, "probe": r.probe_id, "kind": r.kind, "params": r.n_params,
                         "batch_tokens": r.batch_tokens, "phase": phase, "step": p.step, "tokens": p.tokens,
                         "loss": p.loss, "ewa_loss": p.ewa_loss})
    return rows


def mfu_rows(results: list[ProbeResult]) -> list[dict]:
    """Per probe: throughput of its run, achieved FLOP/s, MFU with and without attention (GPU only)."""
    best: dict[str, ProbeResult] = {}
    for r in results:
        if r.status == "ok" and r.tokens_per_s and (r.probe_id not in best or r.id == r.probe_id):
            best[r.probe_id] = r
    return [{"probe": r.probe_id, "kind": r.kind, "params": r.n_params,
             "params_non_embedding": r.n_params_non_embedding, "n_layer": r.n_layer, "n_embd": r.n_embd,
             "batch_tokens": r.batch_tokens, "n_procs": r.n_procs, "device": r.device,
             "tokens_per_s": r.tokens_per_s, "flops_per_s": r.tokens_per_s * r.flops_per_token,
             "mfu": r.mfu, "mfu_6n": r.mfu_6n}
            for r in sorted(best.values(), key=lambda r: (r.kind, r.n_params, r.batch_tokens))]


def write_csv(path: Path, rows: list[dict], header: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows({k: ("" if row.get(k) is None else row[k]) for k in header} for row in rows)
    os.replace(tmp, path)  # a reader never sees half a file


def write_yaml(path: Path, data: dict, comment: str) -> None:
    import yaml

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(comment + yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- comparison with the prior


def prior_law():
    """The prior law's profile (the planner's default), or None when it cannot be read."""
    from planner import resolve

    try:
        return resolve.load_law(PRIOR_LAW).profile
    except PlannerError:
        return None


def budgets_for(rows: list[ProbeResult]) -> list[float]:
    """The largest probe's training FLOPs (6ND), 100x that, and 1e21 (a production-scale budget)."""
    c = max(6.0 * r.n_params * r.tokens for r in rows)
    return [c, 100.0 * c, 1e21]


def recommendations(constants: dict, budgets: list[float]) -> list[dict]:
    """Compute-optimal N and D at each budget (Hoffmann eq. 4)."""
    from planner.laws.chinchilla import ChinchillaParams, compute_optimal

    p = ChinchillaParams(**{k: constants[k] for k in ("E", "A", "B", "alpha", "beta")})
    out = []
    for c in budgets:
        n, d = compute_optimal(c, p)
        out.append({"flops": c, "N": float(n), "D": float(d), "D_per_N": float(d / n)})
    return out


# ----------------------------------------------------------------------------- report


@dataclass
class Written:
    """What write_results produced, for the CLI's summary and exit status."""

    out_dir: Path
    files: dict[str, str]
    skipped: dict[str, str]
    law: LawOutcome
    batch: BatchOutcome
    units: Units
    n_ok: int
    n_failed: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        fit = self.law.fit.to_dict() if self.law.fit is not None else None
        return {"out": str(self.out_dir), "files": self.files, "skipped": self.skipped, "n_ok": self.n_ok,
                "n_failed": self.n_failed, "units": self.units.__dict__, "loss_law": fit,
                "loss_law_problem": self.law.problem,
                "batch_law": self.batch.fit.to_dict() if self.batch.fit is not None else None,
                "batch_law_problem": self.batch.problem, "batch_dropped_targets": self.batch.dropped,
                "warnings": self.warnings}


def report_markdown(w: Written, results: list[ProbeResult], plan: ProbePlan | None, mfu: list[dict]) -> str:
    """The short markdown report: plan, probes, constants, flags, prior law, CBS, MFU, next steps."""
    lines = ["# Calibration report", ""]
    lines += _plan_section(plan, results, w)
    if w.units.byte_level:
        lines += [("> **Units warning.** The probes trained on byte-level text: the loss is in **nats per byte** "
                  "and D counts **bytes**. These constants are NOT comparable with token-level published "
                  f"constants such as {PRIOR_LAW} (nats per token of a 32k SentencePiece vocabulary). "
                  "Convert with L_tok = L_byte x (bytes/token) and D_tok = D_bytes / (bytes/token) only as a rough "
                  "guide; calibrate on your own tokenised corpus for production constants (calibration.md §1.5)."),
                  ""]
    lines += _law_section(w, results)
    lines += _batch_section(w)
    lines += _mfu_section(mfu)
    lines += _next_section(w, mfu)
    return "\n".join(lines) + "\n"


def _plan_section(plan, results, w: Written) -> list[str]:
    out = ["## Plan and probes", ""]
    if plan is not None:
        out.append(f"- preset **{plan.preset}** on {plan.n_devices} {plan.device} device(s), data `{plan.data}`: "
                   f"{len(plan.probes)} probes ({sum(p.spec.kind == 'ladder' for p in plan.probes)} ladder sizes, "
                   f"{sum(p.spec.kind == 'cbs' for p in plan.probes)} CBS batch sizes), "
                   f"{plan.total_device_hours:.3g} device-hours planned, ladder span {plan.span:.1f}x")
    out.append(f"- results: {w.n_ok} runs/branches finished, {w.n_failed} failed")
    for r in sorted((r for r in results if r.status == "failed"), key=lambda r: r.id):
        out.append(f"  - `{r.id}` failed: {' '.join(str(r.reason).split())[:200]}")
    return out + [""]


def _law_section(w: Written, results) -> list[str]:
    law = w.law
    out = ["## Loss law L(N, D) = E + A/N^alpha + B/D^beta", "",
           (f"Fit points: {law.n_points} of {law.planned_points} planned post-decay ladder points over "
           f"{law.n_sizes} of {law.planned_sizes} sizes (N total parameters; loss {w.units.loss}; D "
           f"{w.units.tokens})."), ""]
    if law.problem:
        out += [f"**No law written: {law.problem}.**", ""]
    fit = law.fit
    if fit is None:
        return out
    prior = prior_law()
    iv = (fit.intervals or {}).get("params") or {}
    head = f"| constant | calibrated | 95% bootstrap interval | prior {PRIOR_LAW} |"
    out += [head, "| --- | ---: | ---: | ---: |"]
    for k in ("E", "A", "B", "alpha", "beta"):
        band = f"{iv[k]['low']:.4g} - {iv[k]['high']:.4g}" if k in iv else ""
        pv = f"{getattr(prior.constants, k):.4g}" if prior else "(unreadable)"
        out.append(f"| {k} | {getattr(fit, k):.4g} | {band} | {pv} |")
    out += ["", (f"Objective: {fit.objective_name} = {fit.objective:.4g}; {fit.n_starts_at_best} of {fit.n_starts} "
                f"starts reached the best fit."), ""]
    if law.boot is not None:
        out += [(f"Intervals: {law.boot.method}; each group is one probe size with its cooldown branches, whose "
                 "points share one run (calibration.md §1.4)."), ""]
    if fit.flags:
        out += ["Flags:", ""] + [f"- **{flag}**" for flag in fit.flags] + [""]
    if any(flag.startswith("unidentified") for flag in fit.flags):
        out += [("**The data cannot identify this law**: the bootstrap intervals span orders of magnitude. These "
                "constants show that the pipeline works; do not plan with them (calibration.md §1.3: 4-5 sizes "
                "over >= 15x in N, 3-4 post-decay points each)."), ""]
    if any(flag.startswith("boundary: E") for flag in fit.flags):
        out += [("E sits at its boundary (0): the probes are too small to show a loss floor, so E and everything "
                "dominated by it (losses of large models, the frontier at large budgets) are not identified "
                "(calibration.md §5)."), ""]
    if prior is not None:
        out += _comparison(fit, prior, results, w.units)
    return out


def _comparison(fit, prior, results, units: Units) -> list[str]:
    from planner.units import sci, si

    budgets = budgets_for(ladder_rows(results))
    mine = recommendations(fit.to_dict(), budgets)
    theirs = recommendations(prior.constants.model_dump(), budgets)
    out = ["### What each law recommends (compute-optimal, Hoffmann eq. 4)", "",
           f"| budget 6ND (FLOP) | calibrated N | calibrated D | D/N | {PRIOR_LAW} N | {PRIOR_LAW} D | D/N |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for a, b in zip(mine, theirs):
        out.append(f"| {sci(a['flops'])} | {si(a['N'])} | {si(a['D'])} | {a['D_per_N']:.3g} | {si(b['N'])} | "
                   f"{si(b['D'])} | {b['D_per_N']:.3g} |")
    out += ["", (f"The first budget is the largest probe's own compute. Calibrated D counts {units.tokens}; "
                f"{PRIOR_LAW} counts tokens ({prior.units.loss})."), ""]
    return out


def _batch_section(w: Written) -> list[str]:
    b = w.batch
    out = ["## Critical batch size (Zhang et al. 2024, 20% overhead)", ""]
    if b.rows:
        out.append(f"Steps to target for {len({r['target'] for r in b.rows})} loss targets across "
                   f"{len({r['batch_size_sequences'] for r in b.rows})} batch sizes; B_ref = {b.b_ref:g} sequences "
                   "(the sweep's smallest batch, inside the linear-scaling regime); D = the tokens that batch "
                   "needed to reach the target.")
        out.append("")
    for d in b.dropped:
        out.append(f"- dropped {d}")
    if b.dropped:
        out.append("")
    if b.problem:
        out += [f"**No batch law written: {b.problem}.**", ""]
    if b.fit is not None:
        out += ["| tokens D | S_min (steps) | E_min (seq) | B_crit (seq) | CBS (seq) |",
                "| ---: | ---: | ---: | ---: | ---: |"]
        out += [f"| {g.D:.4g} | {g.S_min:.1f} | {g.E_min:.4g} | {g.B_crit:.1f} | {g.cbs:.1f} |" for g in b.fit.groups]
        coef, exp = b.fit.d_law
        out += ["", f"CBS(D) = {coef:.4g} * D^{exp:.3f} sequences of {b.rows[0]['seq_len']} (D in {w.units.tokens}).",
                ""]
        out += [f"- **{flag}**" for flag in b.flags] + ([""] if b.flags else [])
    return out


def _mfu_section(mfu: list[dict]) -> list[str]:
    if not mfu:
        return []
    out = ["## Throughput and MFU", "", "| probe | params | ranks | device | tokens/s | GFLOP/s | MFU | MFU (6N) |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for m in mfu:
        pct = lambda v: "" if v is None else f"{100 * v:.1f}%"
        out.append(f"| {m['probe']} | {m['params']:,} | {m['n_procs']} | {m['device']} | {m['tokens_per_s']:.4g} | "
                   f"{m['flops_per_s'] / 1e9:.3g} | {pct(m['mfu'])} | {pct(m['mfu_6n'])} |")
    if all(m["mfu"] is None for m in mfu):
        out += ["", "No MFU on CPU (no dense peak to divide by); GFLOP/s counts (6N + 12LdT) per token."]
    return out + [""]


def _next_section(w: Written, mfu: list[dict]) -> list[str]:
    out = ["## Use it", ""]
    if w.law.profile is None:
        return out + ["No law was written; see above."]
    d = w.out_dir
    flags = [f"--law {d / LAW}"]
    if w.batch.profile is not None:
        flags.append(f"--batch-law {d / BATCH}")
    ladder = [m for m in mfu if m["kind"] == "ladder" and m["mfu"]]
    if ladder:  # the largest probe's measured MFU: a lower bound for a production-size model (h100-probe-mfu.md)
        flags.append(f"--mfu {max(ladder, key=lambda m: m['params'])['mfu']:.3f}")
    sizes = [m["params"] for m in mfu if m["kind"] == "ladder"]
    flags.append(f"--params {max(sizes) if sizes else 'N'}")
    out += [f"    planner recommend {' '.join(flags)} --json", "",
            (f"(refit by hand: `planner fit {d / LADDER_CSV} --bootstrap 1000`, "
            f"`planner fit-cbs {d / CBS_CSV} --b-ref {w.batch.b_ref or 256:g}`.)")]
    return out


# ----------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(path: Path, results: list[ProbeResult], fit, units: Units) -> None:
    """Loss against tokens per size: stable-phase curve, post-decay points, and the fitted law."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    rows = ladder_rows(results)
    sizes = sorted({r.n_params for r in rows})
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(sizes), 1)))
    for c, n in zip(colours, sizes):
        pts = [r for r in rows if r.n_params == n]
        main = next((r for r in pts if r.id == r.probe_id), None)
        if main is not None:
            stable = [(p.tokens, p.loss) for p in main.curve[:-1] if p.loss is not None and p.tokens > 0]
            if stable:
                ax.plot(*zip(*stable), color=c, alpha=0.35, lw=1)
        ax.scatter([r.tokens for r in pts], [r.loss for r in pts], color=c, zorder=3, label=f"N = {n:,}")
        if fit is not None:
            grid = np.geomspace(min(r.tokens for r in pts) / 2, max(r.tokens for r in pts) * 2, 100)
            ax.plot(grid, fit.E + fit.A / n**fit.alpha + fit.B / grid**fit.beta, color=c, ls="--")
    title = "post-decay points (dots), stable phase (faint), fitted law (dashed)"
    ax.set(xscale="log", xlabel=units.tokens, ylabel=f"held-out loss, {units.loss.split(' (')[0]}", title=title)
    ax.title.set_fontsize(9)
    if sizes:
        ax.legend(fontsize=7)
    _save(fig, plt, path)


def plot_cbs(path: Path, batch: BatchOutcome, units: Units) -> None:
    """Steps to target against batch size per target, the fitted R(B) = a + b/B, and the CBS marked."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    targets = sorted({r["target"] for r in batch.rows}, reverse=True)
    colours = plt.cm.plasma(np.linspace(0, 0.85, max(len(targets), 1)))
    groups = {g.D: g for g in batch.fit.groups} if batch.fit is not None else {}
    for c, t in zip(colours, targets):
        rows = [r for r in batch.rows if r["target"] == t]
        B = [r["batch_size_sequences"] for r in rows]
        ax.scatter(B, [r["steps_to_target"] for r in rows], color=c, label=f"loss {t:g}")
        g = groups.get(float(rows[0]["tokens_at_target"]))
        if g is not None:
            grid = np.geomspace(min(B) / 1.5, max(B) * 1.5, 100)
            ax.plot(grid, g.S_min + g.E_min / grid, color=c, ls="--")
            ax.scatter([g.cbs], [g.S_min + g.E_min / g.cbs], color=c, marker="*", s=160, edgecolor="k", zorder=4)
    ref = f", B_ref = {batch.b_ref:g}" if batch.b_ref else ""
    ax.set(xscale="log", yscale="log", xlabel="batch size (sequences)", ylabel="steps to target (EWA loss)",
           title=f"steps to target; fitted R(B) = a + b/B (dashed), CBS (star){ref}")
    ax.title.set_fontsize(9)
    if targets:
        ax.legend(fontsize=6, ncol=2)
    _save(fig, plt, path)


def _save(fig, plt, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        fig.tight_layout()
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- the whole directory


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_results(out_dir: str | os.PathLike, results: list[ProbeResult], *, plan: ProbePlan | None = None,
                  date: str, n_bootstrap: int = 1000, seed: int = 0, plots: bool = True) -> Written:
    """Write every derived file of the results directory (runs.jsonl is the launcher's); see the module doc."""
    d = Path(out_dir)
    units = units_of(results)
    files = {RUNS: "one line per finished or failed run and branch (resume key)"}
    skipped: dict[str, str] = {}
    mfu = _write_tables(d, results, files)
    name = _name(d)
    law = fit_law(results, plan=plan, n_bootstrap=n_bootstrap, seed=seed, name=name, date=date,
                  input_sha256=sha256_of(d / LADDER_CSV), units=units)
    _write_or_remove(d / LAW, law.profile, law.problem, files, skipped, "the fitted loss law (recommend --law)",
                     "# Written by `planner calibrate`; the fit points are ladder.csv.\n")
    batch = fit_batch(results, name=f"{name}-cbs", date=date, units=units)
    write_csv(d / CBS_CSV, batch.rows, ["target", "model_nonemb_params", "tokens_at_target", "batch_size_sequences",
                                        "steps_to_target", "seq_len"])
    files[CBS_CSV] = "steps to each target per batch size (planner fit-cbs input)"
    _write_or_remove(d / BATCH, batch.profile, batch.problem, files, skipped,
                     "the fitted CBS(D) law (recommend --batch-law)",
                     "# Written by `planner calibrate`; the sweep's rows are cbs.csv.\n")
    w = Written(d, files, skipped, law, batch, units, sum(r.status == "ok" for r in results),
                sum(r.status == "failed" for r in results))
    w.warnings += [f"no batch law: {batch.problem}"] if batch.problem else []
    w.warnings += [f"batch law: {flag}" for flag in batch.flags]
    w.warnings += [f"loss law: {flag}" for flag in (law.fit.flags if law.fit is not None else ())]
    if plots:
        _write_plots(d, results, w)
    files[REPORT] = "this calibration in words"
    tmp = d / (REPORT + ".tmp")
    tmp.write_text(report_markdown(w, results, plan, mfu))
    os.replace(tmp, d / REPORT)
    return w


def _write_tables(d: Path, results: list[ProbeResult], files: dict[str, str]) -> list[dict]:
    """ladder.csv, curves.csv and mfu.csv; returns the MFU rows (the report shows them)."""
    from planner.calibrate_run import write_ladder_csv

    write_ladder_csv(results, d / LADDER_CSV)
    files[LADDER_CSV] = "loss-law fit points (post-decay ladder points)"
    write_csv(d / CURVES_CSV, curve_rows(results),
              ["id", "probe", "kind", "params", "batch_tokens", "phase", "step", "tokens", "loss", "ewa_loss"])
    files[CURVES_CSV] = "every held-out evaluation (loss and EWA loss)"
    mfu = mfu_rows(results)
    write_csv(d / MFU_CSV, mfu, ["probe", "kind", "params", "params_non_embedding", "n_layer", "n_embd",
                                 "batch_tokens", "n_procs", "device", "tokens_per_s", "flops_per_s", "mfu", "mfu_6n"])
    files[MFU_CSV] = "throughput and MFU per probe"
    return mfu


def _write_plots(d: Path, results: list[ProbeResult], w: Written) -> None:
    plot_loss(d / LOSS_PNG, results, w.law.fit if w.law.profile is not None else None, w.units)
    w.files[LOSS_PNG] = "loss against tokens per size, with the fitted law"
    if w.batch.rows:
        plot_cbs(d / CBS_PNG, w.batch, w.units)
        w.files[CBS_PNG] = "steps to target against batch size, CBS marked"
    else:
        (d / CBS_PNG).unlink(missing_ok=True)
        w.skipped[CBS_PNG] = "no CBS rows"


def _write_or_remove(path: Path, profile: dict | None, problem: str | None, files, skipped, what, comment) -> None:
    """Write the profile, or remove a stale one from an earlier run so that nothing outdated is used."""
    if profile is not None:
        write_yaml(path, profile, comment)
        files[path.name] = what
    else:
        path.unlink(missing_ok=True)
        skipped[path.name] = problem or "not fitted"


def _name(d: Path) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in d.resolve().name).strip("-.")
    return stem or "calibration"


def verdict(w: Written) -> PlannerError | None:
    """The error the command should exit with after writing everything (None: exit 0).

    Too few points -> ProbeError (6); a fit that cannot be a law -> FitError (5); any failed probe ->
    ProbeError (6), the law then being fitted without it. A missing batch law is only a warning.
    """
    report = w.out_dir / REPORT
    if w.law.too_few:
        return ProbeError(w.law.problem, hint=f"see {report} and the failed probes in {w.out_dir / RUNS}; "
                                              "rerun with --retry-failed, or plan more sizes")
    if w.law.problem:
        return FitError(w.law.problem, hint=f"see {report}; more sizes or a wider span identify the law")
    if w.n_failed:
        return ProbeError(f"{w.n_failed} of {w.n_ok + w.n_failed} probe results failed (see {w.out_dir / RUNS}); "
                          f"the law in {w.out_dir / LAW} was fitted without them",
                          hint="rerun the same command with --retry-failed to retry them")
    return None

