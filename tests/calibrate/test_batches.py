"""calibrate/batches.py: every batch mode yields the same windows; the DDP norm hook sums every bucket."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from calibrate import batches, data


def batcher(tokens, mode, vocab=300, accum=3):
    return batches.Batcher(tokens, seq_len=16, n_seqs=4, accum=accum, seed=7, rank=1,
                           device=torch.device("cpu"), vocab_size=vocab, mode=mode)


@pytest.mark.parametrize("vocab, dtype", [(300, np.uint16), (65_536, np.uint16), (70_000, np.uint32)])
def test_device_gather_equals_host_gather(vocab, dtype):
    tokens = np.random.default_rng(0).integers(0, vocab, size=5_000).astype(dtype)
    host, dev = batcher(tokens, "host", vocab), batcher(tokens, "device", vocab)
    for step in (0, 1, batches.CHUNK_STEPS - 1, batches.CHUNK_STEPS, 3 * batches.CHUNK_STEPS + 5, 2):
        for micro in range(3):
            (hx, hy), (dx, dy) = host.get(step, micro), dev.get(step, micro)
            assert hx.dtype == dx.dtype == torch.int64
            assert torch.equal(hx, dx) and torch.equal(hy, dy)
    assert len(dev._chunks) <= 2  # start offsets of at most two chunks of steps held on the device


def test_windows_are_the_legacy_sample_batch_and_targets_shift_by_one():
    tokens = np.arange(10_000, dtype=np.uint16)
    x, y = batcher(tokens, "host").get(5, 2)
    rng = np.random.default_rng([7, 5, 2, 1])  # (seed, step, micro, rank)
    ex, ey = data.sample_batch(tokens, 4, 16, rng)
    assert np.array_equal(x.numpy(), ex) and np.array_equal(y.numpy(), ey)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_cpu_defaults_to_host_and_unknown_mode_is_refused():
    tokens = np.zeros(1000, dtype=np.uint16)
    assert batches.Batcher(tokens, seq_len=8, n_seqs=2, accum=1, seed=0, rank=0, device=torch.device("cpu"),
                           vocab_size=257).mode == "host"
    with pytest.raises(ValueError, match="unknown batch mode"):
        batcher(tokens, "teleport")


def test_norm_tap_hook_sums_every_bucket(tmp_path):
    """One-rank gloo group, tiny buckets: the hook's |g_local|^2 is |g|^2 of the whole model."""
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel

    from calibrate import dist
    from calibrate.model import GPT, GPTConfig

    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = GPT(GPTConfig(n_layer=2, n_embd=192, n_head=2, vocab_size=64, seq_len=16))  # 3.6 MB
        ddp = DistributedDataParallel(model, bucket_cap_mb=0.5)  # past the 1 MB first bucket: several
        tap = dist.NormTap(torch.device("cpu"))
        calls = []

        def counting_hook(state, bucket):
            calls.append(bucket.index())
            return dist.norm_tap_hook(state, bucket)

        ddp.register_comm_hook(tap, counting_hook)
        for seed in (1, 2):  # DDP rebuilds its buckets by size after the first backward pass
            calls.clear()
            model.zero_grad(set_to_none=True)
            x = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(seed))
            ddp(x, x).backward()
            expected = sum(float(p.grad.double().pow(2).sum()) for p in model.parameters())
            # rel 1e-3: torch's fp32 vector_norm on CPU is a plain running sum (~1e-4 off over 1M values)
            assert float(tap.take()) == pytest.approx(expected, rel=1e-3)
            assert float(tap.local_sq) == 0.0  # reset for the next step
        assert len(calls) > 1, calls
    finally:
        tdist.destroy_process_group()


def test_big_micro_batches_upload_fewer_steps_per_chunk(monkeypatch):
    monkeypatch.setattr(batches, "CHUNK_OFFSETS", 24)  # 2 steps of 3 micro-batches of 4 windows
    tokens = np.random.default_rng(1).integers(0, 300, size=3_000).astype(np.uint16)
    host, dev = batcher(tokens, "host"), batcher(tokens, "device")
    assert dev.chunk_steps == 2
    for step in range(7):
        for micro in range(3):
            assert torch.equal(host.get(step, micro)[0], dev.get(step, micro)[0])
