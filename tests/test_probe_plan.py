"""planner/probe_plan.py: the pure probe plan (no torch)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from planner import probe_plan as pp
from planner.errors import InfeasibleError, UsageError
from planner.schemas.probe import ProbePlan, ProbeSpec

H100 = 989.4e12


def ladder(plan: ProbePlan):
    return [p for p in plan.probes if p.spec.kind == "ladder"]


def cbs(plan: ProbePlan):
    return sorted((p for p in plan.probes if p.spec.kind == "cbs"), key=lambda p: p.spec.batch_seqs)


@pytest.mark.parametrize("n_gpus,budget", [(1, 1.0), (8, 1.0), (8, 8.0), (2, 0.5), (8, 64.0)])
def test_budget_plans_span_sizes_and_respect_budget(n_gpus, budget):
    plan = pp.plan_budget(n_gpus, budget, H100, 0.40)
    sizes = sorted(p.n_params for p in ladder(plan))
    assert 5 <= len(sizes) <= 6
    assert sizes[-1] / sizes[0] >= pp.MIN_SPAN and plan.span == pytest.approx(sizes[-1] / sizes[0])
    assert plan.total_device_hours <= budget * (1 + 1e-6)
    assert plan.total_device_hours >= 0.8 * budget  # the budget is used, not wasted
    assert plan.wall_clock_s <= plan.total_device_hours * 3600 / 1 + 1
    assert plan.wall_clock_s >= plan.total_device_hours * 3600 / n_gpus - 1  # cannot beat perfect packing
    assert plan.total_flops == pytest.approx(sum(p.flops for p in plan.probes))


def test_one_gpu_hour_plan_matches_the_reference_scale():
    plan = pp.plan_gpu(1)
    sizes = sorted(p.n_params_non_embedding for p in ladder(plan))
    assert 1e6 < sizes[0] < 4e6 and 2e7 < sizes[-1] < 6e7  # calibration.md §3.5: 3-49M
    assert 0.9 < plan.total_device_hours <= 1.0


def test_bigger_budgets_buy_bigger_ladders():
    tops = [max(p.n_params for p in ladder(pp.plan_budget(8, b, H100, 0.4))) for b in (1, 8, 64)]
    assert tops == sorted(tops) and tops[-1] > 3 * tops[0]


def test_ladder_branches_and_olmo_rules():
    plan = pp.plan_gpu(8)
    for p in ladder(plan):
        sp = p.spec
        assert sp.branch_ratios == [5.0, 10.0, 20.0] and sp.final_ratio == 40.0
        assert sp.total_tokens == pytest.approx(40.0 * p.n_params)
        assert sp.branch_tokens == pytest.approx([r * p.n_params for r in sp.branch_ratios])
        assert p.tokens_processed == pytest.approx(47.0 * p.n_params)  # 40N + 0.2·(5+10+20)N
        assert sp.lr == pytest.approx(min(pp.LR_MAX, 0.0047 * (p.n_params_non_embedding / 108e6) ** (-1 / 3) / 2))
        assert sp.lr <= pp.LR_MAX
        assert sp.warmup_samples == round(p.n_params_non_embedding / sp.seq_len)  # warmup = N tokens
        assert sp.batch_seqs & (sp.batch_seqs - 1) == 0  # a power of two
        rule = 160 * (p.n_params_non_embedding / 108e6) ** (2 / 3) * 2048 / sp.seq_len
        assert rule / 1.5 <= sp.batch_seqs <= rule * 1.5
        assert sp.beta2 == (0.99 if sp.tokens_per_step < 524_288 else 0.95)
        assert sp.device == "cuda" and sp.dtype == "bf16" and sp.compile and sp.peak_flops_per_s == H100
        assert sp.vocab_size % 64 == 0  # padded for the GPU


def test_lr_rule_is_clamped_at_tiny_sizes():
    assert pp.olmo_lr(25e3) == pp.LR_MAX  # the rule would say 0.077/2
    assert pp.olmo_lr(108e6, wsd=False) == pytest.approx(0.0047)


def test_cbs_sweep_scaling_rules():
    plan = pp.plan_budget(8, 8.0, H100, 0.4)
    runs = cbs(plan)
    assert 5 <= len(runs) <= 7
    assert len({(p.spec.n_layer, p.spec.n_embd) for p in runs}) == 1  # one model
    b = [p.spec.tokens_per_step for p in runs]
    assert b[0] == 16_384 and b[-1] == 2**20  # 16k-1M tokens (calibration.md §0)
    ref = runs[0].spec
    for p in runs:
        sp = p.spec
        k = sp.batch_seqs / ref.batch_seqs
        assert sp.lr == pytest.approx(ref.lr * math.sqrt(k))  # Adam square-root rule
        if 0.9 < sp.beta2 < 0.9995 and 0.9 < ref.beta2 < 0.9995:  # horizon in samples fixed (unclamped)
            assert sp.batch_seqs / (1 - sp.beta2) == pytest.approx(ref.batch_seqs / (1 - ref.beta2))
        if 0.9 < sp.ewa_decay < 0.99995:
            assert sp.batch_seqs / (1 - sp.ewa_decay) == pytest.approx(0.1 * sp.total_tokens / sp.seq_len)
        assert sp.warmup_samples == ref.warmup_samples  # warmup fixed in samples
        assert sp.total_tokens == ref.total_tokens and not sp.branch_tokens
        assert sp.targets and sp.eval_every_steps <= max(1, round(sp.total_tokens / sp.tokens_per_step) // 50)
    assert runs[-1].spec.beta2 < runs[0].spec.beta2 and runs[-1].spec.ewa_decay < runs[0].spec.ewa_decay
    n = runs[0].n_params
    assert pp.CBS_MIN_RATIO * n <= runs[0].spec.total_tokens <= pp.CBS_MAX_RATIO * n * 1.01


def test_packing_longest_first_and_ddp_for_the_largest():
    plan = pp.plan_budget(8, 8.0, H100, 0.4)
    biggest = max(plan.probes, key=lambda p: p.flops)
    assert biggest.spec.n_procs > 1 and biggest.start_s == 0.0
    assert biggest.spec.batch_seqs % (biggest.spec.micro_batch_seqs * biggest.spec.n_procs) == 0
    smallest = min(ladder(plan), key=lambda p: p.flops)
    assert smallest.spec.n_procs == 1
    for p in plan.probes:  # no device runs two probes at once
        for q in plan.probes:
            if p is not q and set(p.slot) & set(q.slot):
                assert p.start_s + p.est_wall_s <= q.start_s + 1e-6 or q.start_s + q.est_wall_s <= p.start_s + 1e-6
    assert plan.wall_clock_s == pytest.approx(max(p.start_s + p.est_wall_s for p in plan.probes))
    one = pp.plan_budget(1, 8.0, H100, 0.4)
    assert all(p.spec.n_procs == 1 for p in one.probes)
    assert one.wall_clock_s == pytest.approx(sum(p.est_wall_s for p in one.probes))


def test_pack_is_lpt():
    plan = pp.plan_smoke(2)
    placed, span = pp.pack([p.model_copy(update={"spec": pp.with_ddp(p.spec, 1)}) for p in plan.probes], 2)
    assert span >= sum(p.est_wall_s for p in placed) / 2


def test_smoke_preset():
    plan = pp.plan_smoke(2)
    lad = ladder(plan)
    assert plan.device == "cpu" and all(p.spec.device == "cpu" and p.spec.dtype == "fp32" for p in plan.probes)
    assert max(p.n_params for p in lad) <= 75_000 and len(lad) >= 4
    assert all(p.spec.seq_len == 128 and (p.spec.final_ratio or 0) <= 20 for p in lad)
    assert any(p.spec.n_procs == 2 for p in lad)  # a gloo DDP probe
    assert len(cbs(plan)) >= 4
    assert plan.wall_clock_s < 120  # about a minute on 2 cores
    single = pp.plan_smoke(1)
    assert all(p.spec.n_procs == 1 for p in single.probes)


def test_make_plan_dispatch_and_errors():
    assert pp.make_plan("smoke", n_devices=2).preset == "smoke"
    assert pp.make_plan("gpu", n_devices=1, peak_flops_per_s=H100, mfu_prior=0.4).preset == "gpu"
    assert pp.make_plan("budget", n_devices=4, budget_gpu_hours=2, peak_flops_per_s=H100, mfu_prior=0.4)
    with pytest.raises(UsageError):
        pp.make_plan("gpu", n_devices=1)
    with pytest.raises(UsageError):
        pp.make_plan("budget", n_devices=1, peak_flops_per_s=H100, mfu_prior=0.4)
    with pytest.raises(UsageError):
        pp.make_plan("huge", n_devices=1, peak_flops_per_s=H100, mfu_prior=0.4)
    with pytest.raises(InfeasibleError):
        pp.plan_budget(1, 0.01, H100, 0.4)


def test_specs_roundtrip_json():
    for p in pp.plan_gpu(8).probes:
        assert ProbeSpec.model_validate_json(p.spec.model_dump_json()) == p.spec
    plan = pp.plan_smoke()
    assert ProbePlan.model_validate_json(plan.model_dump_json()) == plan


def test_spec_validation():
    sp = pp.plan_smoke().probes[0].spec
    with pytest.raises(ValueError, match="multiple of micro_batch_seqs"):
        ProbeSpec.model_validate({**sp.model_dump(), "batch_seqs": 33})
    with pytest.raises(ValueError, match="divisible by n_head"):
        ProbeSpec.model_validate({**sp.model_dump(), "n_head": 7})
    with pytest.raises(ValueError, match="Extra inputs"):
        ProbeSpec.model_validate({**sp.model_dump(), "typo": 1})


def test_mfu_curve():
    assert pp.mfu_at(3.48e6, 0.40) == pytest.approx(0.272)
    assert pp.mfu_at(500e6, 0.40) == pytest.approx(0.40)
    assert pp.mfu_at(11e6, 0.30) < 0.30


def test_plan_module_does_not_import_torch():
    code = "import planner.probe_plan, planner.calibrate_run, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("n_gpus,budget", [(8, 1.0), (8, 8.0), (8, 64.0)])
def test_cbs_sweep_reaches_1m_token_batches_where_the_budget_allows(n_gpus, budget):
    plan = pp.plan_budget(n_gpus, budget, H100, 0.4)
    runs = cbs(plan)
    assert [p.spec.tokens_per_step for p in runs] == [2**k for k in range(14, 21)]
    top = runs[-1].spec
    assert top.total_tokens / top.tokens_per_step >= pp.CBS_MIN_STEPS
    assert not any("CBS sweep stops" in n for n in plan.notes)


def test_a_short_cbs_sweep_says_why_it_stops_below_1m():
    plan = pp.plan_budget(8, 0.5, H100, 0.4)
    top = cbs(plan)[-1].spec
    assert 2**18 <= top.tokens_per_step < 2**20
    (note,) = [n for n in plan.notes if "CBS sweep stops" in n]
    assert f"stops at {top.tokens_per_step // 1024}k-token batches" in note and "steps" in note
    enough = float(note.split("--budget-gpu-hours ")[1].split()[0])  # the budget the note names is true
    assert cbs(pp.plan_budget(8, enough, H100, 0.4))[-1].spec.tokens_per_step == 2**20


@pytest.mark.parametrize("n_gpus", [1, 8])
def test_budget_plans_stay_within_budget_and_the_sweep_grows_with_it(n_gpus):
    """Audit: on 8 GPUs busy GPU-h were 4.49 for a budget of 4, 16.09 for 16, 101.2 for 100 (DDP overhead), and
    at 100 the CBS sweep fell to a 3.49M model at 16k-256k while 50 got 25.9M at 16k-1M."""
    last = (0, 0, 0)
    for budget in (0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 32.0, 50.0, 100.0, 200.0):
        plan = pp.plan_budget(n_gpus, budget, H100, 0.40)
        assert plan.total_device_hours <= budget * (1 + 1e-9), budget
        assert not [w for w in plan.warnings if "above the" in w and "GPU-hour budget" in w and "needs" in w]
        runs = cbs(plan)
        sweep = (runs[0].n_params, len(runs), runs[-1].spec.tokens_per_step)
        assert runs[0].spec.tokens_per_step == 2**14 and len({p.n_params for p in runs}) == 1
        assert all(a >= b for a, b in zip(sweep, last)), (budget, sweep, last)  # never smaller nor narrower
        last = sweep
        if sweep[2] == 2**20:
            assert not any("CBS sweep stops" in n for n in plan.notes)
    assert last[0] > 20e6 and last[2] == 2**20  # a large budget buys the 25M model at 16k-1M


def test_cbs_gets_a_fixed_share_not_what_the_ladder_leaves():
    for budget in (1.0, 4.0, 8.0):
        plan = pp.plan_budget(8, budget, H100, 0.40)
        sweep = sum(p.device_hours for p in cbs(plan))
        full = pp.cost_hours(pp.cbs_sweep(plan_setting(), 1e9), plan_setting())  # the largest sweep, D/N 100
        assert sweep >= min(pp.CBS_SHARE * budget, full) * (1 - 1e-6), budget


def plan_setting():
    return pp.Setting(device="cuda", vocab_size=320, seq_len=1024, data="stdlib", data_vocab_size=None,
                      peak_flops_per_s=H100, mfu_prior=0.4, eval_tokens=262_144, dtype="bf16", compile=True)


def test_over_budget_warning_names_nodes_only_on_several():
    plan = pp.plan_budget(8, 4.0, H100, 0.40)
    over = plan.model_copy(update={"total_device_hours": 4.5, "allocated_device_hours": 9.0})
    w = pp.allocation_warning(over)
    assert "above the 4 GPU-hour budget" in w and "node" not in w and "fewer nodes" not in w
    two = over.model_copy(update={"nnodes": 2})
    assert "on 2 nodes every probe spans all 16 GPUs" in pp.allocation_warning(two)


def test_planning_time_does_not_grow_with_the_gpu_count():
    import time

    t0 = time.perf_counter()
    pp.plan_budget(8, 8.0, H100, 0.40)
    small = time.perf_counter() - t0
    t0 = time.perf_counter()
    huge = pp.plan_budget(65536, 8.0, H100, 0.40)
    assert time.perf_counter() - t0 < 10 * small + 1.0
    assert huge.total_device_hours <= 8.0 * (1 + 1e-9)


def test_multi_node_plan_runs_every_probe_over_all_ranks():
    """The plan is what the launcher runs: with nnodes > 1 every probe is DDP over nnodes x GPUs, in turn."""
    one = pp.make_plan("gpu", n_devices=8, peak_flops_per_s=H100, mfu_prior=0.4)
    two = pp.make_plan("gpu", n_devices=8, peak_flops_per_s=H100, mfu_prior=0.4, nnodes=2)
    assert two.nnodes == 2 and two.n_devices == 8 and one.nnodes == 1
    assert {p.spec.n_procs for p in two.probes} == {16}
    assert all(p.slot == list(range(16)) for p in two.probes)  # one probe at a time across every node
    assert two.wall_clock_s == pytest.approx(sum(p.est_wall_s for p in two.probes))
    for p in two.probes:
        assert p.spec.batch_seqs % (p.spec.micro_batch_seqs * 16) == 0
    assert two.total_device_hours > one.total_device_hours  # start-up and all-reduce on 16 GPUs per probe
    smoke = pp.make_plan("smoke", n_devices=2, nnodes=2)
    assert {p.spec.n_procs for p in smoke.probes} == {4}


def test_multi_node_layout_the_launcher_would_refuse_is_refused_at_plan_time():
    with pytest.raises(UsageError, match="batch of 4 sequences does not split over 8") as err:
        pp.make_plan("smoke", n_devices=4, nnodes=2)
    assert "divides 4" in err.value.hint
