"""calibrate/train.py in-process (single CPU process): schedule, EWA, B_simple, branches, determinism."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from calibrate import probe, train
from planner import probe_plan as pp
from planner.schemas.probe import ProbeSpec

SYN = "synthetic:zipf?vocab=16&order=1&a=1.2&tokens=300000"


def spec(**update) -> ProbeSpec:
    s = pp.Setting(device="cpu", vocab_size=16, seq_len=32, data=SYN, data_vocab_size=None, peak_flops_per_s=1e11,
                   mfu_prior=None, eval_tokens=2048, batch_seqs=8)
    base = pp.ladder_probe(pp.Shape(1, 16, 1), s, ratios=(5.0,), final_ratio=10.0)
    return base.model_copy(update=update)


def run_probe(sp: ProbeSpec, skip=None):
    results = []
    run = train.setup(sp)
    train.train(run, results.append, skip=skip)
    return results


def test_lr_warmup_is_in_samples_and_cooldown_is_one_minus_sqrt():
    sp = spec(lr=1e-2, warmup_samples=80, batch_seqs=8, micro_batch_seqs=8)
    assert train.lr_at(sp, 0) == pytest.approx(1e-2 * 8 / 80)
    assert train.lr_at(sp, 9) == pytest.approx(1e-2)  # 10 steps x 8 sequences = 80 samples
    assert train.lr_at(sp.model_copy(update={"batch_seqs": 16, "micro_batch_seqs": 16}), 4) == pytest.approx(1e-2)
    assert train.lr_at(sp, 100, cooldown=(100, 200)) == pytest.approx(1e-2)
    assert train.lr_at(sp, 175, cooldown=(100, 200)) == pytest.approx(1e-2 * (1 - math.sqrt(0.75)))
    assert train.cooldown_window(sp, 100) == (80, 100)  # the last 20% of the run


def test_ladder_probe_writes_branch_then_main():
    results = run_probe(spec())
    assert [r.id for r in results] == [f"{spec().id}@r5", spec().id]
    branch, main = results
    assert branch.branch_ratio == 5.0 and main.branch_ratio == 10.0
    assert branch.tokens == pytest.approx(5.0 * branch.n_params, rel=0.1)
    assert main.loss < branch.loss < math.log(16) + 0.1
    assert main.mfu and main.mfu_6n < main.mfu  # against the spec's peak; attention term included
    assert main.curve[-1].step == main.steps and main.epochs > 0


def test_branching_does_not_change_the_main_run():
    # a cooldown branch is taken from a snapshot and undone: the main run must come out bit-identical
    with_branch = run_probe(spec())[-1]
    without = run_probe(spec(branch_tokens=[], branch_ratios=[]))[-1]
    assert with_branch.loss == without.loss and with_branch.ewa_loss == without.ewa_loss


def test_seeded_runs_are_deterministic():
    a, b = run_probe(spec())[-1], run_probe(spec())[-1]
    c = run_probe(spec(seed=1))[-1]
    assert [p.loss for p in a.curve] == [p.loss for p in b.curve]
    assert a.loss != c.loss


def test_skip_ids_skip_branches():
    results = run_probe(spec(), skip={f"{spec().id}@r5"})
    assert [r.id for r in results] == [spec().id]


def test_ewa_is_bias_corrected():
    run = train.setup(spec(ewa_decay=0.999))
    train.train_step(run, 1e-2)
    with train.ewa_weights(run):  # after one update the corrected average is the weights themselves
        inside = [p.detach().clone() for p in run.model.parameters()]
    for p, q in zip(run.model.parameters(), inside):
        assert torch.allclose(p, q, atol=1e-6)


def test_b_simple_from_micro_batches_in_one_process():
    run = train.setup(spec(batch_seqs=32, micro_batch_seqs=8))
    assert run.accum == 4
    for _ in range(5):
        train.train_step(run, 1e-2)
    assert train.b_simple(run) is not None and train.b_simple(run) > 0


def test_mccandlish_estimator_algebra():
    run = train.setup(spec(batch_seqs=32, micro_batch_seqs=8))
    b_small, b_big = 8 * 32, 32 * 32
    G2, S = 2.0, 3000.0  # true |G|^2 and tr(Σ): E|g_B|^2 = |G|^2 + tr(Σ)/B
    small, big = torch.tensor(G2 + S / b_small), torch.tensor(G2 + S / b_big)
    for _ in range(50):
        train.update_gns(run, small, big)
    assert train.b_simple(run) == pytest.approx(S / G2, rel=1e-4)


def test_nan_loss_fails_the_probe(tmp_path):
    sp = spec(debug_nan_at_step=2, log_every_steps=1)
    with pytest.raises(train.ProbeFailed, match="non-finite"):
        run_probe(sp)
    out, spec_file = tmp_path / "runs.jsonl", tmp_path / "spec.json"
    spec_file.write_text(sp.model_dump_json())
    assert probe.main(["--spec", str(spec_file), "--out", str(out)]) == 1
    assert probe.recorded_ids(out) == set()  # failed lines are not "done" for a retry
    assert len(out.read_text().splitlines()) == 2


def test_append_line_is_one_line_per_call(tmp_path):
    out = tmp_path / "x.jsonl"
    probe.append_line(out, '{"id": "a", "status": "ok"}')
    probe.append_line(out, '{"id": "b", "status": "failed"}\n')
    out.write_text(out.read_text() + '{"id": "torn')  # a writer killed mid-line
    probe.append_line(out, '{"id": "c", "status": "ok"}')  # starts on a fresh line
    assert out.read_text().count("\n") == 4
    assert probe.recorded_ids(out) == {"a", "c"}
