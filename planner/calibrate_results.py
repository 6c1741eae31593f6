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
that target, and Zhang's B_ref = that smallest batch (the run closest to the linear-scaling regime);
both live in planner.calibrate_fits, report.md and the plots in planner.calibrate_report.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from planner.calibrate_fits import (  # noqa: F401  (re-exported: the CLI and tests use them from here)
    BATCH,
    CBS_CSV,
    CBS_PNG,
    CURVES_CSV,
    LADDER_CSV,
    LAW,
    LOSS_PNG,
    MFU_CSV,
    MIN_BATCHES,
    REPORT,
    RUNS,
    WORK,
    BatchOutcome,
    LawOutcome,
    Units,
    _usable_samples,
    cbs_rows,
    fit_batch,
    fit_law,
    units_of,
)
from planner.calibrate_report import Written, plot_cbs, plot_loss, report_markdown
from planner.errors import FitError, PlannerError, ProbeError
from planner.schemas.probe import ProbePlan, ProbeResult

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
