"""The probe trainer: one ProbeSpec in, ProbeResult rows out (nanoGPT train.py, made re-entrant).

Reads top to bottom: setup (device, data, model, optimizer) -> schedule -> one training step ->
evaluation -> the run itself (stable phase, cooldown branches, the main cooldown) -> results.

Recipe (calibration.md §3.1, §3.5; batch-laws.md §1.3, §2):
- AdamW (torch's fused kernel on CUDA and under torch.compile; calibrate/optim.py's identical one for
  eager CPU), weight decay on matrices only, gradient clipping 1.0; fp32 eager on CPU, bf16 autocast
  + torch.compile on GPU (and on CPU when the spec asks: the tests run the GPU recipe there).
- Batches: calibrate/batches.py (on CUDA the training split lives on the GPU, one gather per batch).
- DDP: calibrate/dist.py's DistributedDataParallel with a norm-tapping communication hook; micro-batches
  before the last run under no_sync(), so each step all-reduces once, overlapped with the backward.
  (CALIBRATE_FORCE_DDP=1 wraps a single process too: a test-only switch, see calibrate/dist.py.)
- Host syncs: only on log steps (the loss read) and before evaluations; the loss and, under DDP, the
  GNS accumulators are averaged over ranks on log steps and only there (one small all-reduce).
- Step time is host-clock time; on CUDA the GPU is synchronised wherever a timed stretch of steps
  ends (a log step, the step before an eval, the last untimed step) or begins (each advance() call),
  so no queued GPU work falls outside or leaks into the timed windows.
- Warmup is linear in SAMPLES (Zhang et al. 2024: a fixed number of samples, not of steps).
- Constant LR after warmup, with an EWA copy of the weights (w <- tau*w + (1-tau)*theta, evaluated
  bias-corrected as w/(1-tau^t); hlzhang109/critical-batch-size olmo/optim.py).
- ladder: warmup-stable-decay. Cooldown branches are taken from the stable phase: a branch ending at
  D_r tokens starts at (1 - cooldown_fraction)*D_r and decays the LR as 1 - sqrt(progress) (Hägele
  et al. 2024: (1-sqrt) beats linear), then the stable run resumes from the saved state. The fit uses
  these post-decay points only (calibration.md §1.2).
- cbs: constant LR + EWA, steps-to-target = first eval step whose EWA held-out loss < target.
- Gradient noise scale B_simple (McCandlish et al. 2018, App. A.1): B_small = per-rank batch (or the
  first micro-batch in a single process), B_big = the global batch; separate EMAs of |G|^2 and tr(Σ),
  reported as their ratio, in tokens. A diagnostic only (Merrill et al. 2025).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from dataclasses import dataclass, field

import torch

from calibrate import batches, dist, optim
from calibrate import data as datamod
from calibrate.model import GPT, GPTConfig, flops_per_token, n_params
from planner.schemas.probe import CurvePoint, ProbeResult, ProbeSpec, branch_result_id

UNTIMED_STEPS = 3  # first steps of a process, excluded from tokens/s and MFU
GNS_EMA = 0.95  # EMA decay of the two McCandlish estimates (gpt-neox uses a similar smoothing)


class ProbeFailed(RuntimeError):
    """A probe that cannot go on (non-finite loss, ...); recorded as status=failed."""


# ----------------------------------------------------------------------------- setup


@dataclass
class Run:
    """Everything the training step and the evaluation need, built once per probe."""

    spec: ProbeSpec
    info: dist.DistInfo
    source: datamod.TokenSource
    model: GPT
    step_model: torch.nn.Module  # forward/backward: DDP-wrapped when world_size > 1, compiled if asked
    batcher: batches.Batcher
    optimizer: torch.optim.Optimizer | optim.AdamW
    autocast: contextlib.AbstractContextManager
    ewa: list[torch.Tensor]
    n_params: int
    n_params_non_embedding: int
    flops_per_token: float
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    accum: int
    ddp: torch.nn.Module | None = None  # the DistributedDataParallel wrapper when world_size > 1
    tap: dist.NormTap | None = None  # |g_local|^2 under DDP (McCandlish B_small = per-rank batch)
    step: int = 0
    ewa_count: int = 0
    gns: torch.Tensor | None = None  # [EMA of |G|^2, EMA of tr(Σ)] (McCandlish estimators); DDP: this rank's
    gns_mean: torch.Tensor | None = None  # DDP: the ranks' mean of gns, taken on the last log step
    train_time_s: float = 0.0
    train_tokens: float = 0.0
    timed_steps: int = 0
    last_loss: float | None = None
    warnings: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.time)


def setup(spec: ProbeSpec, t0: float | None = None) -> Run:
    check_spec(spec)
    info = dist.init(spec.device)
    if spec.device == "cpu":
        torch.set_num_threads(1)  # one thread per process; parallelise across processes (calibration.md §5)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        select_attention(spec.attention)
    torch.manual_seed(spec.seed)  # identical initial weights on every rank
    source = datamod.load(spec.data, vocab_size=spec.data_vocab_size, text_key=spec.data_text_key)
    if source.vocab_size > spec.vocab_size:
        raise ValueError(f"data vocabulary {source.vocab_size} exceeds the model's vocab_size {spec.vocab_size}")
    if spec.batch_seqs % (spec.micro_batch_seqs * info.world_size):
        raise ValueError(f"batch_seqs {spec.batch_seqs} does not split into micro-batches of "
                         f"{spec.micro_batch_seqs} over {info.world_size} ranks")
    accum = spec.batch_seqs // (spec.micro_batch_seqs * info.world_size)
    cfg = GPTConfig(spec.n_layer, spec.n_embd, spec.n_head, spec.vocab_size, spec.seq_len)
    model = GPT(cfg).to(info.device)
    optimizer = make_optimizer(spec, model)
    step_model, ddp, tap = model, None, None
    if info.world_size > 1 or dist.force_ddp():
        ddp, tap = dist.wrap_ddp(model, info)
        step_model = ddp
    if spec.compile:  # once per probe: every branch of a ladder reuses the compiled graphs
        step_model = torch.compile(step_model, mode=None if spec.compile_mode == "default" else spec.compile_mode)
    if spec.dtype == "bf16":
        autocast = torch.autocast(device_type=spec.device, dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext()
    batcher = batches.Batcher(source.train, seq_len=spec.seq_len, n_seqs=spec.micro_batch_seqs, accum=accum,
                              seed=spec.seed, rank=info.rank, device=info.device, vocab_size=spec.vocab_size)
    ex, ey = datamod.eval_windows(source.val, spec.eval_tokens, spec.seq_len)
    ex, ey = ex[info.rank :: info.world_size], ey[info.rank :: info.world_size]  # each rank a share
    total, non_emb = n_params(cfg)
    run = Run(spec, info, source, model, step_model, batcher, optimizer, autocast,
              ewa=[torch.zeros_like(p, dtype=torch.float32) for p in model.parameters()],
              n_params=total, n_params_non_embedding=non_emb, flops_per_token=flops_per_token(cfg),
              eval_x=torch.from_numpy(ex).to(info.device), eval_y=torch.from_numpy(ey).to(info.device),
              accum=accum, ddp=ddp, tap=tap, t0=t0 or time.time())
    run.warnings += source.notes
    if len(ex) * spec.seq_len * info.world_size < spec.eval_tokens:
        run.warnings.append(f"held-out slice holds fewer than eval_tokens={spec.eval_tokens}")
    warn = datamod.epoch_warning(spec.total_tokens, source, spec.max_epochs)
    if warn:
        run.warnings.append(warn)
        dist.print0(f"warning: {warn}")
    return run


def make_optimizer(spec: ProbeSpec, model: GPT):
    """torch's fused AdamW on CUDA (and whenever torch.compile is in play anyway); else calibrate.optim's."""
    groups, betas = model.param_groups(spec.weight_decay), (spec.beta1, spec.beta2)
    if spec.device == "cuda" or spec.compile:
        return torch.optim.AdamW(groups, lr=spec.lr, betas=betas, fused=True)  # one multi-tensor kernel
    return optim.AdamW(groups, lr=spec.lr, betas=betas)  # same arithmetic, no torch._dynamo import (1.4 s)


SDPA_BACKENDS = ("flash", "cudnn", "efficient", "math")
HALF_ONLY_ATTENTION = ("flash", "cudnn")  # kernels without fp32 support: forced alone, fp32 finds no kernel


def check_spec(spec: ProbeSpec) -> None:
    """Refuse what the schema lets through but no kernel can run (before any device work)."""
    if spec.attention in HALF_ONLY_ATTENTION and spec.dtype == "fp32":
        raise ValueError(f"attention {spec.attention!r} needs dtype bf16: its kernels have no fp32 version, and "
                         f"forcing it disables the math fallback (SDPA: 'No available kernel')")


def select_attention(choice: str) -> None:
    """CUDA SDPA kernels: "auto" enables every backend (PyTorch's own priority); a name enables it alone.

    Every flag is set on each call: the flags are process-wide, so a choice must not outlive the probe
    that made it (the benchmark's plain loop and the next test run in the same process).
    """
    for name in SDPA_BACKENDS:
        setter = f"enable_{name}_sdp" if name != "efficient" else "enable_mem_efficient_sdp"
        getattr(torch.backends.cuda, setter)(choice == "auto" or name == choice)


# ----------------------------------------------------------------------------- schedule


def lr_at(spec: ProbeSpec, step: int, cooldown: tuple[int, int] | None = None) -> float:
    """Warmup linear in samples, then constant; in a cooldown (start, end) decay as 1 - sqrt(progress)."""
    lr = spec.lr * min(1.0, (step + 1) * spec.batch_seqs / spec.warmup_samples) if spec.warmup_samples else spec.lr
    if cooldown is not None:
        start, end = cooldown
        lr *= 1.0 - math.sqrt((step - start) / max(1, end - start))
    return lr


def steps_for(spec: ProbeSpec, tokens: float) -> int:
    return max(1, round(tokens / spec.tokens_per_step))


def cooldown_window(spec: ProbeSpec, end_step: int) -> tuple[int, int]:
    return end_step - max(1, round(spec.cooldown_fraction * end_step)), end_step


# ----------------------------------------------------------------------------- one step


def get_batch(run: Run, micro: int):
    """Random windows seeded by (seed, step, micro, rank): a branch sees the data the main run would."""
    return run.batcher.get(run.step, micro)


def train_step(run: Run, lr: float) -> torch.Tensor:
    """One optimizer step; returns this rank's mean training loss as a device tensor (no host sync)."""
    spec, params = run.spec, list(run.model.parameters())
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    small_sq = None
    loss_sum = torch.zeros((), device=run.info.device)
    if spec.compile and spec.compile_mode in ("reduce-overhead", "max-autotune"):
        # CUDA graphs: a new iteration begins (the last step's graph outputs, its gradients included,
        # are consumed); marked once per optimizer step so accumulated micro-batch gradients stay live
        torch.compiler.cudagraph_mark_step_begin()
    for micro in range(run.accum):
        x, y = get_batch(run, micro)
        sync_now = run.tap is None or micro == run.accum - 1  # DDP: all-reduce on the last micro-batch only
        with contextlib.nullcontext() if sync_now else run.ddp.no_sync():
            with run.autocast:
                loss = run.step_model(x, y) / run.accum
            if spec.debug_nan_at_step is not None and run.step >= spec.debug_nan_at_step:
                loss = loss * float("nan")  # test hook: what a diverged run looks like
            loss.backward()
        loss_sum += loss.detach()
        if micro == 0 and run.accum > 1 and run.tap is None:  # single process: B_small = one micro-batch
            small_sq = grad_sq(params) * run.accum**2  # the loss was divided by accum
    if run.tap is not None:  # DDP: the hook kept this rank's own |g|^2 (B_small = the per-rank batch)
        small_sq = run.tap.take()
    # the clip's pre-clip norm is |g| of the whole (DDP: rank-averaged) batch: B_big's |g|^2 for free
    norm = torch.nn.utils.clip_grad_norm_(params, spec.grad_clip, foreach=True)
    if small_sq is not None:
        update_gns(run, small_sq, norm.float().pow(2))
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    update_ewa(run)
    run.step += 1
    return loss_sum


def grad_sq(params) -> torch.Tensor:
    """|g|^2 over all gradients, fp32, in a few multi-tensor kernels (no per-parameter Python loop)."""
    grads = [p.grad for p in params if p.grad is not None]
    return torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float32)).pow(2).sum()


def update_gns(run: Run, small_sq: torch.Tensor, big_sq: torch.Tensor) -> None:
    """McCandlish App. A.1 two-batch estimators of |G|^2 and tr(Σ), each EMA-smoothed separately.

    Kept as device tensors: no host sync per step (read only when logging). Under DDP `small_sq` is
    this rank's own |g|^2 and run.gns this rank's EMA; both estimators are linear in small_sq (big_sq
    is the same on every rank), so the mean of the ranks' EMAs, taken on log steps (log_values), is
    the EMA of the rank-averaged |g_local|^2, without an all-reduce per step.
    """
    spec = run.spec
    if run.tap is not None:
        b_small = spec.micro_batch_seqs * run.accum * spec.seq_len  # the per-rank batch
    elif run.accum > 1:
        b_small = spec.micro_batch_seqs * spec.seq_len
    else:
        return  # one batch size only: no estimate
    b_big = spec.batch_seqs * spec.seq_len
    if b_small >= b_big:
        return  # one batch size only (DDP at world size 1): B_simple is undefined, reported as None
    g2 = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    if run.gns is None:
        run.gns = torch.zeros(2, device=run.info.device)
    run.gns.mul_(GNS_EMA).add_(torch.stack([g2, trace]), alpha=1 - GNS_EMA)  # the EMA's bias cancels in the ratio


def b_simple(run: Run) -> float | None:
    """B_simple = EMA(tr Σ) / EMA(|G|^2), in tokens (the ratio of the averages, not the average ratio).

    Under DDP, from the rank-mean of the EMAs taken on the last log step (no collective here: this is
    also called on rank 0 alone).
    """
    gns = run.gns_mean if run.tap is not None else run.gns
    if gns is None:
        return None
    g2, trace = (float(v) for v in gns)
    return trace / g2 if g2 > 0 and math.isfinite(trace) else None


@torch.no_grad()
def update_ewa(run: Run) -> None:
    tau = run.spec.ewa_decay
    params = [p.detach().float() for p in run.model.parameters()]
    torch._foreach_lerp_(run.ewa, params, 1.0 - tau)  # tau*w + (1-tau)*theta in one pass over the weights
    run.ewa_count += 1


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(run: Run) -> float:
    """Mean next-token loss (nats) on the fixed held-out windows, averaged over ranks."""
    run.model.eval()
    total = torch.zeros(2, device=run.info.device)  # [sum of losses, windows]
    chunk = max(1, run.spec.micro_batch_seqs)
    for i in range(0, len(run.eval_x), chunk):
        x, y = run.eval_x[i : i + chunk], run.eval_y[i : i + chunk]
        with run.autocast:
            total[0] += run.model(x, y).float() * len(x)
        total[1] += len(x)
    run.model.train()
    total = dist.all_reduce_mean(total)
    return float(total[0] / total[1])


@contextlib.contextmanager
def ewa_weights(run: Run):
    """Swap in the bias-corrected EWA weights w/(1 - tau^t), restore the raw ones afterwards."""
    params = list(run.model.parameters())
    saved = [p.detach().clone() for p in params]
    correction = 1.0 - run.spec.ewa_decay ** max(1, run.ewa_count)
    with torch.no_grad():
        for p, w in zip(params, run.ewa):
            p.copy_(w / correction)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


def eval_point(run: Run, raw: bool = True) -> CurvePoint:
    """Held-out loss of the EWA weights, and of the raw weights unless raw=False (loss=None)."""
    loss = evaluate(run) if raw else None
    with ewa_weights(run):
        ewa_loss = evaluate(run)
    return CurvePoint(step=run.step, tokens=float(run.step * run.spec.tokens_per_step), loss=loss, ewa_loss=ewa_loss)


# ----------------------------------------------------------------------------- the run


def metrics(run: Run) -> dict:
    """Throughput over training steps only (evals excluded), MFU against the profile's dense peak."""
    tok_s = run.train_tokens / run.train_time_s if run.train_time_s > 0 else None
    mfu = mfu_6n = None
    if tok_s and run.spec.peak_flops_per_s:
        peak = run.spec.peak_flops_per_s * run.info.world_size
        mfu = run.flops_per_token * tok_s / peak  # nanoGPT estimate_mfu, with the attention term
        mfu_6n = 6.0 * run.n_params * tok_s / peak  # report both (calibration.md §3.2)
    return {"tokens_per_s": tok_s, "mfu": mfu, "mfu_6n": mfu_6n, "b_simple": b_simple(run)}


class Reporter:
    """Rank-0 logging: JSON lines on stdout and a small status file the parent polls for a live display."""

    def __init__(self, run: Run, status_path: str | None, planned_steps: int):
        self.run, self.status_path, self.planned = run, status_path, planned_steps
        self.done_steps = 0

    def emit(self, event: str, **fields) -> None:
        if not self.run.info.is_rank0:
            return
        run = self.run
        m = metrics(run)
        rate = run.timed_steps / run.train_time_s if run.train_time_s > 0 else None
        eta = (self.planned - self.done_steps) / rate if rate else None
        line = {"event": event, "probe": run.spec.id, "device": run.spec.device, "n_procs": run.info.world_size,
                "step": run.step, "done_steps": self.done_steps, "planned_steps": self.planned,
                "loss": run.last_loss, **m, "eta_s": eta, "elapsed_s": time.time() - run.t0, **fields}
        print(json.dumps(line), flush=True)
        if self.status_path:
            tmp = f"{self.status_path}.tmp"
            with open(tmp, "w") as f:
                json.dump(line, f)
            os.replace(tmp, self.status_path)  # readers never see a half-written file


def sync_device(run: Run) -> None:
    """Wait for the GPU's queue (CUDA only): the host clock then times the work, not its launch."""
    if run.info.device.type == "cuda":
        torch.cuda.synchronize()


def log_values(run: Run, loss: torch.Tensor) -> float:
    """The training loss averaged over ranks (a host sync); under DDP the GNS accumulators ride along
    in the same all-reduce (run.gns_mean). Called on log steps only, by every rank."""
    if run.tap is not None and run.gns is not None:
        both = dist.all_reduce_mean(torch.cat([loss.reshape(1).float(), run.gns]))
        run.gns_mean = both[1:]
        return float(both[0])
    return float(dist.all_reduce_mean(loss))


def advance(run: Run, rep: Reporter, end: int, cooldown=None, curve=None, evals=True) -> None:
    """Train from run.step to `end`; evaluate every eval_every_steps (appending to `curve`).

    CBS probes evaluate the raw weights only at `end` (steps-to-target reads the EWA loss alone).
    """
    spec = run.spec
    sync_device(run)  # a snapshot, restore or eval queued before this call is not a training step's time
    while run.step < end:
        t = time.time()
        loss = train_step(run, lr_at(spec, run.step, cooldown))
        rep.done_steps += 1
        eval_now = evals and curve is not None and run.step % spec.eval_every_steps == 0
        if run.step % spec.log_every_steps == 0 or run.step == end:
            run.last_loss = log_values(run, loss)  # float(): a host sync that waits for the step's kernels
            if not math.isfinite(run.last_loss):
                raise ProbeFailed(f"non-finite training loss at step {run.step}")
            rep.emit("step")
        elif eval_now or rep.done_steps == UNTIMED_STEPS:
            sync_device(run)  # the window closes here: its kernels must not run on into the eval's time
        if rep.done_steps > UNTIMED_STEPS:  # skip torch.compile and allocator warm-up (as nanoGPT's MFU does)
            run.train_time_s += time.time() - t
            run.train_tokens += spec.tokens_per_step
            run.timed_steps += 1
        if eval_now:
            point = eval_point(run, raw=spec.kind != "cbs" or run.step == end)
            curve.append(point)
            rep.emit("eval", val_loss=point.loss, ewa_loss=point.ewa_loss)


def snapshot(run: Run) -> dict:
    return {"model": copy.deepcopy(run.model.state_dict()), "opt": copy.deepcopy(run.optimizer.state_dict()),
            "ewa": [w.clone() for w in run.ewa], "ewa_count": run.ewa_count, "step": run.step,
            "gns": None if run.gns is None else run.gns.clone(),
            "gns_mean": None if run.gns_mean is None else run.gns_mean.clone()}


def restore(run: Run, snap: dict) -> None:
    run.model.load_state_dict(snap["model"])
    run.optimizer.load_state_dict(snap["opt"])
    run.ewa, run.ewa_count, run.step, run.gns = snap["ewa"], snap["ewa_count"], snap["step"], snap["gns"]
    run.gns_mean = snap["gns_mean"]


def make_result(run: Run, rid: str, *, curve, ratio=None, stable_loss=None, targets=None) -> ProbeResult:
    spec, m = run.spec, metrics(run)
    last = curve[-1] if curve else None
    hit = {}
    for target in targets or []:
        hit[f"{target:g}"] = next((p.step for p in curve if p.ewa_loss is not None and p.ewa_loss < target), None)
    return ProbeResult(
        id=rid, probe_id=spec.id, kind=spec.kind, status="ok", seed=spec.seed, n_params=run.n_params,
        n_params_non_embedding=run.n_params_non_embedding, n_layer=spec.n_layer, n_embd=spec.n_embd,
        seq_len=spec.seq_len, vocab_size=spec.vocab_size, flops_per_token=run.flops_per_token,
        batch_tokens=spec.tokens_per_step, lr=spec.lr, tokens=float(run.step * spec.tokens_per_step),
        steps=run.step, branch_ratio=ratio, loss=last.loss if last else None,
        ewa_loss=last.ewa_loss if last else None, train_loss=run.last_loss, stable_loss=stable_loss,
        steps_to_target=hit, curve=curve, tokens_per_s=m["tokens_per_s"], mfu=m["mfu"], mfu_6n=m["mfu_6n"],
        b_simple=m["b_simple"], epochs=datamod.epochs(run.step * spec.tokens_per_step, run.source),
        data=spec.data, data_unit=run.source.unit, data_unique_tokens=run.source.unique_tokens, device=spec.device,
        n_procs=run.info.world_size, wall_s=time.time() - run.t0, warnings=list(run.warnings))


def train_ladder(run: Run, rep: Reporter, emit, skip: set[str]) -> None:
    """Stable phase with cooldown branches, then the main run's own cooldown."""
    spec = run.spec
    curve: list[CurvePoint] = []
    branches = sorted(zip(spec.branch_tokens, spec.branch_ratios))
    for tokens, ratio in branches:
        rid = branch_result_id(spec.id, ratio)
        if rid in skip:
            continue
        start, end = cooldown_window(spec, steps_for(spec, tokens))
        advance(run, rep, start, curve=curve)
        stable = eval_point(run)
        snap = snapshot(run)
        advance(run, rep, end, cooldown=(start, end), evals=False)
        point = eval_point(run)
        rep.emit("branch", ratio=ratio, val_loss=point.loss, ewa_loss=point.ewa_loss)
        emit(make_result(run, rid, curve=curve + [point], ratio=ratio, stable_loss=stable.loss))
        restore(run, snap)
    if spec.id in skip:
        return
    start, end = cooldown_window(spec, steps_for(spec, spec.total_tokens))
    advance(run, rep, start, curve=curve)
    stable = eval_point(run)
    advance(run, rep, end, cooldown=(start, end), evals=False)
    curve.append(eval_point(run))
    rep.emit("final", val_loss=curve[-1].loss, ewa_loss=curve[-1].ewa_loss)
    emit(make_result(run, spec.id, curve=curve, ratio=spec.final_ratio, stable_loss=stable.loss))


def train_cbs(run: Run, rep: Reporter, emit, skip: set[str]) -> None:
    """Constant LR + EWA to total_tokens; steps-to-target read off the EWA eval curve."""
    spec = run.spec
    if spec.id in skip:
        return
    curve = [eval_point(run, raw=False)]  # steps-to-target reads the EWA loss: the raw one only at the end
    advance(run, rep, steps_for(spec, spec.total_tokens), curve=curve)
    if curve[-1].step != run.step:
        curve.append(eval_point(run))
    rep.emit("final", val_loss=curve[-1].loss, ewa_loss=curve[-1].ewa_loss)
    emit(make_result(run, spec.id, curve=curve, targets=spec.targets))


def planned_steps(spec: ProbeSpec, skip: set[str]) -> int:
    total = steps_for(spec, spec.total_tokens)
    if spec.kind == "ladder":
        for tokens, ratio in zip(spec.branch_tokens, spec.branch_ratios):
            if branch_result_id(spec.id, ratio) not in skip:
                start, end = cooldown_window(spec, steps_for(spec, tokens))
                total += end - start
    return total


def train(run: Run, emit, status_path: str | None = None, skip: set[str] | None = None) -> None:
    """Run the probe; `emit(ProbeResult)` is called on every rank for each finished run or branch."""
    skip = skip or set()
    rep = Reporter(run, status_path, planned_steps(run.spec, skip))
    rep.emit("start", n_params=run.n_params, flops_per_token=run.flops_per_token, ddp=run.ddp is not None)
    if run.spec.kind == "ladder":
        train_ladder(run, rep, emit, skip)
    else:
        train_cbs(run, rep, emit, skip)
