"""Contracts across the process boundary of `planner calibrate`.

The parent (planner/calibrate_run.py, no torch) writes one :class:`ProbeSpec` JSON file per probe;
the torchrun child (calibrate/probe.py) validates it and appends one :class:`ProbeResult` JSON line
per finished run or cooldown branch to runs.jsonl. These two schemas are the only thing the two
sides share (style.md §4).

Units: tokens are tokens of the probe's data source (bytes for the byte-level sources), losses are
nats per token of that source. Batch sizes, warmup and EWA/beta2 horizons are in *sequences*
(samples) where the name says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from planner.schemas.base import SCHEMA_VERSION, Fraction, NonNegativeFloat, PositiveFloat, Strict

ProbeKind = Literal["ladder", "cbs"]


class ProbeSpec(Strict):
    """Everything one probe process needs; the plan (planner/probe_plan.py) fills every field."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$", description="unique within a calibration")
    kind: ProbeKind = Field(description="ladder: WSD run with cooldown branches; cbs: constant LR + EWA sweep")
    # model shape (nanoGPT knobs)
    n_layer: int = Field(ge=1)
    n_embd: int = Field(ge=1)
    n_head: int = Field(ge=1)
    vocab_size: int = Field(ge=2, description="rows of the (tied) embedding; >= the data source's vocabulary")
    seq_len: int = Field(ge=2, description="context length T")
    # batch and parallelism
    batch_seqs: int = Field(ge=1, description="global batch in sequences per optimizer step")
    micro_batch_seqs: int = Field(ge=1, description="sequences per rank per forward/backward")
    n_procs: int = Field(default=1, ge=1, description="DDP ranks (torchrun --nproc_per_node x nnodes)")
    # optimizer (AdamW) and schedule
    lr: PositiveFloat = Field(description="peak (stable-phase) learning rate")
    beta1: Fraction = 0.9
    beta2: Fraction = 0.95
    weight_decay: NonNegativeFloat = Field(default=0.1, description="on matrices only, not embeddings/norms")
    grad_clip: PositiveFloat = 1.0
    ewa_decay: Fraction = Field(description="per-step decay tau of the EWA copy w <- tau*w + (1-tau)*theta")
    warmup_samples: int = Field(ge=0, description="linear warmup length in sequences (not steps)")
    total_tokens: PositiveFloat = Field(description="tokens of the main run (ladder: ends its own cooldown here)")
    branch_tokens: list[PositiveFloat] = Field(
        default_factory=list, description="ladder: end points of cooldown branches taken from the stable phase"
    )
    branch_ratios: list[PositiveFloat] = Field(
        default_factory=list, description="tokens-per-parameter label of each branch end (same order)"
    )
    final_ratio: PositiveFloat | None = Field(default=None, description="tokens-per-parameter of the main run")
    cooldown_fraction: Fraction = Field(default=0.2, description="(1-sqrt) decay over this fraction of each run")
    # evaluation
    eval_every_steps: int = Field(ge=1)
    eval_tokens: int = Field(ge=1, description="held-out tokens per evaluation (fixed slice)")
    targets: list[PositiveFloat] = Field(default_factory=list, description="cbs: losses for steps-to-target")
    log_every_steps: int = Field(default=10, ge=1)
    # execution
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = Field(
        default="default", description="torch.compile mode (the two cudagraph modes mark each step's start)"
    )
    attention: Literal["auto", "flash", "cudnn", "efficient", "math"] = Field(
        default="auto", description="CUDA SDPA kernel: auto keeps PyTorch's priority, a name forces that backend"
    )
    peak_flops_per_s: PositiveFloat | None = Field(default=None, description="dense peak per device, for MFU")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    data: str = Field(default="stdlib", description="stdlib | synthetic:zipf[?k=v&...] | PATH")
    data_vocab_size: int | None = Field(default=None, ge=2, description="for .bin/.npy token files")
    data_text_key: str = "text"
    max_epochs: PositiveFloat = Field(default=4.0, description="warn above this many passes over the data")
    debug_nan_at_step: int | None = Field(default=None, ge=0, description="test hook: poison the loss here")

    @model_validator(mode="after")
    def _consistent(self) -> ProbeSpec:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        per_step = self.micro_batch_seqs * self.n_procs
        if self.batch_seqs % per_step:
            raise ValueError(f"batch_seqs {self.batch_seqs} is not a multiple of micro_batch_seqs x n_procs {per_step}")
        if len(self.branch_tokens) != len(self.branch_ratios):
            raise ValueError("branch_tokens and branch_ratios must have the same length")
        if any(b >= self.total_tokens for b in self.branch_tokens):
            raise ValueError("every branch must end before total_tokens")
        return self

    @property
    def tokens_per_step(self) -> int:
        return self.batch_seqs * self.seq_len

    def result_ids(self) -> list[str]:
        """Ids of the ProbeResult lines this probe writes: one per branch, then the main run."""
        return [branch_result_id(self.id, r) for r in self.branch_ratios] + [self.id]


def branch_result_id(probe_id: str, ratio: float) -> str:
    return f"{probe_id}@r{ratio:g}"


class CurvePoint(Strict):
    step: int
    tokens: float
    loss: float | None = Field(default=None, description="held-out loss of the raw weights")
    ewa_loss: float | None = Field(default=None, description="held-out loss of the bias-corrected EWA weights")


class ProbeResult(Strict):
    """One line of runs.jsonl: a finished (or failed) run or cooldown branch."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(description="probe id, or probe_id@r<ratio> for a cooldown branch")
    probe_id: str
    kind: ProbeKind
    status: Literal["ok", "failed"]
    reason: str | None = Field(default=None, description="why it failed (NaN loss, out of memory, ...)")
    n_params: int = Field(ge=0, description="total parameters, tied head counted once, positions included")
    n_params_non_embedding: int = Field(ge=0, description="total minus token and position embeddings")
    n_layer: int
    n_embd: int
    seq_len: int
    vocab_size: int
    flops_per_token: float = Field(description="6N + 12*L*d*T (PaLM App. B, nanoGPT estimate_mfu)")
    batch_tokens: int
    lr: float
    tokens: float = Field(description="training tokens seen by these weights")
    steps: int
    branch_ratio: float | None = Field(default=None, description="tokens per (total) parameter at the end")
    loss: float | None = Field(default=None, description="final held-out loss of the raw weights")
    ewa_loss: float | None = Field(default=None, description="final held-out loss of the EWA weights")
    train_loss: float | None = None
    stable_loss: float | None = Field(default=None, description="held-out loss at the branch point (pre-decay)")
    steps_to_target: dict[str, int | None] = Field(
        default_factory=dict, description="cbs: first eval step whose EWA loss < target (key: target as %g)"
    )
    curve: list[CurvePoint] = Field(default_factory=list, description="every evaluation of the run")
    tokens_per_s: float | None = None
    mfu: float | None = Field(default=None, description="with the attention term, against peak_flops_per_s")
    mfu_6n: float | None = Field(default=None, description="6N only")
    b_simple: float | None = Field(default=None, description="McCandlish B_simple in tokens (EMA ratio); diagnostic")
    epochs: float | None = Field(default=None, description="passes over the training split")
    data: str
    seed: int | None = Field(default=None, description="the probe's seed (part of the resume key; None in older lines)")
    data_unit: Literal["tokens", "bytes"] | None = Field(
        default=None, description="what `tokens` counts: bytes for byte-level text (loss in nats per byte)"
    )
    data_unique_tokens: int | None = None
    device: str
    n_procs: int
    wall_s: float
    warnings: list[str] = Field(default_factory=list)


class PlannedProbe(Strict):
    """One probe of a plan with its cost estimate."""

    spec: ProbeSpec
    n_params: int = Field(description="total parameters (tied head once, positions included)")
    n_params_non_embedding: int
    tokens_processed: float = Field(description="training tokens including every cooldown branch")
    flops: float = Field(description="tokens_processed x (6N + 12*L*d*T)")
    mfu: float | None = Field(description="assumed MFU (GPU) or None (CPU: throughput model)")
    device_hours: float = Field(description="GPU-hours (or CPU core-hours) of the probe")
    est_wall_s: float = Field(description="estimated wall clock on its n_procs devices, startup included")
    start_s: float = Field(default=0.0, description="estimated start in the packed schedule")
    slot: list[int] = Field(default_factory=list, description="device (or core) indices in the packed schedule")


class ProbePlan(Strict):
    """The pure probe plan of `planner calibrate` (what --dry-run prints)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    preset: str
    device: Literal["cpu", "cuda"]
    n_devices: int = Field(description="GPUs (or CPU cores for device=cpu) per node")
    nnodes: int = Field(default=1, ge=1, description="nodes; above 1 every probe is DDP over nnodes x n_devices")
    peak_flops_per_s: float | None
    mfu_prior: float | None
    budget_device_hours: float | None
    data: str
    probes: list[PlannedProbe]
    total_flops: float
    total_device_hours: float = Field(
        description="busy GPU-hours (CPU core-hours): each probe's wall clock x its devices, summed; "
                    "what budget_device_hours caps")
    wall_clock_s: float = Field(description="makespan of the longest-first packed schedule")
    allocated_device_hours: float | None = Field(
        default=None, description="wall_clock_s x every device of every node: what holding the allocation for "
                                  "the whole schedule costs (>= total_device_hours; idle devices included)")
    budget_constrains: Literal["busy"] | None = Field(
        default=None, description="which GPU-hours budget_device_hours caps: busy (total_device_hours); "
                                  "a warning says when allocated_device_hours exceeds the budget")
    span: float = Field(description="largest / smallest ladder size (total parameters)")
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def specs(self) -> list[ProbeSpec]:
        return [p.spec for p in self.probes]
