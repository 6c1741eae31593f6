"""End-to-end CPU probes through the real launcher (slow: about 3 minutes on 2 cores).

Covers: `planner calibrate --preset smoke --out DIR` end to end, Ctrl-C'd once and resumed (ladder +
CBS sweep, a 2-process gloo DDP probe that logs B_simple, progress lines, exit 130 then a resume that
loses or repeats nothing, every file of DIR valid, the law and batch law accepted by `planner
recommend`, a rerun that redoes nothing), resume of the launcher after Ctrl-C (nothing finished lost or
repeated), a diverged probe recorded as failed while the others go on (and "too few probes" when
that leaves too little to fit), a child that dies without reporting, and recovery of a known
entropy floor on the synthetic source.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from planner import calibrate_results as cres
from planner import calibrate_run as cr
from planner import probe_plan as pp
from planner.errors import ProbeError
from tests.conftest import processes_mentioning

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def tiny_specs(data="stdlib", vocab=257, shapes=((1, 16, 1), (1, 24, 1), (1, 32, 2)), ratios=(5.0,), final=10.0,
               **extra):
    s = pp.Setting(device="cpu", vocab_size=vocab, seq_len=64, data=data, data_vocab_size=None,
                   peak_flops_per_s=None, mfu_prior=None, eval_tokens=4096, batch_seqs=16)
    specs = [pp.ladder_probe(pp.Shape(*sh), s, ratios=ratios, final_ratio=final) for sh in shapes]
    return [sp.model_copy(update=extra) for sp in specs]


def lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in out.read_text().splitlines() if x.strip()]


# ----------------------------------------------------------------------------- the smoke calibration
# One real `planner calibrate --preset smoke` in a subprocess (as a user runs it), shared by the tests.

SMOKE_ARGV = ["calibrate", "--device", "cpu", "--preset", "smoke", "--bootstrap", "200", "--json"]


def run_cli(out: Path) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "planner", *SMOKE_ARGV, "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=600)
    return proc, time.time() - t0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Start the smoke calibration, Ctrl-C it once a probe is complete, then rerun it to the end."""
    out = tmp_path_factory.mktemp("smoke") / "calibration"
    plan = pp.plan_smoke(n_cores=2)
    t0 = time.time()
    first = subprocess.Popen([sys.executable, "-m", "planner", *SMOKE_ARGV, "--out", str(out)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = wait_for_a_complete_probe(out / "runs.jsonl", plan, timeout_s=180)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    killed = {"code": first.returncode, "stderr": err, "lines": lines(out / "runs.jsonl"), "complete": done}
    proc, _ = run_cli(out)
    print(f"smoke calibration, killed once and resumed: {time.time() - t0:.1f} s wall")
    assert proc.returncode == 0, proc.stderr
    return plan, cr.read_results(out / "runs.jsonl"), out, proc, killed


def wait_for_a_complete_probe(runs: Path, plan, timeout_s: float) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        ids = {r.id for r in cr.read_results(runs)}  # skips a line still being written
        for spec in plan.specs():
            if set(spec.result_ids()) <= ids:
                return spec.id
        time.sleep(0.1)
    raise AssertionError("no probe finished in time")


def test_smoke_killed_run_resumes_and_loses_or_repeats_nothing(smoke):
    plan, _, out, proc, killed = smoke
    assert killed["code"] == 130 and "error: interrupted" in killed["stderr"], killed["stderr"]
    assert killed["complete"] not in json.loads(proc.stdout)["ran"]  # finished before Ctrl-C: not redone
    final = lines(out / "runs.jsonl")
    assert final[: len(killed["lines"])] == killed["lines"]  # nothing finished was rewritten or lost
    ids = [r["id"] for r in final]
    assert sorted(ids) == sorted({rid for sp in plan.specs() for rid in sp.result_ids()})  # each exactly once
    assert not processes_mentioning(str(out / "work")), "children were left running"


def test_smoke_runs_every_probe(smoke):
    plan, results, out, *_ = smoke
    ids = {rid for sp in plan.specs() for rid in sp.result_ids()}
    assert {r.id for r in results} == ids
    assert all(r.status == "ok" for r in results), [r.reason for r in results if r.status == "failed"]
    assert len(lines(out / "runs.jsonl")) == len(ids)  # one line per run or branch, none repeated
    for r in results:
        assert 0.5 < r.loss < math.log(257) and r.tokens_per_s > 0 and r.wall_s > 0
        assert r.data == "stdlib" and r.data_unit == "bytes" and any("nats per byte" in w for w in r.warnings)


def test_smoke_ladder_losses_fall_with_tokens_and_size(smoke):
    _, results, *_ = smoke
    ladder = [r for r in results if r.kind == "ladder"]
    for pid in {r.probe_id for r in ladder}:
        runs = sorted((r for r in ladder if r.probe_id == pid), key=lambda r: r.tokens)
        assert [r.branch_ratio for r in runs] == [5.0, 10.0, 20.0]
        assert all(a.loss > b.loss for a, b in itertools.pairwise(runs))  # more data, lower loss
        assert all(r.stable_loss is not None and r.loss < r.stable_loss + 0.02 for r in runs)  # cooldown helps
        assert all(r.tokens == pytest.approx(r.branch_ratio * r.n_params, rel=0.05) for r in runs)
    final = sorted((r for r in ladder if r.branch_ratio == 20.0), key=lambda r: r.n_params)
    assert final[-1].loss < final[0].loss  # bigger model, lower loss


def test_smoke_ddp_probe_logs_b_simple(smoke):
    _, results, _, proc, killed = smoke
    ddp = [r for r in results if r.n_procs == 2]
    assert ddp, "the smoke plan has a 2-process gloo probe"
    assert all(r.b_simple is not None and r.b_simple > 0 for r in ddp)
    assert all(r.b_simple is None for r in results if r.n_procs == 1 and r.kind == "ladder")
    progress = killed["stderr"] + proc.stderr
    assert re.search(r"running\s+ladder-L1-d32\s+cpu0-1", progress)  # progress lines: it held both cores


def test_smoke_cbs_sweep_records_steps_to_target(smoke):
    _, results, *_ = smoke
    runs = sorted((r for r in results if r.kind == "cbs"), key=lambda r: r.batch_tokens)
    assert len(runs) >= 4 and all(len(r.curve) > 10 for r in runs)
    assert all(any(v is not None for v in r.steps_to_target.values()) for r in runs)
    table = cr.cbs_table(results)
    assert table
    target = max(row["target"] for row in table if sum(r["target"] == row["target"] for r in table) == len(runs))
    steps = [row["steps"] for row in table if row["target"] == target]
    assert steps[0] > steps[-1]  # 16x the batch reaches the target in fewer steps
    tokens = [row["tokens"] for row in table if row["target"] == target]
    assert tokens[0] < tokens[-1]  # ... but with more tokens (the trade-off CBS measures)


def test_smoke_writes_the_results_directory(smoke, cli):
    _, results, out, proc, _ = smoke
    summary = json.loads(proc.stdout)
    for name in ("runs.jsonl", "ladder.csv", "curves.csv", "cbs.csv", "mfu.csv", "law.yaml", "batch.yaml",
                 "report.md", "loss.png", "cbs.png"):
        assert (out / name).stat().st_size > 0, name
    assert summary["n_ok"] == len(results) and summary["loss_law"]["n_runs"] == 12
    assert cli("profiles", "validate", str(out / "law.yaml"), str(out / "batch.yaml")).code == 0
    report = (out / "report.md").read_text()
    assert "besiroglu-2024" in report and "nats per byte" in report and "NOT comparable" in report
    mfu = (out / "mfu.csv").read_text().splitlines()
    assert len(mfu) == 1 + 8 and all(float(row.split(",")[9]) > 0 for row in mfu[1:])  # tokens/s per probe
    assert len((out / "ladder.csv").read_text().splitlines()) == 1 + 12


def test_smoke_law_feeds_recommend(smoke, cli):
    _, _, out, *_ = smoke
    rec = cli("recommend", "--law", str(out / "law.yaml"), "--batch-law", str(out / "batch.yaml"),
              "--params", "50k", "--json")
    assert rec.code == 0, rec.stderr
    assert rec.json["n_params"] == pytest.approx(5e4) and rec.json["law"]["path"] == str(out / "law.yaml")


def test_smoke_rerun_is_a_noop(smoke):
    plan, _, out, *_ = smoke
    before = (out / "runs.jsonl").read_text()
    proc, _ = run_cli(out)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["ran"] == [] and len(again["skipped_probes"]) == len(plan.probes)
    assert (out / "runs.jsonl").read_text() == before


# ----------------------------------------------------------------------------- failure and resume


def test_diverged_probe_is_recorded_and_the_rest_go_on(tmp_path):
    good, bad = tiny_specs(shapes=((1, 16, 1), (1, 24, 1)))
    bad = bad.model_copy(update={"id": "diverges", "debug_nan_at_step": 3})
    out = tmp_path / "runs.jsonl"
    outcome = cr.run_calibration([good, bad], out, n_devices=2)
    by_id = {r.id: r for r in outcome.results}
    assert by_id[good.id].status == "ok" and by_id[good.id + "@r5"].status == "ok"
    assert by_id["diverges"].status == "failed" and "non-finite" in by_id["diverges"].reason
    assert by_id["diverges@r5"].status == "failed"
    assert cr.ladder_points(outcome.results)[0] == [by_id[good.id + "@r5"].n_params] * 2  # fit input: ok only
    rerun = cr.run_calibration([good, bad], out, n_devices=2)  # a failure is a result: not retried
    assert rerun.ran == []
    written = cres.write_results(tmp_path, outcome.results, date="2026-01-01", n_bootstrap=0)
    error = cres.verdict(written)  # 2 points of 1 size cannot be fitted: exit 6, and it says so
    assert isinstance(error, ProbeError) and error.exit_status == 6
    assert error.message.startswith("too few probes finished to fit: 2 of 4 ladder points (1 of 2 sizes)")
    assert not (tmp_path / "law.yaml").exists() and "non-finite" in (tmp_path / "report.md").read_text()


def test_child_that_dies_without_reporting_is_recorded(tmp_path):
    (spec,) = tiny_specs(shapes=((1, 8, 1),))
    out = tmp_path / "runs.jsonl"
    broken = cr.LaunchOptions(python="/bin/false")
    outcome = cr.run_calibration([spec], out, n_devices=1, options=broken)
    assert {r.status for r in outcome.results} == {"failed"}
    assert "exited with code 1" in outcome.results[0].reason
    retry = cr.run_calibration([spec], out, n_devices=1, options=cr.LaunchOptions(retry_failed=True))
    assert {r.status for r in retry.results} == {"ok"} and retry.ran == [spec.id]


RESUME_DRIVER = """
import sys
from planner import calibrate_run as cr
from planner.schemas.probe import ProbeSpec
specs = [ProbeSpec.model_validate_json(line) for line in open(sys.argv[1])]
cr.run_calibration(specs, sys.argv[2], n_devices=1, options=cr.LaunchOptions(poll_s=0.2))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_then_resume_loses_and_repeats_nothing(tmp_path, sig):
    """Ctrl-C, and SIGTERM (a SLURM time limit or preemption), stop the children and keep every finished line."""
    specs = tiny_specs(shapes=((1, 8, 1), (1, 24, 1), (1, 16, 1)), ratios=(5.0,), final=10.0)
    spec_file = tmp_path / "specs.jsonl"
    spec_file.write_text("\n".join(s.model_dump_json() for s in specs))
    out = tmp_path / "runs.jsonl"
    parent = subprocess.Popen([sys.executable, "-c", RESUME_DRIVER, str(spec_file), str(out)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not (out.exists() and any(r["id"] == specs[1].id for r in lines(out))):
        time.sleep(0.1)  # the biggest probe runs first (longest first); wait until it is complete
    parent.send_signal(sig)  # Ctrl-C, or SIGTERM
    _, err = parent.communicate(timeout=30)
    assert parent.returncode != 0 and ("KeyboardInterrupt" if sig == signal.SIGINT else "Terminated: SIGTERM") in err
    first = lines(out)
    assert {r["id"] for r in first} >= set(specs[1].result_ids())
    work = out.with_name("runs.calibrate")
    assert not processes_mentioning(str(work)), "children were left running"
    outcome = cr.run_calibration(specs, out, n_devices=1)
    assert specs[1].id not in outcome.ran
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == sorted({rid for s in specs for rid in s.result_ids()})  # all there, exactly once
    assert lines(out)[: len(first)] == first  # nothing finished was rewritten
    assert outcome.n_failed == 0


# ----------------------------------------------------------------------------- known-entropy recovery

SYNTHETIC = "synthetic:zipf?vocab=16&order=1&a=1.2&tokens=2000000"
FLOOR_TOL = 0.15  # nats: the fitted E may undershoot the true floor by at most this much (7% of H)


def test_synthetic_source_recovers_its_entropy_floor(tmp_path):
    fit = pytest.importorskip("planner.laws.fit")
    from calibrate.data import load

    H = load(SYNTHETIC).entropy_nats  # 2.172 nats: the exact entropy rate
    specs = tiny_specs(data=SYNTHETIC, vocab=16, shapes=((1, 8, 1), (1, 16, 1), (1, 32, 2)),
                       ratios=(5.0, 10.0, 20.0), final=40.0, eval_tokens=32768)
    outcome = cr.run_calibration(specs, tmp_path / "runs.jsonl", n_devices=2)
    assert outcome.n_failed == 0
    N, D, L = (np.asarray(c, dtype=float) for c in cr.ladder_points(outcome.results))
    assert len(L) == 12
    assert L.min() > H - 0.03  # no probe beats the entropy (eval noise ~0.01 nats at 32k tokens)
    assert L.min() < H + 0.1  # the largest probe gets close to it
    E = fit.fit_loss_law(N, D, L).E
    assert H - FLOOR_TOL <= E <= L.min() + 0.01, (E, H)


# ----------------------------------------------------------------------------- the GPU recipe, on CPU


def test_gpu_recipe_runs_on_cpu_under_ddp(tmp_path):
    """torch.compile + bf16 autocast + torch's fused AdamW + DDP (no_sync micro-batches, the norm hook)
    over 2 gloo ranks: the code path of an H100 probe, less the CUDA kernels, so a GPU session starts
    from a path that has run. Compiled and eager runs agree on the data and the first losses."""
    (eager,) = tiny_specs(data=SYN_SMALL, vocab=16, shapes=((1, 16, 1),), ratios=(5.0,), final=10.0,
                          dtype="bf16", log_every_steps=1)
    eager = pp.with_ddp(eager.model_copy(update={"micro_batch_seqs": 4}), 2)  # 16 seqs = 2 ranks x 2 x 4
    compiled = eager.model_copy(update={"id": "compiled", "compile": True})
    outcome = cr.run_calibration([eager, compiled], tmp_path / "runs.jsonl", n_devices=2)
    assert outcome.n_failed == 0, [r.reason for r in outcome.results]
    by_id = {r.id: r for r in outcome.results}
    a, b = by_id[eager.id], by_id["compiled"]
    assert a.n_procs == b.n_procs == 2 and a.b_simple > 0 and b.b_simple > 0
    assert a.steps == b.steps and math.isfinite(b.loss)
    assert abs(a.curve[1].loss - b.curve[1].loss) < 0.05  # bf16: the same run up to rounding
    assert abs(a.loss - b.loss) < 0.1


SYN_SMALL = "synthetic:zipf?vocab=16&order=1&a=1.2&tokens=300000"
