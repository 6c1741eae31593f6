"""Entry point of one probe process group.

    python -m torch.distributed.run --standalone --nproc_per_node=K -m calibrate.probe \\
        --spec SPEC.json --out runs.jsonl [--status STATUS.json]
    python -m calibrate.probe --spec SPEC.json --out runs.jsonl        # single process

Validates SPEC.json as a planner ProbeSpec, trains (calibrate/train.py), and rank 0 appends one
ProbeResult JSON line per finished run or cooldown branch. Result ids already in --out are skipped,
so a rerun never repeats or duplicates a finished branch. A probe that fails (non-finite loss, out of
memory, bad data) is recorded as status=failed with its reason, and the process exits 1 so that
torchrun tears down the other ranks (a rank left waiting in an all-reduce would hang); the parent
finds the failed lines and goes on with the other probes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from planner.calibrate_run import append_line, read_results  # one reader and writer for parent and child
from planner.schemas.probe import ProbeResult, ProbeSpec


def recorded_ids(path: str | os.PathLike) -> set[str]:
    """Ids already finished OK in runs.jsonl (failed ones are redone on a retry), read by the planner's own
    reader: a line the planner would not count is not skipped here either (a corrupt one raises)."""
    return {r.id for r in read_results(path) if r.status == "ok"}


def failed_result(spec: ProbeSpec, rid: str, reason: str, t0: float) -> ProbeResult:
    from calibrate.model import GPTConfig, flops_per_token, n_params

    cfg = GPTConfig(spec.n_layer, spec.n_embd, spec.n_head, spec.vocab_size, spec.seq_len)
    total, non_emb = n_params(cfg)
    ratio = dict(zip([f"{spec.id}@r{r:g}" for r in spec.branch_ratios], spec.branch_ratios)).get(rid, spec.final_ratio)
    return ProbeResult(
        id=rid, probe_id=spec.id, kind=spec.kind, status="failed", reason=reason, n_params=total,
        n_params_non_embedding=non_emb, n_layer=spec.n_layer, n_embd=spec.n_embd, seq_len=spec.seq_len,
        vocab_size=spec.vocab_size, flops_per_token=flops_per_token(cfg), batch_tokens=spec.tokens_per_step,
        lr=spec.lr, tokens=0.0, steps=0, branch_ratio=ratio if spec.kind == "ladder" else None, data=spec.data,
        seed=spec.seed, device=spec.device, n_procs=spec.n_procs, wall_s=time.time() - t0)


def failure_reason(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return f"out of memory: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibrate.probe", description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True, help="ProbeSpec JSON file")
    ap.add_argument("--out", required=True, help="runs.jsonl to append ProbeResult lines to")
    ap.add_argument("--status", default=None, help="status JSON rewritten atomically for live progress")
    args = ap.parse_args(argv)
    t0 = time.time()
    spec = ProbeSpec.model_validate_json(Path(args.spec).read_text())

    from calibrate import dist, train  # torch is imported here, after the spec is known to be valid

    rank0 = int(os.environ.get("RANK", "0")) == 0
    skip = recorded_ids(args.out)
    written: set[str] = set()

    def emit(result: ProbeResult) -> None:
        if rank0:
            append_line(args.out, result.model_dump_json())
        written.add(result.id)

    status = 0
    try:
        run = train.setup(spec, t0)
        train.train(run, emit, status_path=args.status if rank0 else None, skip=skip)
    except Exception as exc:  # noqa: BLE001 - recorded, not raised: the other probes go on (a DDP peer is killed by torchrun)
        reason = failure_reason(exc)
        if rank0:
            traceback.print_exc()
            for rid in spec.result_ids():
                if rid not in skip and rid not in written:
                    append_line(args.out, failed_result(spec, rid, reason, t0).model_dump_json())
        status = 1
    finally:
        dist.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
