"""calibrate/model.py: shapes, parameter counts, FLOPs per token, learning, determinism (CPU)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from calibrate.model import GPT, GPTConfig, flops_per_token, n_params
from planner.probe_plan import Shape, shape_params
from planner.probe_plan import flops_per_token as plan_flops_per_token

torch.set_num_threads(1)
CFG = GPTConfig(n_layer=2, n_embd=32, n_head=2, vocab_size=257, seq_len=16)


def test_forward_shapes_and_initial_loss():
    torch.manual_seed(0)
    model = GPT(CFG)
    idx = torch.randint(0, CFG.vocab_size, (3, CFG.seq_len))
    assert model(idx).shape == (3, CFG.seq_len, CFG.vocab_size)
    loss = model(idx, torch.randint(0, CFG.vocab_size, (3, CFG.seq_len)))
    assert loss.shape == ()
    assert abs(loss.item() - torch.log(torch.tensor(257.0)).item()) < 1.0  # std-0.02 init: near uniform


@pytest.mark.parametrize("L,d,h,V,T", [(1, 16, 1, 257, 128), (2, 48, 3, 257, 128), (4, 256, 4, 320, 1024)])
def test_param_counts_match_module_and_plan(L, d, h, V, T):
    cfg = GPTConfig(L, d, h, V, T)
    model = GPT(cfg)
    counted = sum(p.numel() for p in model.parameters())  # tied head appears once
    total, non_emb = n_params(cfg)
    assert counted == total
    assert non_emb == total - V * d - T * d
    assert (total, non_emb) == shape_params(Shape(L, d, h), V, T)


def test_reference_sizes():
    # calibration.md §5: 1x32 -> 24.7k total (12.4k non-emb), 2x48 -> 74.0k, 5x128 -> 1.03M
    assert n_params(GPTConfig(1, 32, 2, 257, 128)) == (24_704, 12_384)
    assert n_params(GPTConfig(2, 48, 3, 257, 128))[0] == 74_016
    assert round(n_params(GPTConfig(5, 128, 4, 257, 128))[0], -4) == 1_030_000


def test_flops_per_token_includes_attention():
    N, _ = n_params(CFG)
    assert flops_per_token(CFG) == 6 * N + 12 * CFG.n_layer * CFG.n_embd * CFG.seq_len
    assert flops_per_token(CFG) == plan_flops_per_token(Shape(2, 32, 2), 257, 16)


def test_weight_tying_and_residual_init():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=8, n_embd=64, n_head=2, vocab_size=257, seq_len=16))
    assert model.lm_head.weight is model.wte.weight
    proj = model.blocks[0].attn.c_proj.weight.std().item()
    fc = model.blocks[0].mlp.c_fc.weight.std().item()
    assert abs(fc - 0.02) < 0.003
    assert abs(proj - 0.02 / 4.0) < 0.002  # 1/sqrt(2L) with L = 8
    assert all(not isinstance(m, torch.nn.Linear) or m.bias is None for m in model.modules())


def _train(seed: int, steps: int = 30):
    torch.manual_seed(seed)
    model = GPT(CFG)
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    # a learnable sequence: each token is the previous + 1 (mod 16)
    start = torch.randint(0, 16, (8, 1), generator=g)
    seq = (start + torch.arange(CFG.seq_len + 1)) % 16
    losses = []
    for _ in range(steps):
        loss = model(seq[:, :-1], seq[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_a_few_steps_reduce_loss():
    losses = _train(0)
    assert losses[-1] < 0.5 * losses[0]


def test_seeded_determinism():
    assert _train(1, steps=5) == _train(1, steps=5)
    assert _train(1, steps=5) != _train(2, steps=5)


def test_param_groups_decay_matrices_only():
    model = GPT(CFG)
    decay, no_decay = model.param_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = {id(p) for p in no_decay["params"]}
    assert id(model.wte.weight) in ids and id(model.wpe.weight) in ids
    assert all(p.dim() == 2 for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_cpu_adamw_matches_torch_adamw():
    from calibrate.optim import AdamW

    torch.manual_seed(0)
    a, b = GPT(CFG), GPT(CFG)
    b.load_state_dict(a.state_dict())
    ours = AdamW(a.param_groups(0.1), lr=1e-2, betas=(0.9, 0.95))
    ref = torch.optim.AdamW(b.param_groups(0.1), lr=1e-2, betas=(0.9, 0.95), foreach=False)
    x = torch.randint(0, CFG.vocab_size, (4, CFG.seq_len))
    for _ in range(5):
        for model, opt in ((a, ours), (b, ref)):
            model(x, x.roll(1, 1)).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6, rtol=1e-5)
    snap = ours.state_dict()
    ours.load_state_dict(snap)
    assert ours.state[0]["step"] == 5
