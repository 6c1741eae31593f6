"""The CUDA path: bf16 autocast, torch.compile, fused AdamW, NCCL DDP, MFU (skipped without CUDA)."""

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


def test_oom_is_recorded_as_failed(tmp_path):
    spec = gpu_spec(micro_batch_seqs=2**20, batch_seqs=2**20, compile=False)  # ~300 GB of activations
    outcome = cr.run_calibration([spec], tmp_path / "runs.jsonl", n_devices=1, device="cuda")
    assert {r.status for r in outcome.results} == {"failed"}
    assert any("out of memory" in (r.reason or "") for r in outcome.results)
