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


def _line(rid: str, status: str = "ok") -> str:
    from planner.calibrate_run import _failed

    return _failed(spec(), rid, "x", 1.0).model_copy(update={"id": rid, "status": status}).model_dump_json()


def test_append_line_is_one_line_per_call_and_trims_a_torn_last_line(tmp_path):
    out = tmp_path / "x.jsonl"
    probe.append_line(out, _line("a"))
    probe.append_line(out, _line("b", "failed") + "\n")
    out.write_text(out.read_text() + _line("torn")[:40])  # a writer killed mid-line
    assert probe.recorded_ids(out) == {"a"}  # a cut-short last line is absent, not an error
    probe.append_line(out, _line("c"))  # the torn fragment is trimmed, not left in the middle
    assert out.read_text().count("\n") == 3 and "torn" not in out.read_text()
    assert probe.recorded_ids(out) == {"a", "c"}
    out.write_text(out.read_text().rstrip("\n"))  # a complete last line without its newline is kept
    probe.append_line(out, _line("d"))
    assert probe.recorded_ids(out) == {"a", "c", "d"}


def test_probe_and_planner_read_corrupt_lines_alike(tmp_path):
    """Audit: a valid-JSON line failing the schema was ignored by the planner but counted as done by the probe
    (plain json.loads), which then trained, wrote nothing, and got a false `failed` line; a torn middle line was
    skipped silently. Both are now errors naming file:line, for both readers."""
    from planner.calibrate_run import read_results
    from planner.errors import ConfigError

    for bad in ('{"id": "ladder-L1-d16", "status": "ok"}', _line("e")[:50]):
        out = tmp_path / "runs.jsonl"
        out.write_text(_line("a") + "\n" + bad + "\n" + _line("b") + "\n")
        with pytest.raises(ConfigError, match=f"{out}:2: not a probe result line"):
            read_results(out)
        with pytest.raises(ConfigError, match=f"{out}:2"):
            probe.recorded_ids(out)


# ----------------------------------------------------------------------------- review fixes


def test_select_attention_sets_every_backend_on_each_call():
    """The SDPA flags are process-wide: a forced kernel must not outlive its probe ("auto" restores all)."""
    b = torch.backends.cuda

    def flags():
        return b.flash_sdp_enabled(), b.cudnn_sdp_enabled(), b.mem_efficient_sdp_enabled(), b.math_sdp_enabled()

    try:
        train.select_attention("cudnn")
        assert flags() == (False, True, False, False)
        train.select_attention("flash")
        assert flags() == (True, False, False, False)
        train.select_attention("auto")
        assert flags() == (True, True, True, True)
        train.select_attention("efficient")
        assert flags() == (False, False, True, False)
        train.select_attention("math")
        assert flags() == (False, False, False, True)
    finally:
        train.select_attention("auto")
    assert flags() == (True, True, True, True)


@pytest.mark.parametrize("attention", ["flash", "cudnn"])
def test_half_precision_only_kernels_are_refused_in_fp32(attention):
    with pytest.raises(ValueError, match="needs dtype bf16"):
        train.setup(spec(attention=attention))  # fp32: no flash/cudnn kernel, and no math fallback
    train.check_spec(spec(attention=attention, dtype="bf16"))
    train.check_spec(spec(attention="efficient"))


def cbs_spec(**update) -> ProbeSpec:
    s = pp.Setting(device="cpu", vocab_size=16, seq_len=32, data=SYN, data_vocab_size=None, peak_flops_per_s=1e11,
                   mfu_prior=None, eval_tokens=1024)
    (base,) = pp.cbs_probes(pp.Shape(1, 16, 1), s, [256], 256 * 20, [2.5, 2.0])  # 8 seqs x 32, 20 steps
    return base.model_copy(update={"eval_every_steps": 3, "log_every_steps": 5, **update})


def test_cbs_probe_evaluates_raw_weights_only_at_the_end():
    (r,) = run_probe(cbs_spec())
    assert [p.step for p in r.curve] == [0, 3, 6, 9, 12, 15, 18, 20]
    assert all(p.ewa_loss is not None for p in r.curve)  # steps-to-target reads these
    assert all(p.loss is None for p in r.curve[:-1]) and r.curve[-1].loss is not None
    assert r.loss == r.curve[-1].loss and r.ewa_loss == r.curve[-1].ewa_loss
    (r,) = run_probe(cbs_spec(eval_every_steps=4))  # the last in-loop eval falls on the final step
    assert [p.step for p in r.curve][-2:] == [16, 20] and r.curve[-1].loss is not None
    ladder = run_probe(spec())
    assert all(p.loss is not None for r in ladder for p in r.curve)  # the ladder plots its raw curve


def test_timed_windows_end_and_start_synchronised(monkeypatch):
    """On CUDA the host clock times queued GPU work: the trainer syncs where a timed window closes off
    a log step (before each eval, after the last untimed step) and where one opens (each advance call).
    The log steps sync by reading the loss."""
    synced = []
    monkeypatch.setattr(train, "sync_device", lambda run: synced.append(run.step))
    run_probe(cbs_spec())
    # advance() starts at 0; untimed steps end at 3 (also an eval); evals at 6, 9, 12, 18 (15 and 20 log)
    assert synced == [0, 3, 6, 9, 12, 18]


def test_gns_needs_two_batch_sizes():
    """b_big == b_small (DDP at world size 1, or one micro-batch): no division by zero, B_simple None."""
    run = train.setup(spec(batch_seqs=8, micro_batch_seqs=8))
    run.tap = object()  # as under DDP: B_small is the per-rank batch, here the whole batch
    train.update_gns(run, torch.tensor(3.0), torch.tensor(2.0))
    assert run.gns is None and train.b_simple(run) is None


def test_forced_ddp_in_one_process_matches_the_plain_run(monkeypatch):
    """CALIBRATE_FORCE_DDP=1 (test-only) wraps DDP at world size 1 (here gloo on a private FileStore):
    no_sync micro-batches, the norm hook and bucket-view gradients give the plain run's numbers."""
    from calibrate import dist

    sp = spec(batch_seqs=16, micro_batch_seqs=8)  # 2 micro-batches: no_sync on the first
    plain = run_probe(sp)
    monkeypatch.setenv(dist.FORCE_DDP_ENV, "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    try:
        run = train.setup(sp)
        assert run.ddp is not None and run.tap is not None and run.info.world_size == 1
        forced = []
        train.train(run, forced.append)
    finally:
        dist.cleanup()
    assert [r.id for r in forced] == [r.id for r in plain]
    for a, b in zip(plain, forced):
        assert [p.loss for p in b.curve] == pytest.approx([p.loss for p in a.curve], rel=1e-5)
        assert b.b_simple is None and a.b_simple is not None  # one batch size under DDP: undefined
