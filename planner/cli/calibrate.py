"""`planner calibrate`: plan probes (pure) -> run them through torchrun children -> fit the laws.

Thin adapter: flags -> planner.probe_plan.make_plan -> planner.calibrate_run.run_calibration ->
planner.calibrate_results.write_results (fits, profiles, report, plots in --out DIR) ->
planner.render_calibrate. torch is never imported here: `--dry-run` works without it and the probes
import it in their own processes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import emit_data, stderr_console, stdout_console, warn
from planner.defaults import DEFAULT_GPU

MAX_GPUS = 65_536  # per node
MAX_VOCAB = 2**31  # token ids in 32 bits
MAX_SEED = 2**63 - 1  # torch.manual_seed and numpy both take it
MAX_BOOTSTRAP = 100_000  # each resample refits the law: beyond this, hours and memory for nothing


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)


def calibrate(
    preset: Annotated[str | None, typer.Option(help="smoke (CPU, ~1 min), gpu (1 GPU-hour class) or budget. \\[default: smoke on --device cpu, else gpu; budget with --budget-gpu-hours]")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda. \\[default: cpu for --preset smoke or no flags; cuda for --preset gpu/budget, --budget-gpu-hours or --gpus]")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs per node to use (implies --device cuda unless --preset smoke; CPU cores on --device cpu). \\[default: all visible]")] = None,
    budget_gpu_hours: Annotated[float | None, typer.Option(help="GPU-hours for ladder + CBS sweep (preset budget).")] = None,
    gpu: Annotated[str | None, typer.Option(help=f"Hardware profile for the dense bf16 peak and MFU prior (`planner hardware list`); GPU presets only. \\[default: {DEFAULT_GPU}]")] = None,
    mfu: Annotated[float | None, typer.Option(help="MFU prior, 0-1. \\[default: the profile's]")] = None,
    data: Annotated[str, typer.Option(help="stdlib (demo, bytes), synthetic:zipf (tests), a text dir, .jsonl, .bin or .npy.")] = "stdlib",
    vocab_size: Annotated[int | None, typer.Option(help="Vocabulary of .bin/.npy token files (uint32 .bin above 65536), at most 2^31. \\[default: a token file's largest id + 1, rounded up to 64; 257 (bytes) for text]")] = None,
    out: Annotated[str, typer.Option(help="Results directory: runs.jsonl (rerun to resume), law.yaml, batch.yaml, report.md, plots.")] = "calibration",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop (needs no torch).")] = False,
    probes_per_gpu: Annotated[int, typer.Option(help="Small probes sharing one GPU.")] = 1,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Rerun probes recorded as failed.")] = False,
    nnodes: Annotated[int, typer.Option(help="Nodes (torchrun --nnodes): every probe then runs DDP over nnodes x --gpus, one at a time, and the plan says so; see planner/calibrate_run.py for SLURM.")] = 1,
    node_rank: Annotated[int, typer.Option(help="This node's rank (torchrun --node-rank).")] = 0,
    rdzv_endpoint: Annotated[str | None, typer.Option(help="HOST:PORT of node 0 (torchrun --rdzv-endpoint).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every probe and of the bootstrap, 0 to 2^63-1.")] = 0,
    bootstrap: Annotated[int, typer.Option(help="Resamples of the fit points for the law's intervals, at most 100000; 0 = none.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan (--dry-run) or the results as JSON.")] = False,
) -> None:
    """Run short real pre-training probes and refit the loss law (and measure the CBS) on your data.

    Example: planner calibrate --device cpu --preset smoke --out calibration/
    """
    from planner import calibrate_run, probe_plan
    from planner.errors import MissingExtra, UsageError
    from planner.render_calibrate import plan_table

    _check_flags(gpus=gpus, budget_gpu_hours=budget_gpu_hours, mfu=mfu, vocab_size=vocab_size,
                 probes_per_gpu=probes_per_gpu, nnodes=nnodes, node_rank=node_rank, seed=seed, bootstrap=bootstrap)
    device = device or _default_device(preset, budget_gpu_hours, gpus)
    preset = preset or ("budget" if budget_gpu_hours is not None else "smoke" if device == "cpu" else "gpu")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device: expected cpu or cuda (not {device!r})")
    if nnodes > 1 and not rdzv_endpoint:
        raise UsageError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT", hint="see `planner calibrate --help`")
    if nnodes > 1:
        _check_endpoint(rdzv_endpoint)
    out = _check_out(out)
    data = _check_data(data)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: --out names a results directory",
                         hint="give a directory, e.g. --out calibration/ (an old runs.jsonl can be moved into it)")
    if (preset == "smoke") != (device == "cpu"):
        raise UsageError(f"--preset {preset} runs on {'cpu' if preset == 'smoke' else 'cuda'}, not --device {device}",
                         hint="use --preset smoke with --device cpu, and gpu or budget with --device cuda")
    if device == "cpu":
        n_devices = gpus or os.cpu_count() or 1
    else:
        n_devices = gpus or _visible_gpus()
    peak = prior = None
    if preset != "smoke" or gpu is not None:  # a given profile is checked even where the preset ignores it
        from planner import resolve

        hw = resolve.load_hardware(gpu or DEFAULT_GPU).profile
        if preset != "smoke":
            peak, prior = resolve.peak(hw, "bf16", "--gpu"), mfu or hw.mfu_prior
    ignored = [f"{flag} is ignored by --preset {preset}" for flag, value, used in (
        ("--budget-gpu-hours", budget_gpu_hours, preset == "budget"), ("--mfu", mfu, preset != "smoke"),
        ("--gpu", gpu, preset != "smoke")) if value is not None and not used]
    if rdzv_endpoint is not None and nnodes == 1:
        ignored.append("--rdzv-endpoint is ignored with --nnodes 1: a single node runs its DDP probes under "
                       "torchrun --standalone")
    model_vocab = None if vocab_size is not None else calibrate_run.inferred_vocab(data)  # token files
    plan = probe_plan.make_plan(preset, n_devices=n_devices, budget_gpu_hours=budget_gpu_hours,
                                peak_flops_per_s=peak, mfu_prior=prior, data=data, data_vocab_size=vocab_size,
                                vocab_size=model_vocab, seed=seed, nnodes=nnodes)
    from planner.calibrate_results import RUNS, WORK

    # before anything is printed or run, dry run included: --out must hold this calibration or none
    calibrate_run.check_resume(plan.specs(), out / RUNS, out / WORK, where=f"--out {out}")
    for w in ignored + plan.warnings + calibrate_run.data_warnings(plan.specs()):  # raises first if data is bad
        warn(w)
    if vocab_size is None and model_vocab is not None:
        stderr_console().print(f"note: --data {data}: probes use a vocabulary of {model_vocab} (largest token id + 1, "
                               f"rounded up to 64); --vocab-size sets it", markup=False, soft_wrap=True)
    for note in plan.notes:
        stderr_console().print(f"note: {note}", markup=False)
    if dry_run:
        done = _already_done(plan, out / RUNS, retry_failed)
        if done is not None:
            stderr_console().print(f"note: --out {out} already holds {done} of {len(plan.probes)} probes complete; "
                                   f"a run skips them", markup=False, soft_wrap=True)
        emit_data(plan.model_dump(mode="json"), "json") if as_json else stdout_console().print(plan_table(plan))
        return
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise MissingExtra("PyTorch is not installed: probes need it (`--dry-run` does not)")
    opts = calibrate_run.LaunchOptions(probes_per_gpu=probes_per_gpu, retry_failed=retry_failed, nnodes=nnodes,
                                       node_rank=node_rank, rdzv_endpoint=rdzv_endpoint)
    from planner import calibrate_results as cres

    out.mkdir(parents=True, exist_ok=True)
    try:
        with calibrate_run.stop_signals_interrupt(), _live(plan=plan, n_devices=n_devices * nnodes) as show:
            outcome = calibrate_run.run_calibration(plan, out / cres.RUNS, n_devices=n_devices, device=device,
                                                    work_dir=out / cres.WORK, options=opts, on_progress=show)
            if node_rank > 0:  # every node shares DIR: only node 0 fits and writes, so nothing is written twice
                stderr_console().print(f"node {node_rank}: probes done; node 0 writes the fits to {out}",
                                       markup=False)
                return
            _report(outcome, plan, out, as_json, bootstrap, seed)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (Terminated): say what was kept, exit 130
        raise _interrupted(out / cres.RUNS, getattr(exc, "name", None)) from None


def _already_done(plan, runs: Path, retry_failed: bool) -> int | None:
    """How many of the plan's probes --out already holds complete (None: no runs.jsonl there)."""
    from planner.calibrate_run import pending

    if not runs.exists():
        return None
    return len(plan.probes) - len(pending(plan.specs(), runs, retry_failed))


def _default_device(preset: str | None, budget_gpu_hours: float | None, gpus: int | None) -> str:
    """cpu for the smoke preset (named, or by default with no GPU flag); cuda for gpu/budget or --gpus."""
    if preset == "smoke":
        return "cpu"
    if preset is not None or budget_gpu_hours is not None or gpus is not None:
        return "cuda"  # --gpus counts GPUs per node: on its own it asks for a GPU run
    return "cpu"


def _check_flags(*, gpus: int | None, budget_gpu_hours: float | None, mfu: float | None, vocab_size: int | None,
                 probes_per_gpu: int, nnodes: int, node_rank: int, seed: int, bootstrap: int) -> None:
    """Reject out-of-range flags up front, naming the flag (a 0 or -1 would otherwise be read as 'not given')."""
    import math

    from planner.errors import UsageError

    problems = [
        (gpus is not None and gpus < 1, f"--gpus: must be 1 or more, got {gpus}",
         "omit --gpus to use every visible GPU (every core with --device cpu)"),
        (gpus is not None and gpus > MAX_GPUS, f"--gpus: at most {MAX_GPUS} per node, got {gpus}",
         "--gpus counts the GPUs (cores with --device cpu) of one node; use --nnodes for more nodes"),
        (budget_gpu_hours is not None and not (math.isfinite(budget_gpu_hours) and budget_gpu_hours > 0),
         f"--budget-gpu-hours: must be a positive number of GPU-hours, got {budget_gpu_hours}",
         "e.g. --budget-gpu-hours 8"),
        (mfu is not None and not 0 < mfu <= 1, f"--mfu: expected a fraction in (0, 1], got {mfu}",
         "e.g. --mfu 0.4; omit it for the hardware profile's prior"),
        (vocab_size is not None and vocab_size < 2, f"--vocab-size: must be at least 2, got {vocab_size}",
         "give the vocabulary of your .bin/.npy token files, e.g. --vocab-size 50304"),
        (vocab_size is not None and vocab_size > MAX_VOCAB, f"--vocab-size: at most 2^31 = {MAX_VOCAB}, got {vocab_size}",
         "give the tokenizer's vocabulary, e.g. --vocab-size 50304 (token ids must fit 32 bits)"),
        (probes_per_gpu < 1, f"--probes-per-gpu: must be 1 or more, got {probes_per_gpu}", "e.g. --probes-per-gpu 2"),
        (nnodes < 1, f"--nnodes: must be 1 or more, got {nnodes}", "omit --nnodes on a single machine"),
        (not 0 <= node_rank < nnodes, f"--node-rank: must be 0 to {nnodes - 1} with --nnodes {nnodes}, got {node_rank}",
         "give each node a rank from 0 to --nnodes minus 1; node 0 writes the fits"),
        (seed < 0, f"--seed: must be zero or more, got {seed}", "e.g. --seed 0"),
        (seed > MAX_SEED, f"--seed: at most 2^63-1 = {MAX_SEED}, got {seed}", "e.g. --seed 0"),
        (bootstrap < 0, f"--bootstrap: must be zero or more, got {bootstrap}", "give --bootstrap 1000, or 0"),
        (bootstrap > MAX_BOOTSTRAP, f"--bootstrap: at most {MAX_BOOTSTRAP} resamples, got {bootstrap}",
         "give --bootstrap 1000 (the default), or 0"),
    ]
    for bad, message, hint in problems:
        if bad:
            raise UsageError(message, hint=hint)


def _check_out(out: str) -> Path:
    """--out as a Path; an empty string is refused (Path('') would silently be the current directory)."""
    from planner.errors import UsageError

    if not out.strip():
        raise UsageError("--out: empty: --out names the results directory",
                         hint="give a directory, e.g. --out calibration/ (the default)")
    return Path(out)


def _check_endpoint(endpoint: str) -> None:
    """--rdzv-endpoint for several nodes: HOST:PORT with a port of 1-65535 (torchrun would fail on every probe)."""
    from planner.errors import UsageError

    host, sep, port = endpoint.rpartition(":")
    if not (sep and host.strip() and port.isdigit() and 0 < int(port) < 65536):
        raise UsageError(f"--rdzv-endpoint: expected HOST:PORT of node 0, got {endpoint!r}",
                         hint="e.g. --rdzv-endpoint node0:29500 (under SLURM, the first host of $SLURM_JOB_NODELIST)")


def _check_data(data: str) -> str:
    """A --data source before anything is planned: a path must exist (made absolute, so that the resume key
    names the same file from any directory); a synthetic:... source must be a known one with valid options."""
    from planner.errors import ConfigError, UsageError

    hint = "give stdlib, synthetic:zipf, a directory of text files, or a .jsonl, .bin or .npy file"
    if not data.strip():  # Path('') is the current directory: it would be read as a text corpus
        raise UsageError("--data: empty", hint=hint)
    if data == "stdlib":
        return data
    if data.startswith("synthetic:"):
        from calibrate.data import SYNTHETIC_SOURCES, parse_synthetic

        try:
            parse_synthetic(data)
        except ValueError as exc:
            raise ConfigError(f"--data {data}: {exc}", hint=f"the synthetic source is {SYNTHETIC_SOURCES}") from None
        return data
    if Path(data).expanduser().exists():
        from planner.calibrate_run import normalise_data

        return normalise_data(data)
    if data.lower().startswith("synthetic"):
        from calibrate.data import SYNTHETIC_SOURCES

        raise ConfigError(f"--data {data}: no such file or directory, nor a synthetic source",
                          hint=f"the synthetic source is {SYNTHETIC_SOURCES}")
    raise ConfigError(f"--data {data}: no such file or directory", hint=hint)


def _interrupted(runs: Path, signame: str | None = None):
    from planner.calibrate_run import read_results
    from planner.errors import ConfigError, ExitStatus, PlannerError

    try:
        ok = sum(r.status == "ok" for r in read_results(runs))
    except ConfigError:
        ok = "the"
    what = f"interrupted by {signame}" if signame else "interrupted"
    return PlannerError(f"{what}: {ok} finished probe results are kept in {runs}; the running probes were stopped",
                        hint="rerun the same command with the same --out to resume", exit_status=ExitStatus.INTERRUPTED)


def _visible_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return len([d for d in visible.split(",") if d.strip()])
    return 1  # torch is not imported here; pass --gpus to use more


class _live:
    """A rich live table on a terminal; otherwise (a SLURM log) plain lines on stderr: one per state change,
    and one per running probe every `every_s` seconds (step, loss, tok/s, MFU, ETA), with the overall line."""

    def __init__(self, every_s: float = 30.0, tty: bool | None = None, plan=None, n_devices: int | None = None):
        self.every_s, self.tty = every_s, sys.stderr.isatty() if tty is None else tty
        self.planned = {p.spec.id: p.est_wall_s for p in plan.probes} if plan is not None else {}
        self.n_devices = n_devices or (plan.n_devices * plan.nnodes if plan is not None else 1)

    def __enter__(self):
        self.states: dict[str, str] = {}
        self.last: dict[str, float] = {}
        self.last_overall: float | None = None
        self.live = None
        if self.tty:
            from rich.live import Live

            self.live = Live(console=stderr_console(), refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self.show

    def show(self, rows) -> None:
        from planner.render_calibrate import overall_line, progress_table

        overall = overall_line(rows, self.planned, self.n_devices)
        if self.live is not None:
            self.live.update(progress_table(rows, overall))
            return
        import time

        from planner.render_calibrate import progress_line

        now = time.monotonic()
        periodic = False
        for r in rows:  # one line per state change, then one every every_s while it runs
            if self.states.get(r.probe_id) != r.state and r.state != "queued":
                stderr_console().print(f"{r.state:8s} {r.probe_id} {r.devices}", markup=False)
                self.last[r.probe_id] = now
            elif r.state == "running" and now - self.last.get(r.probe_id, now) >= self.every_s:
                stderr_console().print(progress_line(r), markup=False, soft_wrap=True)
                self.last[r.probe_id] = now
                periodic = True
            self.states[r.probe_id] = r.state
        if periodic and (self.last_overall is None or now - self.last_overall >= self.every_s):
            stderr_console().print(overall, markup=False, soft_wrap=True)
            self.last_overall = now

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False


def _report(outcome, plan, out: Path, as_json: bool, n_bootstrap: int, seed: int) -> None:
    """Write the results directory, print the results, and exit with the verdict (see calibrate_results)."""
    import datetime

    from planner import calibrate_results as cres
    from planner.render_calibrate import laws_summary, outputs_table, results_table

    if not as_json:
        stdout_console().print(results_table(outcome.results))
    stderr_console().print(f"fitting the laws ({outcome.n_ok} results)...", markup=False)
    written = cres.write_results(out, outcome.results, plan=plan, date=datetime.date.today().isoformat(),
                                 n_bootstrap=n_bootstrap, seed=seed)
    for w in written.warnings:
        warn(w)
    if as_json:
        emit_data({**written.to_dict(), "ran": outcome.ran, "skipped_probes": outcome.skipped,
                   "wall_s": outcome.wall_s}, "json")
    else:
        stdout_console().print(outputs_table({str(out / k): v for k, v in written.files.items()}, written.skipped))
        stdout_console().print(laws_summary(written))
    stderr_console().print(f"report: {out / cres.REPORT}", markup=False)
    error = cres.verdict(written)
    if error is not None:
        raise error
