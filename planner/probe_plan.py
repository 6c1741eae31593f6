"""The probe plan of `planner calibrate` (pure: numbers and schemas in, a ProbePlan out; no torch, no I/O).

Two kinds of probe (calibration.md §0, §3.5):
    ladder  5-6 nanoGPT sizes spanning >= 15x in N, each ONE warmup-stable-decay run to D/N = 40 whose
            stable phase sheds (1-sqrt) cooldown branches ending at D/N = 5, 10, 20: four post-decay fit
            points for 47·N tokens instead of 75·N. Per-size hyperparameters follow the OLMo ladder
            (allenai/OLMo scripts/ladder_peteish.py; OLMo-core wsds_chinchilla_run_configurator.py):
                lr     = 0.0047 · (N/108M)^(-1/3) / 2 (WSD), clamped to LR_MAX,  N non-embedding
                batch  = 160 · (N/108M)^(2/3) sequences of 2048 tokens, rounded to a power of two
                warmup = N tokens;  beta2 = 0.99 below 0.5M-token batches, else 0.95;  wd 0.1; clip 1.0
    cbs     one small model at 5-7 batch sizes (16k tokens doubling to 256k-1M), constant LR + EWA (Zhang et
            al. 2024): lr ∝ sqrt(B) from the size's rule batch; beta2 and the EWA decay scaled per batch so
            that their horizons 1/(1-beta2)·B and 1/(1-tau)·B stay fixed in samples (batch-laws.md §1.3, §5).
            Its model and batches come from a fixed share of a budget (CBS_SHARE), monotone in the budget.

Legend: N parameters (total unless named non-embedding), D tokens, B batch (tokens unless `_seqs`),
L layers, d width, T sequence length. Ratios D/N use TOTAL parameters (Chinchilla's convention);
both counts are recorded in every result.

Costs: FLOPs = tokens · (6N + 12·L·d·T) (PaLM App. B). GPU time = FLOPs / (peak · MFU(N)), where MFU(N)
follows the measured H100 curve of nanoGPT probes (h100-probe-mfu.md: 27% at 3.5M rising to 46% at
200M) scaled to the profile's prior; CPU time uses a measured fp32 single-thread throughput.
Probes are packed longest-first onto devices; the largest may run DDP across several (its start-up on
every rank and the all-reduce count against a budget, which caps busy GPU-hours). On several nodes
every probe runs DDP over all nodes' devices, one probe at a time (across_nodes), as the launcher runs
them, and is costed so.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from dataclasses import dataclass

import numpy as np

from planner.errors import InfeasibleError, UsageError
from planner.schemas.probe import PlannedProbe, ProbePlan, ProbeSpec

OLMO_N_REF = 108e6  # non-embedding parameters of the OLMo ladder's reference model
OLMO_LR_REF = 0.0047
OLMO_BATCH_REF_SEQS = 160  # of 2048 tokens
LR_MAX = 0.01  # the OLMo LR rule is fitted on 5M-901M; clamp it below that (calibration.md §3.5)
LADDER_RATIOS = (5.0, 10.0, 20.0)  # cooldown branches, tokens per parameter
FINAL_RATIO = 40.0
COOLDOWN_FRACTION = 0.2  # Hägele et al. 2024 (`--wsd-fract-decay 0.2`)
MIN_SPAN = 15.0  # calibration.md §1.3: 4-5 sizes over >= 15x in N is the minimum for a usable fit
# measured H100 MFU of nanoGPT probes (h100-probe-mfu.md, bf16, compile, T=1024): (total params, MFU)
H100_PROBE_MFU = ((3.48e6, 0.272), (11.1e6, 0.335), (25.8e6, 0.380), (50.0e6, 0.391), (85.9e6, 0.427),
                  (124.4e6, 0.444), (202.7e6, 0.460))
H100_MFU_PLATEAU = 0.40  # the prior those measurements are scaled against (hardware.md: H100 SXM 0.40)
CPU_FLOPS_PER_S = 2.0e10  # fp32 eager, one thread, this class of host (calibration.md §5: 36-73 GFLOP/s
# at 1 thread on an idle core; 21 GFLOP/s measured on the shared 2-core CI host)
PROBE_STARTUP_S = {"cpu": 4.0, "cuda": 45.0}  # interpreter + torch import + data (+ torch.compile on GPU)


# ----------------------------------------------------------------------------- shapes and rules


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_embd: int
    n_head: int


def shape_params(shape: Shape, vocab_size: int, seq_len: int) -> tuple[int, int]:
    """(total, non-embedding) parameters of calibrate.model.GPT: tied head once, learned positions."""
    d, L = shape.n_embd, shape.n_layer
    body = L * (12 * d * d + 2 * d) + d  # attention 4d², MLP 8d², two LayerNorm weights; final LayerNorm
    return vocab_size * d + seq_len * d + body, body


def flops_per_token(shape: Shape, vocab_size: int, seq_len: int) -> float:
    """6N + 12·L·d·T (PaLM App. B; nanoGPT estimate_mfu), N total."""
    total, _ = shape_params(shape, vocab_size, seq_len)
    return 6.0 * total + 12.0 * shape.n_layer * shape.n_embd * seq_len


def gpu_shape(n_layer: int) -> Shape:
    """nanoGPT-like GPU ladder: d = 64·L, head dimension 64 (calibration.md §3.4)."""
    return Shape(n_layer, 64 * n_layer, n_layer)


def olmo_lr(n_non_embedding: float, wsd: bool = True, lr_max: float = LR_MAX) -> float:
    """0.0047·(N/108M)^(-1/3), halved for WSD (OLMo-core), clamped to lr_max."""
    lr = OLMO_LR_REF * (n_non_embedding / OLMO_N_REF) ** (-1.0 / 3.0)
    return min(lr / 2 if wsd else lr, lr_max)


def olmo_batch_tokens(n_non_embedding: float) -> float:
    """160·(N/108M)^(2/3) sequences of 2048 tokens, in tokens (OLMo ladder_peteish.py)."""
    return OLMO_BATCH_REF_SEQS * (n_non_embedding / OLMO_N_REF) ** (2.0 / 3.0) * 2048


def pow2_seqs(tokens: float, seq_len: int, minimum: int = 1) -> int:
    """Sequences per batch: a power of two near tokens/seq_len, at least `minimum`."""
    seqs = max(1.0, tokens / seq_len)
    return max(minimum, 2 ** round(math.log2(seqs)))


def beta2_for_batch(batch_tokens: float) -> float:
    """0.99 below 0.5M-token batches, else 0.95 (OLMo-core)."""
    return 0.99 if batch_tokens < 524_288 else 0.95


def horizon_decay(horizon_samples: float, batch_seqs: int, lo: float, hi: float) -> float:
    """The per-step decay whose horizon 1/(1-decay)·B equals horizon_samples, clamped to [lo, hi]."""
    return float(np.clip(1.0 - batch_seqs / horizon_samples, lo, hi))


def mfu_at(n_params: float, mfu_prior: float) -> float:
    """MFU of one probe of n_params on its own GPU: the measured H100 curve scaled to mfu_prior."""
    n, m = zip(*H100_PROBE_MFU)
    measured = float(np.interp(math.log(n_params), np.log(n), m))
    return mfu_prior * min(1.0, measured / H100_MFU_PLATEAU)


def max_micro_seqs(n_params: float, seq_len: int) -> int:
    """Sequences per forward that fit an 80 GB GPU at T=1024 with room (h100-probe-mfu.md batches)."""
    tokens = 65_536 if n_params < 30e6 else 32_768 if n_params < 100e6 else 16_384
    return max(1, tokens // seq_len)


# ----------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class Setting:
    """Everything shared by the probes of one plan."""

    device: str  # "cpu" | "cuda"
    vocab_size: int
    seq_len: int
    data: str
    data_vocab_size: int | None
    peak_flops_per_s: float | None
    mfu_prior: float | None
    eval_tokens: int
    seed: int = 0
    lr_max: float = LR_MAX
    batch_seqs: int | None = None  # CPU presets fix the batch instead of the OLMo rule
    dtype: str = "fp32"
    compile: bool = False


def ladder_probe(shape: Shape, s: Setting, ratios=LADDER_RATIOS, final_ratio=FINAL_RATIO, n_procs=1) -> ProbeSpec:
    total, non_emb = shape_params(shape, s.vocab_size, s.seq_len)
    batch_seqs = s.batch_seqs or pow2_seqs(olmo_batch_tokens(non_emb), s.seq_len, minimum=n_procs)
    batch_tokens = batch_seqs * s.seq_len
    micro = min(batch_seqs // n_procs, max_micro_seqs(total, s.seq_len))
    total_tokens = final_ratio * total
    steps = max(1, round(total_tokens / batch_tokens))
    return ProbeSpec(
        id=f"ladder-L{shape.n_layer}-d{shape.n_embd}", kind="ladder", n_layer=shape.n_layer,
        n_embd=shape.n_embd, n_head=shape.n_head, vocab_size=s.vocab_size, seq_len=s.seq_len,
        batch_seqs=batch_seqs, micro_batch_seqs=micro, n_procs=n_procs, lr=olmo_lr(non_emb, lr_max=s.lr_max),
        beta2=beta2_for_batch(batch_tokens),
        ewa_decay=horizon_decay(0.05 * steps * batch_seqs, batch_seqs, 0.9, 0.9999),  # EWA over ~5% of the run
        warmup_samples=max(1, round(non_emb / s.seq_len)),  # warmup = N tokens (Porian; OLMo)
        total_tokens=total_tokens, branch_tokens=[r * total for r in ratios], branch_ratios=list(ratios),
        final_ratio=final_ratio, cooldown_fraction=COOLDOWN_FRACTION, eval_every_steps=max(1, steps // 16),
        eval_tokens=s.eval_tokens, log_every_steps=max(1, min(50, steps // 50)), device=s.device,
        dtype=s.dtype, compile=s.compile, peak_flops_per_s=s.peak_flops_per_s, seed=s.seed, data=s.data,
        data_vocab_size=s.data_vocab_size)


def cbs_probes(shape: Shape, s: Setting, batch_tokens: list[float], tokens: float, targets: list[float]) -> list[ProbeSpec]:
    """Zhang-style sweep: constant LR + EWA at each batch size, horizons fixed in samples."""
    total, non_emb = shape_params(shape, s.vocab_size, s.seq_len)
    ref_seqs = s.batch_seqs or pow2_seqs(olmo_batch_tokens(non_emb), s.seq_len)
    lr_ref = olmo_lr(non_emb, lr_max=s.lr_max)
    beta2_horizon = ref_seqs / (1.0 - 0.99)  # beta2 = 0.99 at the rule batch (OLMo-core)
    ewa_horizon = 0.1 * tokens / s.seq_len  # EWA over 10% of the run (§2.4: <= 10% of the largest-B run)
    specs = []
    for bt in batch_tokens:
        seqs = pow2_seqs(bt, s.seq_len)
        steps = max(1, round(tokens / (seqs * s.seq_len)))
        specs.append(ProbeSpec(
            id=f"cbs-L{shape.n_layer}-d{shape.n_embd}-b{seqs * s.seq_len}", kind="cbs", n_layer=shape.n_layer,
            n_embd=shape.n_embd, n_head=shape.n_head, vocab_size=s.vocab_size, seq_len=s.seq_len,
            batch_seqs=seqs, micro_batch_seqs=min(seqs, max_micro_seqs(total, s.seq_len)),
            lr=min(2 * s.lr_max, lr_ref * math.sqrt(seqs / ref_seqs)),  # Adam square-root rule
            beta1=0.9, beta2=horizon_decay(beta2_horizon, seqs, 0.9, 0.9995),
            ewa_decay=horizon_decay(ewa_horizon, seqs, 0.9, 0.99995),
            warmup_samples=max(1, round(non_emb / s.seq_len)),  # fixed in samples, as Zhang's warmup_ratio
            total_tokens=tokens, eval_every_steps=max(1, steps // 64), eval_tokens=s.eval_tokens,
            targets=targets, log_every_steps=max(1, min(50, steps // 50)), device=s.device, dtype=s.dtype,
            compile=s.compile, peak_flops_per_s=s.peak_flops_per_s, seed=s.seed, data=s.data,
            data_vocab_size=s.data_vocab_size))
    return specs


def default_targets(lo: float = 0.5, hi: float = 6.0, n: int = 32) -> list[float]:
    """Loss targets for steps-to-target, log-spaced; the full EWA curve is recorded as well."""
    return [float(f"{x:.3g}") for x in np.geomspace(lo, hi, n)]


# ----------------------------------------------------------------------------- cost and packing


def tokens_processed(spec: ProbeSpec) -> float:
    """Main run plus every cooldown branch (each branch's decay re-trains cooldown_fraction of its D)."""
    return spec.total_tokens + spec.cooldown_fraction * sum(spec.branch_tokens)


def _costs(spec: ProbeSpec, s: Setting, n_procs: int) -> tuple[int, int, float, float, float | None, float]:
    """(total params, non-embedding params, tokens, FLOPs, MFU, wall seconds) of a probe over n_procs ranks."""
    shape = Shape(spec.n_layer, spec.n_embd, spec.n_head)
    total, non_emb = shape_params(shape, spec.vocab_size, spec.seq_len)
    tokens = tokens_processed(spec)
    flops = tokens * flops_per_token(shape, spec.vocab_size, spec.seq_len)
    if spec.device == "cuda":
        mfu = mfu_at(total, s.mfu_prior or H100_MFU_PLATEAU)
        device_s = flops / (s.peak_flops_per_s * mfu)
    else:
        mfu = None
        device_s = flops / CPU_FLOPS_PER_S
    ddp_efficiency = 0.9 if n_procs > 1 else 1.0  # the all-reduce is not overlapped (calibrate/dist.py)
    return total, non_emb, tokens, flops, mfu, device_s / (n_procs * ddp_efficiency) + PROBE_STARTUP_S[spec.device]


def estimate(spec: ProbeSpec, s: Setting) -> PlannedProbe:
    total, non_emb, tokens, flops, mfu, wall = _costs(spec, s, spec.n_procs)
    return PlannedProbe(spec=spec, n_params=total, n_params_non_embedding=non_emb, tokens_processed=tokens,
                        flops=flops, mfu=mfu, device_hours=wall * spec.n_procs / 3600, est_wall_s=wall)


def pack(probes: list[PlannedProbe], n_devices: int) -> tuple[list[PlannedProbe], float]:
    """Longest-processing-time-first list scheduling; a probe of n_procs waits for that many free devices.

    Each probe takes the k devices that free up first (ties: lowest index), from a heap: the time is
    independent of the device count, as devices past the plan's total rank count would never be used.
    """
    order = sorted(probes, key=lambda q: (-q.est_wall_s, q.spec.id))
    n = min(n_devices, sum(min(p.spec.n_procs, n_devices) for p in order))
    heap = [(0.0, i) for i in range(n)]  # (free at, device): sorted, hence a heap
    placed, makespan = [], 0.0
    for p in order:
        taken = [heapq.heappop(heap) for _ in range(min(p.spec.n_procs, n_devices))]
        start = max(t for t, _ in taken)
        end = start + p.est_wall_s
        for _, i in taken:
            heapq.heappush(heap, (end, i))
        makespan = max(makespan, end)
        placed.append(p.model_copy(update={"start_s": start, "slot": sorted(i for _, i in taken)}))
    return placed, makespan


def with_ddp(spec: ProbeSpec, n_procs: int) -> ProbeSpec:
    """The same probe as DDP over n_procs ranks (the global batch is unchanged)."""
    if spec.batch_seqs % n_procs:
        raise UsageError(f"probe {spec.id}: a batch of {spec.batch_seqs} sequences does not split over "
                         f"{n_procs} ranks", hint="use fewer GPUs or nodes for this probe")
    per_rank = spec.batch_seqs // n_procs
    return spec.model_copy(update={"n_procs": n_procs, "micro_batch_seqs": min(spec.micro_batch_seqs, per_rank)})


def choose_ddp(probes: list[PlannedProbe], n_devices: int, s: Setting, cap: float | None = None) -> list[PlannedProbe]:
    """Double the DDP width of the longest probe while that shortens the packed schedule by > 3%.

    Small probes stay one per device: DDP of a 3M model only adds an all-reduce per step
    (calibration.md §3.1); the largest one or two are split so that they do not set the wall clock.
    With `cap`, no widening may take the busy device-hours (start-up on every rank, the all-reduce) above it.
    """
    best, (_, best_span) = list(probes), pack(probes, n_devices)
    while n_devices >= 2:
        wider = {i: estimate(with_ddp(p.spec, 2 * p.spec.n_procs), s) for i, p in enumerate(best)
                 if 2 * p.spec.n_procs <= n_devices and p.spec.batch_seqs % (2 * p.spec.n_procs) == 0}
        trials = []
        for move in [(i,) for i in wider] + list(itertools.combinations(wider, 2)):  # pairs: two big probes
            trial = [wider[j] if j in move else p for j, p in enumerate(best)]
            if cap is not None and sum(p.device_hours for p in trial) > cap:
                continue
            trials.append((pack(trial, n_devices)[1], trial))
        if not trials:
            break
        span, trial = min(trials, key=lambda t: t[0])
        if span >= best_span * 0.97:
            break
        best, best_span = trial, span
    return best


def across_nodes(specs: list[ProbeSpec], nnodes: int, n_devices: int) -> list[ProbeSpec]:
    """Every probe as DDP over all nnodes x n_devices ranks, as the multi-node launcher runs it.

    planner/calibrate_run.py runs one probe at a time across every node (one torchrun rendezvous per
    probe), so a batch that does not split over the world size is refused here, at plan time.
    """
    world = nnodes * n_devices
    bad = [sp for sp in specs if sp.batch_seqs % world]
    if bad:
        worst = min(bad, key=lambda sp: sp.batch_seqs)
        smallest = min(sp.batch_seqs for sp in specs)
        raise UsageError(f"--nnodes {nnodes} x {n_devices} devices: every probe runs DDP over all {world} ranks, "
                         f"and probe {worst.id}'s batch of {worst.batch_seqs} sequences does not split over {world}",
                         hint=f"use a world size (--nnodes x --gpus) that divides {smallest}, the plan's smallest "
                              "batch in sequences, or run on one node")
    return [with_ddp(sp, world) for sp in specs]


def finish(preset: str, s: Setting, specs: list[ProbeSpec], n_devices: int, budget: float | None,
           notes: list[str], ddp: bool = True, nnodes: int = 1, cap: float | None = None) -> ProbePlan:
    if nnodes > 1:
        specs, ddp = across_nodes(specs, nnodes, n_devices), False
    probes = [estimate(sp, s) for sp in specs]
    if ddp:
        probes = choose_ddp(probes, n_devices, s, cap=cap)
    placed, makespan = pack(probes, nnodes * n_devices)
    ladder = [p.n_params for p in placed if p.spec.kind == "ladder"]
    warnings = []
    if s.data == "stdlib":
        warnings.append("data: the stdlib demo corpus (~12M bytes) gives nats-per-byte constants of Python "
                        "source; pass --data with your own tokenized corpus for production constants")
    return ProbePlan(
        preset=preset, device=s.device, n_devices=n_devices, nnodes=nnodes, peak_flops_per_s=s.peak_flops_per_s,
        mfu_prior=s.mfu_prior, budget_device_hours=budget, data=s.data, probes=placed,
        total_flops=sum(p.flops for p in placed), total_device_hours=sum(p.device_hours for p in placed),
        wall_clock_s=makespan, allocated_device_hours=makespan * nnodes * n_devices / 3600,
        budget_constrains="busy" if budget is not None else None,
        span=(max(ladder) / min(ladder)) if ladder else 1.0, warnings=warnings, notes=notes)


# ----------------------------------------------------------------------------- presets


SMOKE_LADDER = (Shape(1, 16, 1), Shape(1, 24, 1), Shape(1, 32, 2), Shape(2, 40, 2))  # 9.3k-54k params
SMOKE_DDP = Shape(1, 32, 2)  # run as 2-process gloo DDP: exercises torchrun and B_simple, cheaply
SMOKE_CBS_SHAPE = Shape(1, 24, 1)  # 16.2k params


def source_vocab(data: str, data_vocab_size: int | None) -> int:
    """Vocabulary of a data source: given, the synthetic source's `vocab=` option, or bytes + EOS (257)."""
    if data_vocab_size:
        return data_vocab_size
    if data.startswith("synthetic:"):
        from urllib.parse import parse_qsl

        return int(float(dict(parse_qsl(data.partition("?")[2])).get("vocab", 64)))  # checked by calibrate.data
    return 257


def plan_smoke(n_cores: int = 2, data: str = "stdlib", data_vocab_size: int | None = None,
               vocab_size: int | None = None, seed: int = 0, nnodes: int = 1) -> ProbePlan:
    """CPU smoke calibration: 4 sizes of 9k-54k params, seq 128, D/N <= 20, a 4-point CBS sweep.

    Runs end to end in about a minute on 2 idle cores (1 thread per process). One probe runs as
    2-process gloo DDP, which exercises torchrun and logs B_simple. With nnodes > 1 every probe runs
    over all nnodes x n_cores ranks (across_nodes).
    """
    vocab = vocab_size or source_vocab(data, data_vocab_size)
    s = Setting(device="cpu", vocab_size=vocab, seq_len=128, data=data, data_vocab_size=data_vocab_size,
                peak_flops_per_s=None, mfu_prior=None, eval_tokens=8192, seed=seed, batch_seqs=32)
    specs = [ladder_probe(sh, s, ratios=(5.0, 10.0), final_ratio=20.0) for sh in SMOKE_LADDER]
    if n_cores >= 2 and nnodes == 1:
        specs = [with_ddp(sp, 2) if (sp.n_layer, sp.n_embd) == (SMOKE_DDP.n_layer, SMOKE_DDP.n_embd) else sp
                 for sp in specs]
    cbs_tokens = 10.0 * shape_params(SMOKE_CBS_SHAPE, vocab, 128)[0]
    cbs_setting = dataclasses.replace(s, eval_tokens=2048)  # 64 evals per run: keep each one cheap
    specs += cbs_probes(SMOKE_CBS_SHAPE, cbs_setting, [512, 1024, 2048, 4096], cbs_tokens,
                        default_targets(2.0, 5.0, 16))
    notes = ["smoke: exercises the pipeline; tiny models cannot identify E (calibration.md §5)"]
    return finish("smoke", s, specs, n_cores, None, notes, ddp=False, nnodes=nnodes)


def pick_sizes(candidates: list[Shape], n: int, vocab: int, seq_len: int) -> list[Shape]:
    """n shapes from candidates (ascending) whose sizes are closest to a geometric progression."""
    sizes = np.array([shape_params(c, vocab, seq_len)[0] for c in candidates], dtype=float)
    goals = np.geomspace(sizes[0], sizes[-1], n)
    chosen: list[int] = []
    for g in goals:
        free = [i for i in range(len(candidates)) if i not in chosen]
        chosen.append(min(free, key=lambda i: abs(math.log(sizes[i] / g))))
    return [candidates[i] for i in sorted(chosen)]


CBS_SHARE = 0.25  # of the budget, for the CBS sweep (calibration.md §3.5: its add-ons cost 16-20% of a plan,
# before the start-up of 5-7 compiled runs)


def plan_budget(n_gpus: int, budget_gpu_hours: float, peak_flops_per_s: float, mfu_prior: float, *,
                data: str = "stdlib", data_vocab_size: int | None = None, vocab_size: int | None = None,
                seq_len: int = 1024, seed: int = 0, preset: str = "budget", nnodes: int = 1) -> ProbePlan:
    """The largest ladder (5-6 sizes, >= 15x span) plus a CBS sweep within the GPU-hour budget (busy GPU-hours).

    The CBS sweep's model and batch sizes are chosen from a fixed share of the budget (CBS_SHARE), so a
    bigger budget never gives a smaller sweep (cbs_choice); the ladder gets the rest, and what the ladder
    leaves (its sizes come in steps) lengthens the sweep's runs up to D/N = 100. On one node DDP widens the
    largest probes where that shortens the schedule; their start-up and all-reduce cost GPU-hours, so a
    plan whose DDP layout would overrun the budget gets the next smaller ladder (down to the smallest,
    whose DDP is then limited to what the budget leaves). n_gpus is per node; with nnodes > 1 every probe
    runs DDP over all nnodes x n_gpus GPUs, one at a time (across_nodes), and is costed so; when not even
    the smallest plan fits that layout, the single-node choice is kept and a warning says what it needs.
    """
    if n_gpus < 1 or not budget_gpu_hours > 0 or not peak_flops_per_s > 0 or not 0 < mfu_prior <= 1:
        raise UsageError("n_gpus, budget, peak FLOP/s and MFU must be positive (MFU at most 1)")
    vocab = vocab_size or 64 * math.ceil(source_vocab(data, data_vocab_size) / 64)  # pad to 64 (GPU kernels)
    s = Setting(device="cuda", vocab_size=vocab, seq_len=seq_len, data=data, data_vocab_size=data_vocab_size,
                peak_flops_per_s=peak_flops_per_s, mfu_prior=mfu_prior, eval_tokens=262_144, seed=seed,
                dtype="bf16", compile=True)
    notes = [(f"ladder: {{n}} sizes, WSD with cooldown branches at D/N = "
              f"{', '.join(f'{r:g}' for r in LADDER_RATIOS)} and final D/N = {FINAL_RATIO:g}"),
             "MFU per probe from the measured H100 curve of nanoGPT probes (h100-probe-mfu.md) scaled to the prior"]
    world = nnodes * n_gpus if nnodes > 1 else 1
    plan = _fit_budget(preset, s, budget_gpu_hours, n_gpus, nnodes, world, notes)
    if plan is None and world > 1:  # the multi-node layout cannot hold even the smallest plan: warn below
        plan = _fit_budget(preset, s, budget_gpu_hours, n_gpus, nnodes, 1, notes)
    if plan is None:
        raise InfeasibleError(f"a {budget_gpu_hours:g} GPU-hour budget cannot fit a 5-size ladder spanning "
                              f"{MIN_SPAN:g}x in parameters plus a CBS sweep",
                              hint=f"raise --budget-gpu-hours (at vocabulary {vocab} the smallest plan needs "
                                   f"{minimum_budget(s):.2g} GPU-hours); large vocabularies make small probes "
                                   f"mostly embedding")
    w = allocation_warning(plan)
    if w:
        plan.warnings.append(w)
    return plan


def _fit_budget(preset: str, s: Setting, budget: float, n_gpus: int, nnodes: int, world: int,
                notes: list[str]) -> ProbePlan | None:
    """The plan of plan_budget with every probe costed over `world` ranks (1: one node), or None."""
    shape, top = cbs_choice(s, CBS_SHARE * budget, world)
    lo, hi = cbs_token_range(shape, top, s)
    fixed, per_token = _sweep_cost(shape, top, s, world)
    floor = fixed + per_token * lo  # the chosen sweep at its shortest
    share = min(max(CBS_SHARE * budget, floor), fixed + per_token * hi)  # what the sweep may spend
    first = best_ladder(s, budget - share, world) or best_ladder(s, budget - floor, world)
    if first is None:
        return None

    def build(ladder: list[ProbeSpec], sweep_budget: float, cap: float | None) -> ProbePlan:
        sweep = _sweep_specs(shape, top, s, min(hi, max(lo, (sweep_budget - fixed) / per_token)))
        lines = [notes[0].format(n=len(ladder)), *notes[1:], *filter(None, [cbs_note(sweep, s, world)])]
        return finish(preset, s, ladder + sweep, n_gpus, budget, lines, nnodes=nnodes, cap=cap)

    if nnodes == 1:  # DDP widens the longest probes; its start-up and all-reduce come out of the ladder's part
        reserve = 0.0
        for _ in range(64):
            ladder = best_ladder(s, budget - share - reserve)
            if ladder is None:
                break
            plan = build(ladder, max(share, budget - reserve - cost_hours(ladder, s)), cap=None)
            excess = plan.total_device_hours - budget
            if excess <= 1e-9 * budget:
                return plan
            reserve += max(1.01 * excess, 1e-3 * budget)
    # the largest ladder beside the sweep, its DDP limited to what the budget leaves (several nodes: exact)
    plan = build(first, budget - cost_hours(first, s, world), cap=budget)
    return plan if world == 1 or plan.total_device_hours <= budget * (1 + 1e-9) else None


def allocation_warning(plan: ProbePlan) -> str | None:
    """A warning when the plan's GPU-hours, busy or allocated, exceed its budget.

    The budget caps busy GPU-hours (total_device_hours). The allocation, wall clock x every GPU of every
    node, is what a cluster bills: on one node the GPUs that finish early idle until the longest probes end;
    on several nodes every probe spans all of them, so busy and allocated agree, and start-up on every rank
    can push both above the budget (planned only when not even the smallest plan fits that layout).
    """
    budget, busy, alloc = plan.budget_device_hours, plan.total_device_hours, plan.allocated_device_hours
    if budget is None or alloc is None or alloc <= budget * (1 + 1e-6):
        return None
    gpus = plan.nnodes * plan.n_devices
    what = "--budget-gpu-hours" if plan.preset == "budget" else f"of --preset {plan.preset}"
    if busy > budget * (1 + 1e-6):
        if plan.nnodes > 1:
            return (f"the plan needs {busy:.3g} GPU-hours, above the {budget:g} GPU-hour budget ({what}): on "
                    f"{plan.nnodes} nodes every probe spans all {gpus} GPUs and pays its start-up on each; "
                    f"use fewer nodes or a bigger budget")
        return (f"the plan needs {busy:.3g} GPU-hours, above the {budget:g} GPU-hour budget ({what}); "
                f"raise the budget")
    return (f"the plan allocates {alloc:.3g} GPU-hours ({gpus} GPUs x {plan.wall_clock_s / 3600:.3g} h of wall "
            f"clock), above the {budget:g} GPU-hour budget ({what}), which caps the {busy:.3g} busy GPU-hours: "
            f"{alloc - busy:.3g} GPU-hours idle while the longest probes finish; use fewer --gpus, release idle "
            f"GPUs to other jobs, or raise the budget")


def minimum_budget(s: Setting, world: int = 1) -> float:
    """GPU-hours of the cheapest plan: a 5-size ladder spanning MIN_SPAN plus the minimal CBS sweep."""
    floor = cost_hours(cbs_sweep(s, 0.0, world), s, world)
    return cost_hours(smallest_ladder(s, world), s, world) + floor


def _ladders(s: Setting):
    """Every candidate ladder, largest top size first; 6 sizes when the span reaches 30x, else 5."""
    for l_min in (4, 3, 2):  # about 3M non-embedding is the practical floor (calibration.md §3.3)
        for l_max in range(24, l_min, -1):
            candidates = [gpu_shape(L) for L in range(l_min, l_max + 1)]
            lo, hi = (shape_params(c, s.vocab_size, s.seq_len)[0] for c in (candidates[0], candidates[-1]))
            if hi / lo < MIN_SPAN:
                break
            n = 6 if hi / lo >= 30 and len(candidates) >= 6 else 5
            if len(candidates) < n:
                continue
            yield [ladder_probe(sh, s) for sh in pick_sizes(candidates, n, s.vocab_size, s.seq_len)]


def best_ladder(s: Setting, budget_gpu_hours: float, world: int = 1) -> list[ProbeSpec] | None:
    """Largest top size first; 6 sizes when the span reaches 30x, else 5; smallest size 3M if it fits."""
    if budget_gpu_hours <= 0:
        return None
    return next((specs for specs in _ladders(s) if cost_hours(specs, s, world) <= budget_gpu_hours), None)


def smallest_ladder(s: Setting, world: int = 1) -> list[ProbeSpec]:
    """The cheapest candidate ladder (what the smallest plan runs)."""
    return min(_ladders(s), key=lambda specs: cost_hours(specs, s, world))


def round_down(x: float, digits: int = 3) -> float:
    """x rounded DOWN to `digits` significant figures (a budget is a ceiling)."""
    scale = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.floor(x / scale) * scale


def round_up(x: float, digits: int = 2) -> float:
    """x rounded UP to `digits` significant figures (a budget that suffices)."""
    scale = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.ceil(x / scale - 1e-9) * scale


def cost_hours(specs: list[ProbeSpec], s: Setting, world: int = 1) -> float:
    """Busy device-hours of the specs, each run single-process (world 1) or DDP over `world` ranks."""
    return sum(_costs(sp, s, world)[-1] * world / 3600 for sp in specs)


CBS_SHAPES = (gpu_shape(8), gpu_shape(6), gpu_shape(4))  # 25M, 10.6M, 3.1M non-embedding (§2.4: 10-25M)
CBS_MIN_RATIO, CBS_MAX_RATIO = 20.0, 100.0  # D/N of each sweep run: past Chinchilla, short of saturation
CBS_MIN_LOG2, CBS_MAX_LOG2 = 14, 20  # batches 16k..1M tokens, doubling (calibration.md §0)
CBS_MIN_TOP_LOG2 = 18  # never stop the sweep below 256k tokens
CBS_MIN_STEPS = 200  # the largest batch still needs this many steps for a steps-to-target curve
# the sweeps a budget may buy, cheapest first; each step grows the model or the batch range and shrinks
# neither, so the choice (the last one the CBS share affords) is monotone in the budget
CBS_CHAIN = ((gpu_shape(4), 18), (gpu_shape(4), 19), (gpu_shape(4), 20), (gpu_shape(6), 20), (gpu_shape(8), 20))


def cbs_token_range(shape: Shape, top: int, s: Setting) -> tuple[float, float]:
    """Tokens per sweep run: D/N 20-100, and CBS_MIN_STEPS steps for a top batch above 256k tokens."""
    total, _ = shape_params(shape, s.vocab_size, s.seq_len)
    lo = CBS_MIN_RATIO * total
    if top > CBS_MIN_TOP_LOG2:
        lo = max(lo, CBS_MIN_STEPS * 2.0**top)
    return lo, max(lo, CBS_MAX_RATIO * total)


def _sweep_specs(shape: Shape, top: int, s: Setting, tokens: float) -> list[ProbeSpec]:
    return cbs_probes(shape, s, [2.0**k for k in range(CBS_MIN_LOG2, top + 1)], round_down(tokens),
                      default_targets(0.5, 6.0, 32))


def _sweep_cost(shape: Shape, top: int, s: Setting, world: int = 1) -> tuple[float, float]:
    """(start-up GPU-hours, GPU-hours per token of each run) of a sweep: its cost is linear in the tokens."""
    batches = [2.0**k for k in range(CBS_MIN_LOG2, top + 1)]
    fixed = cost_hours(cbs_probes(shape, s, batches, 1.0, []), s, world)
    return fixed, (cost_hours(cbs_probes(shape, s, batches, 1.0e6, []), s, world) - fixed) / 1.0e6


def cbs_choice(s: Setting, budget_gpu_hours: float, world: int = 1) -> tuple[Shape, int]:
    """(model, log2 of the top batch in tokens): the last CBS_CHAIN sweep whose cheapest runs fit the budget."""
    choice = CBS_CHAIN[0]
    for shape, top in CBS_CHAIN:
        fixed, per_token = _sweep_cost(shape, top, s, world)
        if fixed + per_token * cbs_token_range(shape, top, s)[0] <= budget_gpu_hours:
            choice = shape, top
    return choice


def cbs_sweep(s: Setting, budget_gpu_hours: float, world: int = 1) -> list[ProbeSpec]:
    """The CBS sweep of a budget: cbs_choice's model and batches (16k tokens doubling up to 256k-1M), each
    run as long as the budget allows within D/N 20-100 (its shortest when the budget is below its cost)."""
    shape, top = cbs_choice(s, budget_gpu_hours, world)
    lo, hi = cbs_token_range(shape, top, s)
    fixed, per_token = _sweep_cost(shape, top, s, world)
    return _sweep_specs(shape, top, s, min(hi, max(lo, (budget_gpu_hours - fixed) / per_token)))


def cbs_note(specs: list[ProbeSpec], s: Setting | None = None, world: int = 1) -> str | None:
    """Why a CBS sweep stops short of 1M-token batches (calibration.md asks for 16k-1M), or None."""
    runs = [sp for sp in specs if sp.kind == "cbs"]
    if not runs:
        return None
    top = max(sp.tokens_per_step for sp in runs)
    if top >= 2**CBS_MAX_LOG2:
        return None
    why = f"CBS sweep stops at {top // 1024}k-token batches: 7 batch sizes up to 1M tokens"
    if s is None:
        return f"{why} do not fit the budget"
    shape, full = next((sh, t) for sh, t in CBS_CHAIN if t == CBS_MAX_LOG2)
    fixed, per_token = _sweep_cost(shape, full, s, world)
    need = fixed + per_token * cbs_token_range(shape, full, s)[0]
    enough = round_up(need / CBS_SHARE, 2) * (1 + 1e-12)  # float noise must not land just below the need
    return (f"{why} (at least {CBS_MIN_STEPS} steps each) need {need:.2g} GPU-hours, more than the sweep's "
            f"{CBS_SHARE:.0%} share of the budget; --budget-gpu-hours {enough:.2g} or more reaches 1M")


def plan_gpu(n_gpus: int = 1, peak_flops_per_s: float = 989.4e12, mfu_prior: float = 0.40, **kw) -> ProbePlan:
    """The 1 H100-hour class plan (calibration.md §3.5): 5 sizes from about 3M, plus a CBS sweep."""
    return plan_budget(n_gpus, 1.0, peak_flops_per_s, mfu_prior, preset="gpu", **kw)


def make_plan(preset: str, *, n_devices: int, budget_gpu_hours: float | None = None,
              peak_flops_per_s: float | None = None, mfu_prior: float | None = None, **kw) -> ProbePlan:
    """Dispatch on the preset: smoke (CPU), gpu (1 GPU-hour class), budget (needs budget_gpu_hours)."""
    if preset == "smoke":
        return plan_smoke(n_cores=n_devices, **kw)
    if peak_flops_per_s is None or mfu_prior is None:
        raise UsageError(f"preset {preset!r} needs the GPU's dense peak FLOP/s and an MFU prior",
                         hint="pass --gpu NAME (a hardware profile) or use --preset smoke on CPU")
    if preset == "gpu":
        return plan_gpu(n_devices, peak_flops_per_s, mfu_prior, **kw)
    if preset == "budget":
        if budget_gpu_hours is None:
            raise UsageError("the budget preset needs --budget-gpu-hours")
        return plan_budget(n_devices, budget_gpu_hours, peak_flops_per_s, mfu_prior, **kw)
    raise UsageError(f"unknown preset {preset!r}", hint="expected 'smoke', 'gpu' or 'budget'")
