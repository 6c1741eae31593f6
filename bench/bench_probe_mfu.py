"""Tokens/s and MFU of the planner's probe trainer next to a plain compiled PyTorch loop, on one GPU.

Fills the issue criterion "bench/ records tokens/s and MFU per probe size next to a plain compiled
PyTorch loop of the same shapes run in the same call (as in h100-probe-mfu.md)". Aims, attention
term included: at least 50% MFU for probes of about 85M parameters and up (the plain compiled loop
gets 43-47%), and at least 40% AGGREGATE for the 3-25M probes (the plain loop gets 27-38% running one
at a time).

Run it on ONE H100, from the repository root, as one command of the device tool (about 7-9 minutes
with every torch.compile; inside its 10-minute limit):

    python bench/bench_probe_mfu.py --json $OUT/probe_mfu.json | tee $OUT/probe_mfu.md

stdout is the markdown (paste it into the README), stderr a progress line per measurement. The
device is the first CUDA device; the peak comes from the profile matching its name (an H200 is
measured against h200-sxm-141gb, and then not comparable with h100-probe-mfu.md). The script starts
no new measurement after --budget-s (default 520 s), nor one whose kind last compiled for longer than
the time left, and lists what it skipped (a measurement can still overrun it); the JSON is rewritten
after every measurement, so a run killed at the limit still leaves what it measured. To finish a
cut-short run on the same, still warm machine (inductor's disk cache then makes compiles cheap):

    python bench/bench_probe_mfu.py --only pack --json $OUT/pack.json       # the packing table only
    python bench/bench_probe_mfu.py --sizes 12x768,16x1024 --only table      # some sizes only
    python bench/bench_probe_mfu.py --render $OUT/probe_mfu.json $OUT/pack.json   # one merged report

Variants: `--batch plan` runs each probe at the batch the GPU plan gives it (with gradient
accumulation from 50M up, which is how the planner's probes really run), `--micro N` sets the
sequences per forward, `--batch-mult K` scales the table's batch, `--no-compile`, `--pack-k 2,4,8`,
`--pack-seconds S`, `--steps N --min-seconds S`; for the planner trainer only, `--compile-mode
max-autotune-no-cudagraphs|reduce-overhead|max-autotune` and `--attention cudnn|flash|efficient`
(the plain loop stays the h100-probe-mfu.md baseline); `--head-dim 128` changes both loops' shapes.

What it measures, per probe shape of h100-probe-mfu.md (layers x d = 4x256 ... 16x1024, head dim 64,
vocab 256, sequence 1024, batch 64/64/64/32/32/16 sequences), all in this one process:

  planner  the real trainer: calibrate.train.setup(spec) and its training loop (train.advance, i.e.
           train_step with the trainer's log-step sync), with a ProbeSpec built by
           planner.probe_plan.ladder_probe exactly as the GPU plan builds it (bf16 autocast,
           torch.compile, fused AdamW, gradient clipping, EWA, GNS bookkeeping), batch set to the
           table's batch (accumulation 1; `--batch plan` keeps the plan's own batch and
           micro-batch instead), data from the offline synthetic source (synthetic:zipf, vocab 256).
  plain    the same calibrate.model.GPT shape with torch.optim.AdamW(fused=True), bf16 autocast,
           torch.compile, TF32, random tokens already on the GPU, no EWA/GNS/clipping: the baseline
           loop of h100-probe-mfu.md.
  pack     for the small probes (<= 30M parameters): K processes (K = 2, 4) of this script
           (`--worker`), each with its own CUDA context, each running the planner probe step; they
           compile and warm up, then start together at one wall-clock instant and run for
           --pack-seconds; each process time-stamps its progress with CUDA events at the trainer's
           own log steps (no extra syncs), and the aggregate counts the tokens finished inside the
           window where all K overlap (linear between time stamps). `mix` runs the three small
           sizes side by side (one process each), as a packed plan would.

Columns of the main table:
  size               layers x d_model (head dim 64)
  params             total parameters N (tied head once, learned positions included)
  batch              sequences per optimizer step (x accumulation when > 1), of seq_len tokens
  planner tok/s      tokens per second of the planner trainer, timed over >= --steps steps (and at
                     least --min-seconds) after --warmup steps, GPU-synchronised at both ends
  planner MFU        tokens/s x (6N + 12*L*d*T) / peak  (nanoGPT estimate_mfu, PaLM App. B)
  MFU 6N-only        tokens/s x 6N / peak (no attention term; calibration.md §3.2 asks for both)
  plain tok/s, plain MFU   the same for the plain compiled loop
  planner/plain      ratio of the two tokens/s
  ref plain MFU      the plain loop's MFU measured in h100-probe-mfu.md (a check on the machine)
  compile s          wall time of the first --warmup steps (torch.compile + warm-up), planner /
                     plain; the planner compiles first, so the plain loop may hit inductor's cache
  peak mem GiB       torch.cuda.max_memory_allocated, planner / plain
Packing table: K processes, aggregate tokens/s and MFU (sum of each process's FLOP/s over the
overlap window, / one GPU's peak), per-process tokens/s, x single = aggregate / the single planner
run's tokens/s, the overlap window in seconds, and the sum of the processes' peak memory. The
processes share the GPU by the driver's time-slicing (the script starts no CUDA MPS daemon).
Last lines (CUDA only): each aim, MET or NOT MET, from these numbers (the small-probe aim takes, per
size, the best of the single run and its packed rows; the mix row counts on its own).

Peak FLOP/s: the planner's hardware profile (`--gpu NAME`; by default picked from the CUDA device
name, h100-sxm5-80gb for an H100 SXM: 989.4e12 bf16), or `--peak-flops`. On CPU the nominal
single-thread fp32 throughput of planner.probe_plan.CPU_FLOPS_PER_S (not a peak).

`--device cpu --tiny` runs a miniature version (2 tiny shapes, seq 64, a few steps, fp32, no
compile, K = 2 packing and a mix) in ~20 s on 2 cores: tests/calibrate/test_bench_probe_mfu.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MSG = "@@BENCH "  # prefix of the worker's protocol lines on stdout
# h100-probe-mfu.md: (layers, d, batch) and the plain compiled loop's MFU measured there
SHAPES = ((4, 256, 64), (6, 384, 64), (8, 512, 64), (10, 640, 32), (12, 768, 32), (16, 1024, 16))
REF_PLAIN_MFU = {(4, 256): 0.272, (6, 384): 0.335, (8, 512): 0.380, (10, 640): 0.391, (12, 768): 0.427,
                 (16, 1024): 0.460}
TINY_SHAPES = ((1, 32, 8), (2, 64, 8))
AIM_LARGE, AIM_LARGE_PARAMS = 0.50, 80e6  # >= 50% MFU for the ~85M probes and up
AIM_SMALL, SMALL_MAX_PARAMS = 0.40, 30e6  # >= 40% aggregate for the 3-25M probes
GPU_PROFILES = (("H200", "h200-sxm-141gb"), ("H100 NVL", "h100-nvl-94gb"), ("H100 PCIe", "h100-pcie-80gb"),
                ("H800", "h800-sxm5"), ("H100", "h100-sxm5-80gb"))


# ----------------------------------------------------------------------------- arguments


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda if available")
    ap.add_argument("--tiny", action="store_true", help="2 tiny shapes, seq 64, few steps, fp32, no compile, K=2")
    ap.add_argument("--gpu", default=None, help="hardware profile for the peak (default: from the device name)")
    ap.add_argument("--peak-flops", type=float, default=None, help="override the peak FLOP/s")
    ap.add_argument("--sizes", default=None, help="comma list of LxD[xBATCH] (e.g. 4x256,12x768x64); default: "
                                                  "the 6 shapes of h100-probe-mfu.md")
    ap.add_argument("--only", choices=("table", "pack"), default=None, help="only the main table or packing")
    ap.add_argument("--batch", choices=("table", "plan"), default="table",
                    help="table: h100-probe-mfu.md's batch, no accumulation; plan: the probe plan's batch/micro "
                         "(the plain loop runs the micro-batch)")
    ap.add_argument("--batch-mult", type=int, default=1, help="multiply the table's batch (both loops)")
    ap.add_argument("--micro", type=int, default=None,
                    help="sequences per forward (gradient accumulation = batch / micro); the plain loop runs this")
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--vocab", type=int, default=None)
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-mode", default="default",
                    choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
                    help="torch.compile mode of the PLANNER trainer (the plain loop keeps the default)")
    ap.add_argument("--head-dim", type=int, default=None,
                    help="attention head dimension of BOTH loops (default 64; 128 suits H100 attention kernels)")
    ap.add_argument("--attention", default="auto", choices=("auto", "flash", "cudnn", "efficient", "math"),
                    help="SDPA kernel of the PLANNER trainer on CUDA (the plain loop keeps PyTorch's choice)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (compile included)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps at least")
    ap.add_argument("--min-seconds", type=float, default=None, help="timed seconds at least")
    ap.add_argument("--pack-k", default=None, help="comma list of process counts (default 2,4)")
    ap.add_argument("--no-mix", action="store_true", help="skip the mixed-size packing row")
    ap.add_argument("--pack-seconds", type=float, default=None, help="length of the packed window (default 6)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no new measurement after this many seconds (default 520: the device tool's "
                         "10-minute limit less the longest measurement), nor one whose kind (planner, plain, "
                         "pack) last took longer to compile than the time left; checked only between "
                         "measurements, so one measurement can still overrun it (a max-autotune compile of a "
                         "new shape takes minutes)")
    ap.add_argument("--json", default=None, help="write the raw numbers here (rewritten after each row)")
    ap.add_argument("--render", nargs="+", default=None, help="print the tables of saved JSON files and exit")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # a ProbeSpec JSON: packing worker
    args = ap.parse_args(argv)
    tiny = args.tiny
    if args.device is None and not args.render:
        import torch

        args.device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    defaults = {"seq_len": 64 if tiny else 1024, "vocab": 64 if tiny else 256,
                "dtype": "fp32" if (tiny or args.device == "cpu") else "bf16",
                "warmup": 2 if tiny else 3, "steps": 4 if tiny else 30, "min_seconds": 0.0 if tiny else 2.0,
                "pack_k": "2" if tiny else "2,4", "pack_seconds": 1.0 if tiny else 6.0,
                "budget_s": 1e9 if tiny else 520.0}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.compile = not (args.no_compile or tiny or args.device == "cpu")
    if args.attention in ("flash", "cudnn") and args.dtype == "fp32" and not args.render:
        ap.error(f"--attention {args.attention} needs --dtype bf16 (its kernels have no fp32 version)")
    return args


def selected_shapes(args) -> list[tuple[int, int, int]]:
    """(layers, d, batch): the table's shapes, or --sizes LxD[xB] (a shape off the table gets the batch
    planner.probe_plan.max_micro_seqs gives its size)."""
    shapes = TINY_SHAPES if args.tiny else SHAPES
    if not args.sizes:
        return list(shapes)
    from planner import probe_plan as pp

    known = {(L, d): b for L, d, b in shapes}
    out = []
    for item in args.sizes.lower().replace("×", "x").split(","):
        L, d, *b = (int(v) for v in item.split("x"))
        if not b:
            total = pp.shape_params(pp.Shape(L, d, n_heads(d, args)), args.vocab, args.seq_len)[0]
            b = [known.get((L, d)) or pp.max_micro_seqs(total, args.seq_len)]
        out.append((L, d, b[0]))
    return out


def n_heads(d: int, args) -> int:
    """Heads at the head dimension asked (default 64, as in h100-probe-mfu.md; 32 for the tiny shapes)."""
    head_dim = args.head_dim or (32 if args.tiny else 64)
    if d % head_dim:
        raise SystemExit(f"d_model {d} is not a multiple of --head-dim {head_dim}")
    return max(1, d // head_dim)


def peak_flops(args) -> tuple[float, str]:
    if args.peak_flops:
        return args.peak_flops, "--peak-flops"
    if args.device == "cpu" and not args.gpu:
        from planner.probe_plan import CPU_FLOPS_PER_S

        return CPU_FLOPS_PER_S, "nominal CPU fp32 1-thread throughput (planner.probe_plan.CPU_FLOPS_PER_S)"
    from planner.resolve import load_hardware

    name = args.gpu
    if name is None:
        import torch

        dev = torch.cuda.get_device_name()
        name = next((prof for key, prof in GPU_PROFILES if key.lower() in dev.lower()), "h100-sxm5-80gb")
    dtype = "bf16" if args.dtype == "bf16" else "tf32"
    return load_hardware(name).profile.peak_flops_per_s(dtype), f"{name} dense {dtype}"


# ----------------------------------------------------------------------------- specs


def data_source(args) -> str:
    n = 200_000 if args.tiny else 4_000_000
    return f"synthetic:zipf?vocab={args.vocab}&order=1&tokens={n}&val={max(4 * args.seq_len + 1, 4096)}"


def probe_spec(L: int, d: int, batch: int, args, peak: float):
    """The ProbeSpec the GPU plan builds for this shape (planner.probe_plan.ladder_probe)."""
    from planner import probe_plan as pp

    s = pp.Setting(device=args.device, vocab_size=args.vocab, seq_len=args.seq_len, data=data_source(args),
                   data_vocab_size=None, peak_flops_per_s=peak, mfu_prior=0.4 if args.device == "cuda" else None,
                   eval_tokens=4 * args.seq_len, dtype=args.dtype, compile=args.compile)
    spec = pp.ladder_probe(pp.Shape(L, d, n_heads(d, args)), s)
    update = {"max_epochs": 1e12,  # no "repeats the data" warning: the benchmark trains a few steps only
              "compile_mode": args.compile_mode, "attention": args.attention}
    if args.batch == "table":
        update |= {"batch_seqs": batch * args.batch_mult, "micro_batch_seqs": batch * args.batch_mult}
    if args.micro:
        update["micro_batch_seqs"] = args.micro
    spec = spec.model_copy(update=update)
    if spec.batch_seqs % spec.micro_batch_seqs:
        raise SystemExit(f"{L}x{d}: batch {spec.batch_seqs} is not a multiple of --micro {spec.micro_batch_seqs}")
    return spec


# ----------------------------------------------------------------------------- timing helpers


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def free_memory(device: str) -> None:
    import torch

    if hasattr(torch, "_dynamo"):
        torch._dynamo.reset()  # else every new model is one more recompile of GPT.forward (limit 8)
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mem_gib(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**30


def timed(run_steps, device: str, warmup: int, steps: int, min_seconds: float) -> dict:
    """`warmup` untimed steps (compile), then max(steps, min_seconds) timed ones in ONE call of run_steps,
    GPU-synchronised at both ends only (the loop's own syncs, if any, stay as they are)."""
    t0 = time.perf_counter()
    last = t0
    for _ in range(warmup):
        last = time.perf_counter()
        run_steps(1)
        sync(device)
    t1 = time.perf_counter()
    per_step = max(t1 - last, 1e-6)  # the last warm-up step, compiled: an estimate of a step
    n = max(steps, math.ceil(min_seconds / per_step))
    sync(device)
    t2 = time.perf_counter()
    out = run_steps(n)
    sync(device)
    t3 = time.perf_counter()
    return {"compile_s": t1 - t0, "steps": n, "time_s": t3 - t2, "last": out}


class Marks:
    """(host time, steps done) pairs: CUDA events timed against one synced host-clock anchor on GPU."""

    def __init__(self, device: str):
        import torch

        self.device, self.events, self.host, self.steps = device, [], [], []
        sync(device)
        if device == "cuda":
            self.start = torch.cuda.Event(enable_timing=True)
            self.start.record()
            torch.cuda.synchronize()
        self.anchor = time.time()

    def mark(self, steps: int) -> None:
        self.steps.append(steps)
        if self.device == "cuda":
            import torch

            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.events.append(ev)
        else:
            self.host.append(time.time())

    def times(self) -> list[float]:
        sync(self.device)
        if self.device == "cuda":
            return [self.anchor + self.start.elapsed_time(ev) / 1e3 for ev in self.events]
        return self.host


# ----------------------------------------------------------------------------- the two loops


def planner_stepper(spec):
    """(run, run_steps): run_steps(n) trains n steps through the real loop, train.advance (LR schedule,
    train_step, the log-step loss read and sync every log_every_steps), with its log lines silenced."""
    from calibrate import train

    class Quiet(train.Reporter):
        def emit(self, event: str, **fields) -> None:  # no JSON lines: keep stdout for the tables
            pass

    run = train.setup(spec)
    rep = Quiet(run, None, 0)

    def run_steps(n: int):
        # advance() also logs (reads the loss, syncs) at its last step: a call that ends off the
        # log_every_steps grid adds one sync, which the callers put at the end of a timed segment
        train.advance(run, rep, run.step + n, evals=False)
        return run

    return run, run_steps


def measure_planner(spec, args, peak: float) -> dict:
    free_memory(args.device)
    t0 = time.perf_counter()
    run, run_steps = planner_stepper(spec)
    setup_s = time.perf_counter() - t0
    r = timed(run_steps, args.device, args.warmup, args.steps, args.min_seconds)
    if run.last_loss is not None and not math.isfinite(run.last_loss):
        raise RuntimeError(f"non-finite loss {run.last_loss}")
    tok_s = r["steps"] * spec.tokens_per_step / r["time_s"]
    own = run.train_time_s and run.train_tokens / run.train_time_s  # the trainer's own (host-timed) figure
    out = {"tokens_per_s": tok_s, "mfu": tok_s * run.flops_per_token / peak, "mfu_6n": tok_s * 6 * run.n_params / peak,
           "compile_s": r["compile_s"], "setup_s": setup_s, "steps": r["steps"], "time_s": r["time_s"],
           "accum": run.accum, "peak_mem_gib": peak_mem_gib(args.device), "trainer_tokens_per_s": own or None,
           "last_loss": run.last_loss}
    return out


def measure_plain(L: int, d: int, batch: int, args, peak: float) -> dict:
    """h100-probe-mfu.md's loop: compiled GPT, fused AdamW, bf16 autocast, random tokens on the device."""
    import contextlib

    import torch

    from calibrate.model import GPT, GPTConfig, flops_per_token, n_params
    from calibrate.train import select_attention

    free_memory(args.device)
    select_attention("auto")  # the planner's --attention choice is process-wide: the baseline keeps PyTorch's
    t0 = time.perf_counter()
    torch.manual_seed(0)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = GPTConfig(L, d, n_heads(d, args), args.vocab, args.seq_len)
    dev = torch.device(args.device)
    model = GPT(cfg).to(dev)
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=3e-4, betas=(0.9, 0.95), fused=args.device == "cuda")
    cmodel = torch.compile(model) if args.compile else model
    autocast = (torch.autocast(device_type=args.device, dtype=torch.bfloat16) if args.dtype == "bf16"
                else contextlib.nullcontext())
    xs = [torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len), device=dev) for _ in range(4)]
    ys = [torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len), device=dev) for _ in range(4)]
    def run_steps(n: int):
        for i in range(n):
            with autocast:
                loss = cmodel(xs[i % 4], ys[i % 4])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return loss

    setup_s = time.perf_counter() - t0
    r = timed(run_steps, args.device, args.warmup, args.steps, args.min_seconds)
    loss = float(r["last"].detach())
    if not math.isfinite(loss):
        raise RuntimeError(f"non-finite loss {loss}")
    total, _ = n_params(cfg)
    tok_s = r["steps"] * batch * cfg.seq_len / r["time_s"]
    out = {"tokens_per_s": tok_s, "mfu": tok_s * flops_per_token(cfg) / peak, "mfu_6n": tok_s * 6 * total / peak,
           "compile_s": r["compile_s"], "setup_s": setup_s, "steps": r["steps"], "time_s": r["time_s"],
           "peak_mem_gib": peak_mem_gib(args.device), "last_loss": loss}
    return out  # its tensors go with this frame; the caller frees the cache


# ----------------------------------------------------------------------------- packing


def emit(obj: dict) -> None:
    sys.stdout.write(MSG + json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker_main(args) -> int:
    """One packed process: set up and warm up, say ready, wait for the start time, step until the end time."""
    from planner.schemas.probe import ProbeSpec

    spec = ProbeSpec.model_validate_json(args.worker)
    import torch

    t0 = time.perf_counter()
    run, run_steps = planner_stepper(spec)
    for _ in range(args.warmup):
        run_steps(1)
    sync(spec.device)
    emit({"ready": True, "compile_s": time.perf_counter() - t0, "pid": os.getpid()})
    go = json.loads(sys.stdin.readline())
    time.sleep(max(0.0, go["t_start"] - time.time()))
    marks, done, every = Marks(spec.device), 0, spec.log_every_steps
    while time.time() < go["t_end"]:
        n = every - run.step % every  # up to the next log step: no sync other than the trainer's own
        run_steps(n)
        done += n
        marks.mark(done)
    times = marks.times()
    if run.last_loss is not None and not math.isfinite(run.last_loss):
        raise RuntimeError(f"non-finite loss {run.last_loss}")
    emit({"anchor": marks.anchor, "times": times, "steps": marks.steps, "tokens_per_step": spec.tokens_per_step,
          "flops_per_token": run.flops_per_token, "n_params": run.n_params,
          "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if spec.device == "cuda" else None})
    return 0


class Worker:
    """One packed worker process; a thread collects its protocol lines (stray stdout lines are dropped)."""

    def __init__(self, cmd: list[str], env: dict):
        self.err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, env=env, cwd=ROOT)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(MSG):
                self.lines.put(json.loads(line[len(MSG):]))
        self.lines.put(None)  # end of output

    def send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float) -> dict:
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"worker {self.proc.pid}: no answer within {timeout:.0f} s") from None
        if msg is None:
            self.proc.wait()
            self.err.seek(0)
            raise RuntimeError(f"worker {self.proc.pid} exited {self.proc.returncode}:\n{self.err.read()[-3000:]}")
        return msg

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.err.close()


def steps_done(t: float, r: dict) -> float:
    """Steps a worker finished by time t, linear between its marks (0 steps at its anchor)."""
    import numpy as np

    return float(np.interp(t, [r["anchor"], *r["times"]], [0, *r["steps"]]))


def measure_pack(specs, args, peak: float) -> dict:
    """Start len(specs) workers together; aggregate tokens and FLOPs over the window where all overlap."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, str(SCRIPT), "--device", args.device, "--warmup", str(args.warmup)]
    if args.tiny:
        cmd.append("--tiny")
    workers: list[Worker] = []
    try:
        for sp in specs:
            workers.append(Worker([*cmd, "--worker", sp.model_dump_json()], env))
        ready = [w.read(900) for w in workers]  # set up, compiled, warmed up
        t_start = time.time() + 0.5
        for w in workers:
            w.send({"t_start": t_start, "t_end": t_start + args.pack_seconds})
        done = [w.read(args.pack_seconds + 300) for w in workers]
        for w in workers:
            w.proc.wait(timeout=60)
    finally:
        for w in workers:
            w.close()
    w0 = max(r["anchor"] for r in done)
    w1 = min(r["times"][-1] for r in done)
    if w1 <= w0:
        raise RuntimeError("the workers' timed windows do not overlap")
    per_proc, tokens, flops, flops_6n = [], 0.0, 0.0, 0.0
    for r in done:
        n = steps_done(w1, r) - steps_done(w0, r)
        tok = n * r["tokens_per_step"]
        per_proc.append(tok / (w1 - w0))
        tokens += tok
        flops += tok * r["flops_per_token"]
        flops_6n += tok * 6 * r["n_params"]
    mem = [r["peak_mem_gib"] for r in done]
    return {"tokens_per_s": tokens / (w1 - w0), "mfu": flops / (w1 - w0) / peak, "mfu_6n": flops_6n / (w1 - w0) / peak,
            "per_proc_tokens_per_s": per_proc, "window_s": w1 - w0,
            "planned_s": args.pack_seconds, "compile_s": [r["compile_s"] for r in ready],
            "peak_mem_gib": sum(mem) if all(m is not None for m in mem) else None}


# ----------------------------------------------------------------------------- tables


def pct(x) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if abs(x) >= 1e-3 else f"{100 * x:.2g}%"


def num(x, fmt="{:,.0f}") -> str:
    return "–" if x is None else fmt.format(x)


def pair(a, b, fmt="{:.1f}") -> str:
    return f"{num(a, fmt)} / {num(b, fmt)}"


def main_table(rows: list[dict]) -> str:
    head = ("| size | params | batch | planner tok/s | planner MFU | MFU 6N-only | plain tok/s | plain MFU | "
            "planner/plain | ref plain MFU | compile s (planner / plain) | peak mem GiB (planner / plain) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        p, q = r.get("planner") or {}, r.get("plain") or {}
        batch = f"{r['batch']}" + (f" ({r['micro']}×{r['accum_total']})" if r.get("accum_total", 1) > 1 else "")
        ratio = (p["tokens_per_s"] / q["tokens_per_s"]) if p.get("tokens_per_s") and q.get("tokens_per_s") else None
        lines.append(
            f"| {r['size']} | {r['params'] / 1e6:.2f}M | {batch} | {num(p.get('tokens_per_s'))} | {pct(p.get('mfu'))} "
            f"| {pct(p.get('mfu_6n'))} | {num(q.get('tokens_per_s'))} | {pct(q.get('mfu'))} | {num(ratio, '{:.2f}')} "
            f"| {pct(r.get('ref_plain_mfu'))} | {pair(p.get('compile_s'), q.get('compile_s'))} "
            f"| {pair(p.get('peak_mem_gib'), q.get('peak_mem_gib'))} |")
        for side in ("planner", "plain"):
            if (r.get(side) or {}).get("error"):
                lines.append(f"|  | {side} failed: {r[side]['error'][:200]} |")
    return "\n".join(lines)


def pack_table(rows: list[dict]) -> str:
    head = ("| size | K | batch | aggregate tok/s | aggregate MFU | MFU 6N-only | tok/s per process | × single | "
            "window s | peak mem GiB (sum) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['size']} | {r['k']} | {r['batch']} | failed: {r['error'][:200]} |")
            continue
        per = ", ".join(f"{v:,.0f}" for v in r["per_proc_tokens_per_s"])
        lines.append(f"| {r['size']} | {r['k']} | {r['batch']} | {num(r['tokens_per_s'])} | {pct(r['mfu'])} "
                     f"| {pct(r['mfu_6n'])} | {per} | {num(r.get('x_single'), '{:.2f}')} | {r['window_s']:.1f} "
                     f"| {num(r.get('peak_mem_gib'), '{:.1f}')} |")
    return "\n".join(lines)


def aims(rows: list[dict], packs: list[dict]) -> list[str]:
    out = []
    large = [r for r in rows if r["params"] >= AIM_LARGE_PARAMS and (r.get("planner") or {}).get("mfu")]
    if large:
        ok = all(r["planner"]["mfu"] >= AIM_LARGE for r in large)
        out.append(f"- aim ≥ {AIM_LARGE:.0%} MFU for ~85M+ probes: {'MET' if ok else 'NOT MET'} ("
                   + ", ".join(f"{r['size']} {pct(r['planner']['mfu'])}" for r in large) + ")")
    small = {}
    for r in packs:
        if r.get("mfu"):
            small[r["size"]] = max(small.get(r["size"], 0.0), r["mfu"])
    for r in rows:
        if r["params"] <= SMALL_MAX_PARAMS and (r.get("planner") or {}).get("mfu"):
            small[r["size"]] = max(small.get(r["size"], 0.0), r["planner"]["mfu"])
    if small:
        ok = all(v >= AIM_SMALL for v in small.values())
        out.append(f"- aim ≥ {AIM_SMALL:.0%} aggregate MFU for 3-25M probes (best of single/packed): "
                   f"{'MET' if ok else 'NOT MET'} (" + ", ".join(f"{k} {pct(v)}" for k, v in small.items()) + ")")
    return out


def render(result: dict) -> str:
    m = result["meta"]
    mult = f" x{m['batch_mult']}" if m.get("batch_mult", 1) != 1 else ""
    head = (f"Device: {m.get('device_name')} ({m.get('device')}), torch {m.get('torch')}, peak "
            f"{m.get('peak_flops'):.4g} FLOP/s ({m.get('peak_source')}); seq {m.get('seq_len')}, vocab "
            f"{m.get('vocab')}, {m.get('dtype')}, compile {m.get('compile')} (planner mode "
            f"{m.get('compile_mode', 'default')}, attention {m.get('attention', 'auto')}), head dim {m.get('head_dim', 64)}, batch mode {m.get('batch_mode')}{mult}; "
            f"{m.get('warmup')} warm-up steps, then >= {m.get('steps')} steps and >= {m.get('min_seconds')} s timed.")
    parts = [head, ""]
    if result["rows"]:
        parts += [main_table(result["rows"]), ""]
    if result["pack"]:
        parts += [f"Packed on one device ({m.get('pack_seconds')} s window per row):", "",
                  pack_table(result["pack"]), ""]
    if m.get("device") == "cuda":
        parts += aims(result["rows"], result["pack"])
    if result.get("skipped"):
        parts += ["", "Skipped (time budget): " + ", ".join(result["skipped"])]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- driver


class Budget:
    """--budget-s, checked before each measurement: refuse one once the budget is spent, or when the last
    measurement of its kind took longer to compile (+ warm up) than the time left. A guess from the
    previous shape: a bigger shape compiles longer, so one measurement can still overrun."""

    def __init__(self, budget_s: float, t_begin: float, clock=time.perf_counter):
        self.budget_s, self.t_begin, self.clock = budget_s, t_begin, clock
        self.compile_s: dict[str, float] = {}

    def compiled(self, kind: str, seconds: float) -> None:
        self.compile_s[kind] = seconds

    def refuse(self, kind: str) -> str | None:
        left = self.budget_s - (self.clock() - self.t_begin)
        if left < 0:
            return f"past --budget-s {self.budget_s:g}"
        if self.compile_s.get(kind, 0.0) > left:
            return (f"the last {kind} measurement compiled for {self.compile_s[kind]:.0f} s, more than the "
                    f"{left:.0f} s left of --budget-s {self.budget_s:g}")
        return None


def save(result: dict, path: str | None) -> None:
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, path)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench(args) -> dict:
    import torch

    from calibrate.model import GPTConfig, n_params

    t_begin = time.perf_counter()
    if args.device == "cpu":
        torch.set_num_threads(1)
    peak, source = peak_flops(args)
    result = {"meta": {"device": args.device, "device_name": torch.cuda.get_device_name() if args.device == "cuda"
                       else "cpu", "torch": torch.__version__, "peak_flops": peak, "peak_source": source,
                       "seq_len": args.seq_len, "vocab": args.vocab, "dtype": args.dtype, "compile": args.compile,
                       "compile_mode": args.compile_mode, "attention": args.attention, "head_dim": args.head_dim or 64,
                       "batch_mode": args.batch, "batch_mult": args.batch_mult, "warmup": args.warmup, "steps": args.steps,
                       "min_seconds": args.min_seconds, "pack_seconds": args.pack_seconds, "data": data_source(args)},
              "rows": [], "pack": [], "skipped": []}
    shapes = selected_shapes(args)
    budget = Budget(args.budget_s, t_begin)

    def over_budget(what: str, kind: str) -> bool:
        why = budget.refuse(kind)
        if why:
            result["skipped"].append(what)
            log(f"skip {what}: {why}")
            return True
        return False

    specs = {}
    for L, d, batch in shapes:
        spec = probe_spec(L, d, batch, args, peak)
        specs[(L, d)] = spec
        total, _ = n_params(GPTConfig(L, d, spec.n_head, args.vocab, args.seq_len))
        if args.only == "pack":
            continue
        row = {"size": f"{L}×{d}", "layers": L, "d": d, "params": total, "batch": spec.batch_seqs,
               "micro": spec.micro_batch_seqs, "accum_total": spec.batch_seqs // spec.micro_batch_seqs,
               "seq_len": args.seq_len, "ref_plain_mfu": REF_PLAIN_MFU.get((L, d)) if (
                   not args.tiny and (L, d, spec.micro_batch_seqs) in SHAPES and args.seq_len == 1024) else None}
        for side in ("planner", "plain"):
            if over_budget(f"{side} {L}×{d}", side):
                continue
            log(f"{side} {L}×{d} batch {spec.batch_seqs} ...")
            try:
                row[side] = (measure_planner(spec, args, peak) if side == "planner"
                             else measure_plain(L, d, spec.micro_batch_seqs, args, peak))
                budget.compiled(side, row[side]["compile_s"])
                free_memory(args.device)
                log(f"  {row[side]['tokens_per_s']:,.0f} tok/s, MFU {pct(row[side]['mfu'])}, "
                    f"compile {row[side]['compile_s']:.1f} s")
            except Exception as exc:  # noqa: BLE001 - an OOM or a compile failure: record it, go on
                row[side] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"  failed: {row[side]['error']}")
                free_memory(args.device)
        result["rows"].append(row)
        save(result, args.json)
    if args.only != "table":
        single = {r["size"]: (r.get("planner") or {}).get("tokens_per_s") for r in result["rows"]}
        small = [(L, d, b) for L, d, b in shapes
                 if n_params(GPTConfig(L, d, specs[(L, d)].n_head, args.vocab, args.seq_len))[0] <= SMALL_MAX_PARAMS]
        runs = [(f"{L}×{d}", k, [specs[(L, d)]] * k) for L, d, _ in (small[:1] if args.tiny else small)
                for k in (int(v) for v in args.pack_k.split(","))]
        if len(small) >= 2 and not args.no_mix:
            runs.append(("mix " + "+".join(f"{L}×{d}" for L, d, _ in small), len(small),
                         [specs[(L, d)] for L, d, _ in small]))
        for size, k, group in runs:
            if over_budget(f"pack {size} K={k}", "pack"):
                continue
            log(f"pack {size} K={k} ...")
            row = {"size": size, "k": k, "batch": "/".join(dict.fromkeys(str(s.batch_seqs) for s in group))}
            try:
                row |= measure_pack(group, args, peak)
                budget.compiled("pack", max(row["compile_s"]))
                if single.get(size):
                    row["x_single"] = row["tokens_per_s"] / single[size]
                log(f"  {row['tokens_per_s']:,.0f} tok/s aggregate, MFU {pct(row['mfu'])}")
            except Exception as exc:  # noqa: BLE001
                row["error"] = f"{type(exc).__name__}: {exc}"
                log(f"  failed: {row['error']}")
            result["pack"].append(row)
            save(result, args.json)
    result["meta"]["wall_s"] = time.perf_counter() - t_begin
    save(result, args.json)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.render:
        merged = None
        for path in args.render:
            r = json.loads(Path(path).read_text())
            if merged is None:
                merged = r
            else:
                merged["rows"] += r["rows"]
                merged["pack"] += r["pack"]
                merged["skipped"] += r.get("skipped", [])
        print(render(merged))
        return 0
    result = bench(args)
    print(render(result))
    failed = [r for r in result["rows"] for s in ("planner", "plain") if (r.get(s) or {}).get("error")]
    failed += [r for r in result["pack"] if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
