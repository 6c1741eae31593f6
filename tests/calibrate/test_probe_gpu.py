"""The CUDA path: bf16 autocast, torch.compile, fused AdamW, NCCL DDP (forced at world size 1 on one GPU),
batch modes, MFU (skipped without CUDA)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from planner import calibrate_run as cr
from planner import probe_plan as pp

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
H100 = 989.4e12


def gpu_spec(**update):
    s = pp.Setting(device="cuda", vocab_size=320, seq_len=256, data="stdlib", data_vocab_size=None,
                   peak_flops_per_s=H100, mfu_prior=0.4, eval_tokens=65_536, batch_seqs=32, dtype="bf16",
                   compile=True)
    spec = pp.ladder_probe(pp.Shape(2, 128, 2), s, ratios=(5.0,), final_ratio=10.0)
    return spec.model_copy(update=update)


def test_setup_uses_fused_adamw_autocast_and_compile():
    from calibrate import train

    run = train.setup(gpu_spec())
    assert isinstance(run.optimizer, torch.optim.AdamW) and run.optimizer.defaults["fused"]
    assert run.step_model is not run.model  # compiled
    assert isinstance(run.autocast, torch.autocast)
    assert run.batcher.mode == "device"  # the training split lives on the GPU: no per-step copy
    loss = train.train_step(run, 1e-3)
    assert torch.isfinite(loss) and loss.device.type == "cuda"


@pytest.mark.parametrize("update", [
    {"compile_mode": "reduce-overhead", "micro_batch_seqs": 16},  # CUDA graphs with 2 accumulated micro-batches
    {"compile_mode": "max-autotune-no-cudagraphs"},
    {"attention": "cudnn"},
    {"attention": "flash", "compile": False},
])
def test_compile_modes_and_attention_kernels_train(update):
    from calibrate import train

    run = train.setup(gpu_spec(**update))
    losses = [float(train.train_step(run, 1e-3)) for _ in range(6)]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    grads_gone = all(p.grad is None for p in run.model.parameters())
    assert grads_gone  # zero_grad(set_to_none) after every step, CUDA graphs or not


def test_gpu_probe_end_to_end_reports_mfu(tmp_path):
    spec = gpu_spec()
    outcome = cr.run_calibration([spec], tmp_path / "runs.jsonl", n_devices=1, device="cuda")
    assert outcome.n_failed == 0, [r.reason for r in outcome.results]
    for r in outcome.results:
        assert r.device == "cuda" and 0 < r.mfu < 1 and r.mfu_6n < r.mfu and r.loss < 5.5


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_nccl_ddp_probe_logs_b_simple(tmp_path):
    spec = pp.with_ddp(gpu_spec(), 2)
    outcome = cr.run_calibration([spec], tmp_path / "runs.jsonl", n_devices=2, device="cuda")
    assert outcome.n_failed == 0, [r.reason for r in outcome.results]
    assert all(r.n_procs == 2 and r.b_simple and r.b_simple > 0 for r in outcome.results)


def test_forced_ddp_probe_runs_the_ddp_path_on_one_gpu(tmp_path):
    """CALIBRATE_FORCE_DDP=1 (test-only): NCCL DDP at world size 1 through the normal launcher (torchrun
    --standalone, 1 rank), so compiled DDP, the comm hook, no_sync micro-batches and bucket-view
    gradients run on a single GPU (NCCL refuses 2 ranks on 1 GPU). B_simple is undefined there: None."""
    spec = gpu_spec(micro_batch_seqs=16)  # 2 micro-batches: no_sync on the first
    opts = cr.LaunchOptions(torchrun="always", env={"CALIBRATE_FORCE_DDP": "1"})
    outcome = cr.run_calibration([spec], tmp_path / "runs.jsonl", n_devices=1, device="cuda", options=opts)
    assert outcome.n_failed == 0, [r.reason for r in outcome.results]
    assert all(r.n_procs == 1 and r.b_simple is None and r.loss < 5.5 for r in outcome.results)
    log = (tmp_path / "runs.calibrate" / "logs" / f"{spec.id}.log").read_text()
    assert '"ddp": true' in log and "torch.distributed.run" in log


def test_batch_modes_agree_on_cuda():
    """host, device (pinned non-blocking chunk uploads, chunks evicted) and pinned (ring of staging
    buffers) give the same windows on a GPU."""
    import numpy as np

    from calibrate import batches

    tokens = np.random.default_rng(0).integers(0, 50_000, size=200_000).astype(np.uint16)

    def make(mode, device):
        return batches.Batcher(tokens, seq_len=64, n_seqs=8, accum=2, seed=3, rank=1, device=torch.device(device),
                               vocab_size=50_000, mode=mode)

    host, dev, pinned = make("host", "cpu"), make("device", "cuda"), make("pinned", "cuda")
    steps = [0, 1, batches.CHUNK_STEPS - 1, batches.CHUNK_STEPS, 2 * batches.CHUNK_STEPS + 3, 5,
             3 * batches.CHUNK_STEPS, 4 * batches.CHUNK_STEPS + 1]
    for step in steps:
        for micro in range(2):
            hx, hy = host.get(step, micro)
            for other in (dev, pinned):
                x, y = other.get(step, micro)
                assert x.device.type == "cuda" and x.dtype == torch.int64
                assert torch.equal(x.cpu(), hx) and torch.equal(y.cpu(), hy)
    assert len(dev._chunks) <= 2 and set(dev._staging) == set(dev._chunks)


def test_oom_is_recorded_as_failed(tmp_path):
    spec = gpu_spec(micro_batch_seqs=2**20, batch_seqs=2**20, compile=False)  # ~300 GB of activations
    outcome = cr.run_calibration([spec], tmp_path / "runs.jsonl", n_devices=1, device="cuda")
    assert {r.status for r in outcome.results} == {"failed"}
    assert any("out of memory" in (r.reason or "") for r in outcome.results)
