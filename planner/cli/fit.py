"""`planner fit RUNS` (Chinchilla loss law) and `planner fit-cbs RUNS` (critical batch size laws).

Thin adapters: flags -> observations.read_* -> planner.laws.fit / cbs_fit -> render_fit. numpy, scipy
and matplotlib are imported inside the commands, so `planner --help` stays light.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import check_output_path, emit_data, output_format, stderr_console, stdout_console, warn
from planner.errors import ConfigError, ExitStatus, FitError, PlannerError, UsageError


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
    app.command("fit-cbs")(fit_cbs)


def _progress(label: str):
    """A rich progress callback on stderr when it is a terminal; otherwise None (no output)."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import Progress

    bar = Progress(console=stderr_console(), transient=True)
    task = bar.add_task(label, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def _count(value: int, flag: str) -> int:
    if value < 0:
        raise UsageError(f"{flag}: must be zero or more, got {value}", hint=f"give {flag} a whole number >= 0")
    return value


@contextlib.contextmanager
def _no_resume(command: str):
    """Ctrl-C: a fit keeps nothing to resume from, so say so (not the shared "rerun to continue")."""
    try:
        yield
    except KeyboardInterrupt:
        raise PlannerError("interrupted", hint=f"`planner {command}` does not resume; rerun the command to fit "
                           "from the start", exit_status=ExitStatus.INTERRUPTED) from None


def fit(
    runs: Annotated[Path, typer.Argument(help="CSV or JSONL file, one row per run.")],
    params_col: Annotated[str, typer.Option(help="Column of parameter counts N.")] = "params",
    tokens_col: Annotated[str, typer.Option(help="Column of training tokens D.")] = "tokens",
    compute_col: Annotated[str, typer.Option(help="Used when there is no tokens column: D = C/(6N).")] = "compute",
    loss_col: Annotated[str, typer.Option(help="Column of final losses.")] = "loss",
    drop_top_loss: Annotated[int, typer.Option(help="Drop the K highest-loss runs first (Epoch dropped 5).")] = 0,
    objective: Annotated[str, typer.Option(help="huber (Hoffmann), mse, asymmetric or mle (Epoch).")] = "huber",
    bootstrap: Annotated[int, typer.Option(help="Resample the runs K times and refit; 0 = no intervals.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resamples.")] = 0,
    budget: Annotated[list[str] | None, typer.Option(help="FLOP budget for N_opt/D_opt bands (repeatable). \\[default: 1e21..1e24]")] = None,
    target_loss: Annotated[str | None, typer.Option(help="Also band the inference-aware N, D at this loss.")] = None,
    inference_tokens: Annotated[str, typer.Option(help="Lifetime inference tokens for --target-loss.")] = "0",
    workers: Annotated[int, typer.Option(help="Processes for the multi-start fit.")] = 1,
    write_law: Annotated[Path | None, typer.Option(help="Write the fitted law as a profile YAML here.")] = None,
    force: Annotated[bool, typer.Option(help="Write the law even when a constant is unidentified or on the fitter's bound.")] = False,
    name: Annotated[str | None, typer.Option(help="Name of the written law. \\[default: the file's stem]")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG: data and curves, residuals, N_opt cloud.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print the result as YAML on stdout.")] = False,
) -> None:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta to your runs (Hoffmann's 4,500-start Huber fit).

    Example: planner fit runs.csv --compute-col flops --drop-top-loss 5 --bootstrap 1000
    """
    from planner import fitting, observations, render_fit
    from planner.cli._common import validated
    from planner.schemas.fit import DEFAULT_BUDGETS, FitRequest
    from planner.units import parse_quantity

    fmt = output_format(as_json, as_yaml)
    _count(seed, "--seed")
    check_output_path(write_law, "--write-law")
    check_output_path(plot, "--plot", ".png")
    request = validated(FitRequest, objective=objective, drop_top_loss=drop_top_loss, bootstrap=bootstrap, seed=seed,
                        budgets=[parse_quantity(b, "--budget") for b in budget] if budget else list(DEFAULT_BUDGETS),
                        target_loss=None if target_loss is None else parse_quantity(target_loss, "--target-loss"),
                        inference_tokens=parse_quantity(inference_tokens, "--inference-tokens", allow_zero=True),
                        workers=workers)  # fmt: skip
    given = [flag for flag, on in (("--budget", bool(budget)), ("--target-loss", target_loss is not None),
                                   ("--inference-tokens", request.inference_tokens != 0)) if on]
    if given and not request.bootstrap:  # they choose what the bootstrap bands: nothing to band without it
        warn(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} ignored without --bootstrap "
             "(they choose the recommendations banded over the bootstrap draws)")
    elif request.inference_tokens != 0 and target_loss is None:
        warn("--inference-tokens is ignored without --target-loss")
    if seed != 0 and not request.bootstrap:
        warn("--seed is ignored without --bootstrap (it seeds the bootstrap resamples)")
    unused = [flag for flag, on in (("--force", force), ("--name", name is not None)) if on]
    if unused and write_law is None:
        warn(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} ignored without --write-law "
             "(they apply to the written law)")
    with _no_resume("fit"):
        data = observations.read_runs(runs, params_col=params_col, tokens_col=tokens_col, compute_col=compute_col,
                                      loss_col=loss_col, drop_top_loss=request.drop_top_loss, n_params=request.n_params)
        if data.compute_ignored is not None:
            warn(f"the file has both a tokens column '{tokens_col}' and a compute column '{data.compute_ignored}': "
                 f"D comes from '{tokens_col}' and '{data.compute_ignored}' is ignored")
        elif compute_col != "compute" and not data.tokens_from.startswith(f"column '{compute_col}'"):
            warn(f"--compute-col '{compute_col}' is ignored: D comes from the tokens column '{tokens_col}'")
        bar, progress = _progress("fitting")
        with bar or contextlib.nullcontext():
            result, boot = fitting.fit_law(request, data.N, data.D, data.L, progress)
        unidentified, at_bound = fitting.unidentified(result), fitting.at_bound(result)
        if write_law is not None and (unidentified or at_bound) and not force:
            why = ([f"the runs do not identify it: {'; '.join(unidentified)}"] if unidentified else []) + at_bound
            raise FitError("--write-law: refusing to write the law: " + "; and ".join(why),
                           hint="add runs that span more model sizes and token counts, or pass --force to write it anyway")
        for flag in result.flags:
            warn(flag)
        if write_law is not None:
            _write_law(result, boot, data, write_law, name or Path(runs).stem)
        if plot is not None:
            render_fit.plot_loss_fit(plot, data.N, data.D, data.L, result, boot, request.budgets)
            stderr_console().print(f"wrote {plot}", markup=False, soft_wrap=True)
    out = {**result.to_dict(), "input": {"file": data.path, "sha256": data.sha256, "n_read": data.n_read,
                                         "dropped_rows": list(data.dropped_rows), "tokens_from": data.tokens_from}}
    if fmt != "table":
        emit_data(out, fmt)
        return
    stdout_console().print(render_fit.loss_fit_summary(result))


def _write_law(result, boot, data, path: Path, name: str) -> None:
    import datetime

    from planner.laws.fit_uncertainty import loss_law_profile
    from planner.schemas.laws import LawProfile

    prof = loss_law_profile(result, name=name, date=datetime.date.today().isoformat(),
                            input_file=Path(data.path).name, input_sha256=data.sha256, boot=boot)
    _write_profile(LawProfile, prof, path)


def fit_cbs(
    runs: Annotated[Path, typer.Argument(help="CSV or JSONL: model size and/or tokens, batch size, steps to target.")],
    params_col: Annotated[str, typer.Option(help="Column of model sizes (non-embedding params).")] = "model_nonemb_params",
    tokens_col: Annotated[str, typer.Option(help="Column of tokens at the target loss.")] = "tokens_at_target",
    batch_col: Annotated[str, typer.Option(help="Batch size in sequences.")] = "batch_size_sequences",
    steps_col: Annotated[str, typer.Option(help="Column of steps to reach the target loss.")] = "steps_to_target",
    seq_len_col: Annotated[str, typer.Option(help="Column of the sequence length (optional).")] = "seq_len",
    b_ref: Annotated[str, typer.Option(help="Zhang's reference batch, sequences.")] = "256",
    overhead: Annotated[float, typer.Option(help="Step overhead that defines the CBS (Zhang: 0.2).")] = 0.2,
    bootstrap: Annotated[int, typer.Option(help="Resample batch sizes within each group K times.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resamples.")] = 0,
    name: Annotated[str | None, typer.Option(help="Name of the batch law. \\[default: the file's stem]")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Tokens per sequence when the file has no seq_len column.")] = None,
    write_law: Annotated[Path | None, typer.Option(help="Write a batch-law profile for `recommend --batch-law`.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print the result as YAML on stdout.")] = False,
) -> None:
    """Fit critical batch sizes (Zhang et al. 2024) per model and their laws in N and D.

    Example: planner fit-cbs zhang_cbs_steps.csv --bootstrap 1000
    """
    from planner import observations, render_fit
    from planner.laws import cbs_fit as core
    from planner.units import check_fraction, parse_quantity

    fmt = output_format(as_json, as_yaml)
    ref = parse_quantity(b_ref, "--b-ref")
    check_fraction(overhead, "--overhead")
    _count(bootstrap, "--bootstrap")
    _count(seed, "--seed")
    if seed != 0 and not bootstrap:
        warn("--seed is ignored without --bootstrap (it seeds the bootstrap resamples)")
    if seq_len is not None and seq_len < 1:
        raise UsageError(f"--seq-len: must be a whole number >= 1, got {seq_len}",
                         hint="give --seq-len the tokens per sequence of the batches, e.g. 2048")
    check_output_path(write_law, "--write-law")
    with _no_resume("fit-cbs"):
        data = observations.read_batch_runs(runs, params_col=params_col, tokens_col=tokens_col, batch_col=batch_col,
                                            steps_col=steps_col, seq_len_col=seq_len_col)
        for flag, col, default, values in (("--params-col", params_col, "model_nonemb_params", data.N),
                                           ("--tokens-col", tokens_col, "tokens_at_target", data.D)):
            if values is None and col != default:  # named on purpose, yet absent: not a silent half-fit
                raise ConfigError(f"{runs}: no column '{col}' ({flag})", hint=f"check {flag} against the file's header")
        if seq_len is not None and data.seq_len is not None and seq_len != data.seq_len:
            raise UsageError(f"--seq-len {seq_len} conflicts with the file's {seq_len_col} column ({data.seq_len:g})",
                             hint="drop --seq-len: it is for files without a seq_len column")
        tokens_per_seq = seq_len if seq_len is not None else data.seq_len
        if tokens_per_seq is None:
            raise ConfigError(f"{runs}: no column '{seq_len_col}' (--seq-len-col) and no --seq-len",
                              hint="give --seq-len, the tokens per sequence of the batches, or add a "
                                   f"'{seq_len_col}' column to the file")
        outside = core.b_ref_outside(data.N, data.D, data.batch, ref)
        if outside:
            label, lo, hi = outside[0]
            more = f" and {len(outside) - 1} more" if len(outside) > 1 else ""
            warn(f"--b-ref {ref:g} sequences lies outside the measured batch sizes of group {label} ({lo:g} to "
                 f"{hi:g} sequences){more}, so the CBS extrapolates R(B) beyond the runs; give a --b-ref among the measured batches "
                 "(Zhang et al. use 256 sequences, a batch they measured)")
        result = core.fit_cbs(data.N, data.D, data.batch, data.steps, b_ref=ref, overhead=overhead)
        if bootstrap:
            result = core.bootstrap_cbs(data.N, data.D, data.batch, data.steps, result, n_samples=bootstrap,
                                        seed=seed)
        profile = core.batch_law_profile(result, name=name or Path(runs).stem,
                                         source=f"planner fit-cbs of {Path(data.path).name} (sha256 {data.sha256})",
                                         seq_len=tokens_per_seq)
        if write_law is not None:
            core.require_law(result)
            _write_batch_law(profile, write_law)
    if fmt != "table":
        emit_data({**result.to_dict(), "profile": profile, "input": {"file": data.path, "sha256": data.sha256}}, fmt)
        return
    stdout_console().print(render_fit.cbs_fit_table(result))


def _write_batch_law(profile: dict, path: Path) -> None:
    from planner.schemas.batch import BatchLawProfile

    _write_profile(BatchLawProfile, profile, path)


def _write_profile(schema, profile: dict, path: Path) -> None:
    """Validate a fitted profile against its schema (what we write must load) and write it as YAML."""
    import yaml

    law = schema.model_validate(profile)
    try:
        path.write_text(yaml.safe_dump(law.model_dump(mode="json", exclude_none=True), sort_keys=False))
    except OSError as exc:
        raise UsageError(f"--write-law: cannot write {path}: {exc.strerror}", hint="choose a writable path") from None
    stderr_console().print(f"wrote {path}", markup=False, soft_wrap=True)
