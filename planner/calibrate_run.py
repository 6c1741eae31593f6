"""Run a probe plan: spec files, torchrun children, resume, Ctrl-C, live progress (I/O; never imports torch).

Each probe is one process group, launched as

    python -m torch.distributed.run --standalone --nproc_per_node=K -m calibrate.probe \\
        --spec WORK/specs/ID.json --out runs.jsonl --status WORK/status/ID.json

(a single-process probe runs as plain `python -m calibrate.probe ...` unless torchrun="always": the
same code path without the rendezvous, ~1 s cheaper per probe). Independent probes run concurrently
up to the available devices: on CPU one core per rank with OMP_NUM_THREADS=1 (calibration.md §5:
threads on a shared host are slower than processes); on GPU one probe per GPU (or `probes_per_gpu`
small ones sharing a GPU), the largest DDP over several, each group pinned with CUDA_VISIBLE_DEVICES.

Resume: rank 0 of every probe appends one fsync'ed JSON line per finished run or branch to runs.jsonl
(`planner calibrate --out DIR` passes DIR/runs.jsonl and DIR/work; planner/calibrate_results.py
writes the fits, profiles and report from it).
A rerun with the same --out reads it, skips every probe whose lines are all there, and a half-finished
probe skips the branches it already wrote; nothing finished is redone, duplicated or lost. A probe id
is a name, not a result key: before anything runs, check_resume compares each planned spec whose id
already has lines with the spec recorded for it (WORK/specs/ID.json, else the lines themselves, seed
included) and refuses (exit 2) when a field that shapes the result differs (data as an absolute path,
vocabularies, seq_len, seed, dtype, device, batch, lr, tokens, ...); DDP layout, logging and compile
settings may change. runs.jsonl has one reader (read_results) for the parent and the probes: a
cut-short last line is absent, any other bad line an error naming file:line. Ctrl-C, SIGTERM and
SIGHUP (a SLURM time limit or preemption, a closed terminal) terminate the children (their process
groups), keep every finished line and raise KeyboardInterrupt (Terminated for the latter two). A
child that dies without writing its lines (killed DDP peer, segfault) gets status=failed lines with
the exit code and the tail of its log.

Multi-node (one probe at a time across every node, holding and seeing every local device; needs a
filesystem shared by all nodes for --out and the work directory). torchrun's own rendezvous flags are passed through. A SLURM example:

    #!/bin/bash
    #SBATCH --nodes=2 --ntasks-per-node=1 --gpus-per-node=8 --exclusive
    head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
    srun bash -c 'planner calibrate --gpu h100-sxm5-80gb --gpus 8 --budget-gpu-hours 64 \\
        --nnodes "$SLURM_NNODES" --node-rank "$SLURM_NODEID" --rdzv-endpoint '"$head"':29500 \\
        --data /shared/tokens.bin --vocab-size 50304 --out /shared/calib'

which makes every node run, for each pending probe in the same order,

    python -m torch.distributed.run --nnodes=2 --node-rank=R --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HEAD:29500 --rdzv-id=PROBE_ID -m calibrate.probe --spec ... --out ...
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import ConfigError, UsageError
from planner.schemas.probe import ProbePlan, ProbeResult, ProbeSpec


@dataclass(frozen=True)
class LaunchOptions:
    python: str = sys.executable
    torchrun: str = "auto"  # "auto": torchrun only for multi-process probes; "always"
    probes_per_gpu: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None  # HOST:PORT of node 0, for nnodes > 1
    poll_s: float = 0.5
    retry_failed: bool = False  # rerun probes recorded as failed (default: a failure is a result)
    kill_grace_s: float = 5.0
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Progress:
    """One row of the live display."""

    probe_id: str
    state: str = "queued"  # queued | running | done | failed | skipped
    devices: str = ""
    n_procs: int = 1
    step: int | None = None
    planned_steps: int | None = None
    loss: float | None = None
    ewa_loss: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    b_simple: float | None = None
    eta_s: float | None = None
    elapsed_s: float | None = None


@dataclass
class Outcome:
    results: list[ProbeResult]  # every line in --out that belongs to the plan (latest per id)
    ran: list[str]  # probe ids launched this time
    skipped: list[str]  # probe ids already complete in --out
    wall_s: float
    warnings: list[str] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return sum(r.status == "ok" for r in self.results)

    @property
    def n_failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)


# ----------------------------------------------------------------------------- signals

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled as Ctrl-C (a SLURM time limit or preemption sends SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextlib.contextmanager
def stop_signals_interrupt():
    """While in the block, SIGTERM and SIGHUP raise Terminated in the main thread (as SIGINT raises
    KeyboardInterrupt), so the launcher stops its children instead of dying and orphaning them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    old = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def _signals_deferred():
    """While in the block, SIGINT, SIGTERM and SIGHUP only record themselves; the check it yields raises
    KeyboardInterrupt (SIGINT) or Terminated at a point of the caller's choosing, so that a child is never
    started without being recorded, and stopping the children is never cut short by a second signal."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum, frame):
        got.append(signum)

    def check() -> None:
        if got:
            raise KeyboardInterrupt() if got[0] == signal.SIGINT else Terminated(got[0])

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield check
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


# ----------------------------------------------------------------------------- runs.jsonl


def read_results(out: str | os.PathLike) -> list[ProbeResult]:
    """Every ProbeResult line in `out`, in file order; blank lines are skipped.

    A last line cut short (no newline: a writer killed mid-line, or one still writing) counts as absent, and
    append_line trims it before the next record. Any other line that is not a ProbeResult (a line cut short
    in the middle, a foreign or hand-edited record) is a ConfigError (exit 3) naming file:line: the parent
    and the probes read the file with this one reader, so no line counts as done for one and not the other.
    """
    p = Path(out)
    if not p.exists():
        return []
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    results = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            results.append(ProbeResult.model_validate_json(line))
        except ValueError as exc:
            if i == len(lines):  # the last line has no newline: cut short, absent
                continue
            raise ConfigError(f"{p}:{i}: not a probe result line ({_why(exc)})",
                              hint="delete or repair that line (only a cut-short last line, left by a crash, is "
                                   "repaired automatically), or use another --out") from None
    return results


def _why(exc: ValueError) -> str:
    """The first problem of a pydantic ValidationError (or any ValueError) on one line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(k) for k in first.get("loc", ()))
        return f"{loc}: {first['msg']}" if loc else first["msg"]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def latest_by_id(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    """One result per id: an ok line wins over a failed one (a retried probe appends a new line)."""
    best: dict[str, ProbeResult] = {}
    for r in results:
        if r.id not in best or best[r.id].status != "ok":
            best[r.id] = r
    return best


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line with a single write in O_APPEND mode, then fsync.

    Concurrent probes append to the same runs.jsonl, each under an exclusive flock, with one write per
    record. If a killed writer left a last line cut short (no newline), it is truncated away first (the
    probe that was writing it had not finished that result, which read_results never counted), so a
    crash never leaves a corrupt line in the middle; a complete last line without its newline gets one.
    """
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no flock (another OS, some network filesystems): one write still lands whole
            pass
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            start = _line_start(fd, size)
            try:
                ProbeResult.model_validate_json(os.pread(fd, size - start, start))
                data = b"\n" + data
            except ValueError:
                os.ftruncate(fd, start)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _line_start(fd: int, size: int, chunk: int = 1 << 16) -> int:
    """Offset just past the last newline before `size` (0 if none)."""
    end = size
    while end > 0:
        begin = max(0, end - chunk)
        at = os.pread(fd, end - begin, begin).rfind(b"\n")
        if at >= 0:
            return begin + at + 1
        end = begin
    return 0


def pending(specs: list[ProbeSpec], out: str | os.PathLike, retry_failed: bool = False) -> list[ProbeSpec]:
    """Probes with at least one result id missing from `out` (or failed, with retry_failed)."""
    done = latest_by_id(read_results(out))

    def complete(rid: str) -> bool:
        return rid in done and (done[rid].status == "ok" or not retry_failed)

    return [s for s in specs if not all(complete(rid) for rid in s.result_ids())]


# ----------------------------------------------------------------------------- resume key

# ProbeSpec fields that do not change what a probe measures: how it is laid out and logged. Every other
# field (data, data_vocab_size, data_text_key, vocab_size, seq_len, seed, dtype, device, batch_seqs, lr,
# betas, tokens, branches, eval, targets, ...) is part of the resume key.
LAYOUT_FIELDS = frozenset({"schema_version", "n_procs", "micro_batch_seqs", "log_every_steps", "compile",
                           "compile_mode", "attention", "peak_flops_per_s", "max_epochs"})
# the same key read off a runs.jsonl line, where no spec file was kept (ProbeResult field -> ProbeSpec value)
_RESULT_KEY = {"data": lambda s: s.data, "seed": lambda s: s.seed, "device": lambda s: s.device,
               "vocab_size": lambda s: s.vocab_size, "seq_len": lambda s: s.seq_len, "n_layer": lambda s: s.n_layer,
               "n_embd": lambda s: s.n_embd, "batch_tokens": lambda s: s.tokens_per_step, "lr": lambda s: s.lr}


def normalise_data(data: str) -> str:
    """A --data value as the resume key compares it: a path made absolute (relative to the current
    directory; symlinks kept), `stdlib` and `synthetic:...` as given."""
    if data == "stdlib" or data.startswith("synthetic:"):
        return data
    return os.path.abspath(os.path.expanduser(data))


def spec_differences(old: ProbeSpec, new: ProbeSpec) -> list[tuple[str, object, object]]:
    """(field, old, new) for every result-shaping field that differs between two specs of one id."""
    a, b = old.model_dump(), new.model_dump()
    a["data"], b["data"] = normalise_data(a["data"]), normalise_data(b["data"])
    return [(k, a[k], b[k]) for k in b if k not in LAYOUT_FIELDS and a.get(k) != b[k]]


def _result_differences(line: ProbeResult, new: ProbeSpec) -> list[tuple[str, object, object]]:
    diffs = []
    for k, value in _RESULT_KEY.items():
        mine, theirs = getattr(line, k), value(new)
        if k == "seed" and mine is None:  # a line written before results recorded their seed
            continue
        if k == "data":
            mine, theirs = normalise_data(mine), normalise_data(theirs)
        same = (math.isclose(mine, theirs, rel_tol=1e-9) if isinstance(theirs, float) else mine == theirs)
        if not same:
            diffs.append((k, mine, theirs))
    return diffs


_FIRST = ("data", "data_vocab_size", "data_text_key", "vocab_size", "seed", "dtype", "device", "seq_len")


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value[:4]) + (", ...]" if len(value) > 4 else "]")
    return str(value)


def check_resume(specs: list[ProbeSpec], out: str | os.PathLike, work: str | os.PathLike,
                 where: str | None = None) -> None:
    """Refuse (UsageError, exit 2) to resume into `out` when a probe id already there was run differently.

    Only ids with lines in `out` count; their recorded spec (work/specs/ID.json, written at launch) is
    compared field by field, or, without one, the lines' own data, device, shape, batch and lr.
    """
    recorded = latest_by_id(read_results(out))
    found: dict[str, tuple[object, object]] = {}
    for spec in specs:
        lines = [recorded[rid] for rid in spec.result_ids() if rid in recorded]
        if not lines:
            continue
        try:
            old = ProbeSpec.model_validate_json((Path(work) / "specs" / f"{spec.id}.json").read_text())
            diffs = spec_differences(old, spec)
        except (OSError, ValueError):
            diffs = [d for line in lines for d in _result_differences(line, spec)]
        for k, a, b in diffs:
            found.setdefault(k, (a, b))
    if found:
        first = sorted(found, key=lambda k: (_FIRST.index(k) if k in _FIRST else len(_FIRST)))[:4]
        what = ", ".join(f"{k} {_show(found[k][0])} vs {_show(found[k][1])}" for k in first)
        raise UsageError(f"{where or Path(out).parent} holds results of a different calibration: {what}",
                         hint="use another --out, or the same flags as the run that wrote it")


# ----------------------------------------------------------------------------- commands


def probe_command(spec: ProbeSpec, spec_path: Path, out: Path, status_path: Path, opts: LaunchOptions) -> list[str]:
    probe = ["-m", "calibrate.probe", "--spec", str(spec_path), "--out", str(out), "--status", str(status_path)]
    if opts.nnodes > 1:
        per_node = spec.n_procs // opts.nnodes
        return [opts.python, "-m", "torch.distributed.run", f"--nnodes={opts.nnodes}",
                f"--node-rank={opts.node_rank}", f"--nproc_per_node={per_node}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={opts.rdzv_endpoint}", f"--rdzv-id={spec.id}", *probe]
    if spec.n_procs > 1 or opts.torchrun == "always":
        return [opts.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={spec.n_procs}",
                *probe]
    return [opts.python, *probe]


def child_env(spec: ProbeSpec, devices: list[int], opts: LaunchOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OMP_WAIT_POLICY="PASSIVE")  # spinning OpenMP threads steal a shared core (calibration.md §5)
    if spec.device == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
    root = str(Path(__file__).resolve().parent.parent)  # so `-m calibrate.probe` resolves from any cwd
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(opts.env)
    return env


# ----------------------------------------------------------------------------- device slots


class Slots:
    """Free capacity: CPU cores (one per rank), or GPUs with probes_per_gpu slots each."""

    def __init__(self, device: str, n_devices: int, probes_per_gpu: int = 1):
        self.device = device
        self.per = probes_per_gpu if device == "cuda" else 1
        self.free = {i: self.per for i in range(n_devices)}

    def take(self, n_procs: int) -> list[int] | None:
        if n_procs == 1:  # a shared slot on the least-loaded device
            i = max(self.free, key=lambda j: (self.free[j], -j))
            if self.free[i] == 0:
                return None
            self.free[i] -= 1
            return [i]
        whole = [i for i in sorted(self.free) if self.free[i] == self.per][:n_procs]
        if len(whole) < n_procs:  # a DDP probe owns its devices
            return None
        for i in whole:
            self.free[i] = 0
        return whole

    def give(self, devices: list[int]) -> None:
        for i in devices:
            self.free[i] = self.per if len(devices) > 1 else self.free[i] + 1

    @property
    def idle(self) -> bool:
        return all(v == self.per for v in self.free.values())


# ----------------------------------------------------------------------------- the run


@dataclass
class _Child:
    spec: ProbeSpec
    proc: subprocess.Popen
    devices: list[int]
    log: Path
    status: Path
    started: float


def probe_cost(spec: ProbeSpec) -> float:
    """Relative cost for longest-first ordering: FLOPs of the probe including its branches."""
    from planner.probe_plan import Shape, flops_per_token, tokens_processed

    return tokens_processed(spec) * flops_per_token(Shape(spec.n_layer, spec.n_embd, spec.n_head),
                                                    spec.vocab_size, spec.seq_len)


def run_calibration(
    specs: list[ProbeSpec] | ProbePlan, out: str | os.PathLike, *, n_devices: int, device: str | None = None,
    work_dir: str | os.PathLike | None = None, options: LaunchOptions | None = None,
    on_progress: Callable[[list[Progress]], None] | None = None,
) -> Outcome:
    """Run every pending probe, longest first, as many at once as the devices allow; see the module doc."""
    opts = options or LaunchOptions()
    if isinstance(specs, ProbePlan):
        plan, specs = specs, specs.specs()
    else:
        plan = None
    device = device or (specs[0].device if specs else "cpu")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir else out.with_name(out.stem + ".calibrate")
    check_resume(specs, out, work)
    for sub in ("specs", "logs", "status"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    if plan is not None:
        (work / "plan.json").write_text(plan.model_dump_json(indent=2))
    if opts.nnodes > 1:  # every probe spans all nodes: the global world size is nnodes x devices per node
        from planner.probe_plan import with_ddp

        specs = [with_ddp(s, opts.nnodes * n_devices) for s in specs]
    todo = sorted(pending(specs, out, opts.retry_failed), key=lambda s: (-probe_cost(s), s.id))
    todo_ids = {s.id for s in todo}
    rows = {s.id: Progress(s.id, state="queued" if s.id in todo_ids else "skipped", n_procs=s.n_procs)
            for s in specs}
    t0 = time.time()
    ran = _drive(todo, out, work, device, n_devices, opts, rows, on_progress)
    plan_ids = {rid for s in specs for rid in s.result_ids()}
    results = [r for r in latest_by_id(read_results(out)).values() if r.id in plan_ids]
    return Outcome(results=results, ran=ran, skipped=sorted(set(rows) - todo_ids), wall_s=time.time() - t0)


def devices_needed(spec: ProbeSpec, n_devices: int, opts: LaunchOptions) -> int:
    """Local devices a probe holds: on several nodes every probe spans all of them (torchrun starts
    n_devices ranks per node, rank k on local device k, so every device must stay visible to it)."""
    return n_devices if opts.nnodes > 1 else min(spec.n_procs, n_devices)


def _drive(todo, out, work, device, n_devices, opts, rows, on_progress) -> list[str]:
    # on several nodes one probe at a time holds every local device: no sharing of GPUs between probes
    slots = Slots(device, n_devices, 1 if opts.nnodes > 1 else opts.probes_per_gpu)
    running: dict[str, _Child] = {}
    queue, ran = list(todo), []
    with _signals_deferred() as check:  # Ctrl-C, SIGTERM, SIGHUP: acted on between launches and polls
        try:
            while queue or running:
                for spec in list(queue):  # longest first; a smaller probe may fill the gap a big one cannot
                    check()
                    got = slots.take(devices_needed(spec, n_devices, opts))
                    if got is None:
                        continue
                    queue.remove(spec)
                    running[spec.id] = _launch(spec, got, out, work, opts)
                    rows[spec.id].state, rows[spec.id].devices = "running", _device_label(device, got)
                    ran.append(spec.id)
                    if opts.nnodes > 1:
                        break  # one probe at a time across the nodes
                for pid, child in list(running.items()):
                    _read_status(child, rows[pid])
                    if child.proc.poll() is not None:
                        _finish(child, out, rows[pid])
                        slots.give(child.devices)
                        del running[pid]
                if on_progress:
                    on_progress(list(rows.values()))
                check()
                if queue or running:
                    time.sleep(opts.poll_s)
        except BaseException:  # a signal (KeyboardInterrupt, Terminated) or a failing callback: stop the children
            for child in running.values():
                _terminate(child, opts.kill_grace_s)
            raise
    return ran


def _launch(spec: ProbeSpec, devices: list[int], out: Path, work: Path, opts: LaunchOptions) -> _Child:
    spec_path = work / "specs" / f"{spec.id}.json"
    spec_path.write_text(spec.model_dump_json(indent=2))
    status = work / "status" / f"{spec.id}.json"
    status.unlink(missing_ok=True)
    log = work / "logs" / f"{spec.id}.log"
    cmd = probe_command(spec, spec_path, out, status, opts)
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(cmd)}\n".encode())
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env(spec, devices, opts),
                                start_new_session=True)  # its own process group: Ctrl-C is ours to relay
    return _Child(spec, proc, devices, log, status, time.time())


def _device_label(device: str, devices: list[int]) -> str:
    """gpu0, gpu0-3, gpu0,2 (runs of consecutive devices as ranges: the progress table stays narrow)."""
    kind = "gpu" if device == "cuda" else "cpu"
    runs: list[list[int]] = []
    for i in sorted(devices):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return kind + ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def _read_status(child: _Child, row: Progress) -> None:
    try:
        st = json.loads(child.status.read_text())
    except (OSError, ValueError):
        row.elapsed_s = time.time() - child.started
        return
    row.step, row.planned_steps = st.get("done_steps"), st.get("planned_steps")
    row.loss, row.tokens_per_s, row.mfu = st.get("loss"), st.get("tokens_per_s"), st.get("mfu")
    row.b_simple, row.eta_s = st.get("b_simple"), st.get("eta_s")
    row.ewa_loss = st.get("ewa_loss", row.ewa_loss)
    row.elapsed_s = time.time() - child.started


def _finish(child: _Child, out: Path, row: Progress) -> None:
    """Record failed lines for whatever the child did not write (it died without reporting)."""
    spec, code = child.spec, child.proc.returncode
    done = latest_by_id(read_results(out))
    missing = [rid for rid in spec.result_ids() if rid not in done]
    if missing:
        reason = f"probe process exited with code {code} without a result; log: {child.log}: {_tail(child.log)}"
        for rid in missing:
            append_line(out, _failed(spec, rid, reason, time.time() - child.started).model_dump_json())
        done = latest_by_id(read_results(out))
    ok = all(done.get(rid) is not None and done[rid].status == "ok" for rid in spec.result_ids())
    row.state = "done" if ok else "failed"
    row.eta_s = 0.0 if ok else None


def _tail(log: Path, n: int = 300) -> str:
    try:
        text = log.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " ".join(text[-n:].split())


def _failed(spec: ProbeSpec, rid: str, reason: str, wall_s: float) -> ProbeResult:
    from planner.probe_plan import Shape, flops_per_token, shape_params

    shape = Shape(spec.n_layer, spec.n_embd, spec.n_head)
    total, non_emb = shape_params(shape, spec.vocab_size, spec.seq_len)
    ratio = dict(zip((r for r in spec.result_ids()), [*spec.branch_ratios, spec.final_ratio])).get(rid)
    return ProbeResult(
        id=rid, probe_id=spec.id, kind=spec.kind, status="failed", reason=reason, n_params=total,
        n_params_non_embedding=non_emb, n_layer=spec.n_layer, n_embd=spec.n_embd, seq_len=spec.seq_len,
        vocab_size=spec.vocab_size, flops_per_token=flops_per_token(shape, spec.vocab_size, spec.seq_len),
        batch_tokens=spec.tokens_per_step, lr=spec.lr, tokens=0.0, steps=0,
        branch_ratio=ratio if spec.kind == "ladder" else None, data=spec.data, seed=spec.seed, device=spec.device,
        n_procs=spec.n_procs, wall_s=wall_s)


def _terminate(child: _Child, grace_s: float) -> None:
    """SIGTERM the child's process group (torchrun relays it to its ranks), SIGKILL after grace_s."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        if child.proc.poll() is not None:
            return
        try:
            os.killpg(child.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


TOKEN_SUFFIXES = (".bin", ".npy", ".npz")  # pre-tokenized files: their vocabulary is inferred when not given


@functools.lru_cache(maxsize=4)
def open_source(name: str, vocab_size: int | None = None, text_key: str = "text"):
    """calibrate.data.load(name) once per process (planning opens a source for its vocabulary and its checks);
    a source that cannot be read or is malformed is a ConfigError (exit 3) naming file[:line]."""
    from calibrate import data as datamod  # lazily: planner never imports calibrate at module level

    try:
        return datamod.load(name, vocab_size=vocab_size, text_key=text_key)
    except (OSError, ValueError) as exc:
        where = str(Path(name).expanduser())
        message = (f"--data {exc}" if isinstance(exc, ValueError) and str(exc).startswith(where + ":")
                   else f"--data {name}: cannot be read: {exc}")  # the message names file[:line]
        if isinstance(exc, datamod.VocabularyError):
            raise ConfigError(message, hint="give --vocab-size at least the tokenizer's vocabulary "
                                            "(largest id + 1)") from None
        raise ConfigError(message, hint="give a directory of text files, a .jsonl, .txt, .bin or .npy file, "
                                        "stdlib or synthetic:zipf") from None


def inferred_vocab(data: str) -> int | None:
    """The probes' vocabulary for a token file given without --vocab-size: its largest id + 1, rounded up to
    a multiple of 64 (calibrate.data infers max id + 1, as nanoGPT's meta.pkl would say). None for text
    (byte-level, 257), stdlib and synthetic sources, whose vocabularies the plan knows."""
    if data == "stdlib" or data.startswith("synthetic:") or Path(data).suffix.lower() not in TOKEN_SUFFIXES:
        return None
    if Path(data).expanduser().is_dir():
        return None
    return 64 * math.ceil(open_source(data).vocab_size / 64)


def data_warnings(specs: list[ProbeSpec]) -> list[str]:
    """Check each data source of the plan before any probe starts; return repetition warnings.

    A source that cannot be read or is malformed (a .jsonl text that is not a string, negative token
    ids, no documents), too small to hold one training window and one held-out window of the probes'
    sequence length, or whose token ids reach past a given --vocab-size or a probe's model vocabulary,
    would fail (or silently mistrain) every probe: it is a ConfigError (exit 3) here, naming file[:line].
    Repetition (> max_epochs passes over the training split) is a warning. Opens the sources with
    calibrate.data (numpy only, no torch); probes repeat the check themselves.
    """
    from calibrate import data as datamod  # lazily: planner never imports calibrate at module level

    warnings = []
    for source_name in sorted({s.data for s in specs}):
        mine = [s for s in specs if s.data == source_name]
        source = open_source(source_name, mine[0].data_vocab_size, mine[0].data_text_key)
        smallest = min(s.vocab_size for s in mine)
        if source.vocab_size > smallest:
            raise ConfigError(f"--data {source_name}: token ids reach {source.vocab_size - 1}, beyond the probes' "
                              f"vocabulary of {smallest}",
                              hint="give --vocab-size at least the tokenizer's vocabulary (ids + 1)")
        seq = max(s.seq_len for s in mine)
        if len(source.train) < seq + 2 or len(source.val) < seq + 1:  # one window (+ its next token) each
            raise ConfigError(f"--data {source_name}: too small to train on: {len(source.train):,} training and "
                              f"{len(source.val):,} held-out {source.unit}, and probes of sequence length {seq} "
                              f"need at least {seq + 2:,} and {seq + 1:,}",
                              hint="give a larger corpus (held out: 1% of it, at least 64k tokens, at most half)")
        worst = max(mine, key=lambda s: s.total_tokens)
        w = datamod.epoch_warning(worst.total_tokens, source, worst.max_epochs)
        if w:
            n_over = sum(datamod.epochs(s.total_tokens, source) > s.max_epochs for s in mine)
            warnings.append(f"{n_over} probe(s) repeat their data; the largest: {w}")
    return warnings


# ----------------------------------------------------------------------------- results -> fit inputs


def ladder_points(results: list[ProbeResult], params: str = "total"):
    """(N, D, L) of the ok post-decay ladder points, for planner.laws.fit.fit_loss_law."""
    pts = [(r.n_params if params == "total" else r.n_params_non_embedding, r.tokens, r.loss)
           for r in results if r.kind == "ladder" and r.status == "ok" and r.loss is not None]
    return tuple(list(col) for col in zip(*pts)) if pts else ([], [], [])


def write_ladder_csv(results: list[ProbeResult], path: str | os.PathLike) -> int:
    """The fit points as CSV for `planner fit PATH` (columns params, tokens, loss; N total). Returns rows."""
    import csv

    rows = [r for r in results if r.kind == "ladder" and r.status == "ok" and r.loss is not None]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["params", "params_non_embedding", "tokens", "loss", "probe", "tokens_per_param"])
        for r in sorted(rows, key=lambda r: (r.n_params, r.tokens)):
            w.writerow([r.n_params, r.n_params_non_embedding, r.tokens, r.loss, r.probe_id, r.branch_ratio])
    return len(rows)


def steps_to_target(result: ProbeResult, target: float) -> int | None:
    """First evaluated step whose EWA held-out loss is below target (Zhang et al. 2024)."""
    return next((p.step for p in result.curve if p.ewa_loss is not None and p.ewa_loss < target), None)


def cbs_table(results: list[ProbeResult], targets: list[float] | None = None) -> list[dict]:
    """Rows {target, batch_tokens, steps, tokens} for every target reached by every batch size.

    Targets default to those all CBS runs reached; the fit R(B) = a + b/B belongs to `planner fit-cbs`.
    """
    runs = [r for r in results if r.kind == "cbs" and r.status == "ok" and r.curve]
    if not runs:
        return []
    if targets is None:
        worst = max(min(p.ewa_loss for p in r.curve if p.ewa_loss is not None) for r in runs)
        best = min(r.curve[0].ewa_loss for r in runs if r.curve[0].ewa_loss is not None)
        targets = sorted({float(k) for r in runs for k in r.steps_to_target if worst < float(k) < best})
    rows = []
    for t in targets:
        for r in sorted(runs, key=lambda r: r.batch_tokens):
            s = steps_to_target(r, t)
            if s is not None:
                rows.append({"target": t, "batch_tokens": r.batch_tokens, "steps": s,
                             "tokens": float(s * r.batch_tokens)})
    return rows
