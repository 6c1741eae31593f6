"""planner/calibrate_run.py without running probes: commands, environment, device slots, results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner import calibrate_run as cr
from planner import probe_plan as pp
from planner.errors import UsageError
from planner.schemas.probe import CurvePoint, ProbeResult
from tests.conftest import processes_mentioning


@pytest.fixture
def specs():
    return pp.plan_smoke(2).specs()


def test_single_process_probe_runs_without_torchrun(specs, tmp_path):
    one = next(s for s in specs if s.n_procs == 1)
    cmd = cr.probe_command(one, tmp_path / "s.json", tmp_path / "o.jsonl", tmp_path / "st.json", cr.LaunchOptions())
    assert cmd[1:4] == ["-m", "calibrate.probe", "--spec"]
    cmd = cr.probe_command(one, tmp_path / "s.json", tmp_path / "o", tmp_path / "st", cr.LaunchOptions(torchrun="always"))
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]


def test_ddp_probe_uses_torchrun_standalone(specs, tmp_path):
    ddp = next(s for s in specs if s.n_procs == 2)
    cmd = cr.probe_command(ddp, tmp_path / "s.json", tmp_path / "o.jsonl", tmp_path / "st.json", cr.LaunchOptions())
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[5:7] == ["-m", "calibrate.probe"]


def test_multi_node_passes_torchrun_rendezvous_flags(tmp_path):
    spec = pp.with_ddp(pp.plan_gpu(8).specs()[0], 16)
    opts = cr.LaunchOptions(nnodes=2, node_rank=1, rdzv_endpoint="head:29500")
    cmd = cr.probe_command(spec, tmp_path / "s.json", tmp_path / "o", tmp_path / "st", opts)
    assert "--nnodes=2" in cmd and "--node-rank=1" in cmd and "--nproc_per_node=8" in cmd
    assert "--rdzv-endpoint=head:29500" in cmd and "--rdzv-backend=c10d" in cmd and f"--rdzv-id={spec.id}" in cmd
    assert "--standalone" not in cmd


def test_multi_node_probe_sees_every_local_gpu(tmp_path, monkeypatch):
    """nnodes=2 x 8 GPUs: torchrun starts 8 ranks per node, rank k on cuda:k, so all 8 GPUs stay visible
    to every probe (was CUDA_VISIBLE_DEVICES=0: "invalid device ordinal" on ranks 1-7); one at a time."""
    plan = pp.plan_gpu(8, nnodes=2)
    launched, running = [], []

    class FakeProc:  # exits on its second poll, writing nothing (the launcher records failed lines)
        pid, returncode, polls = 0, None, 0

        def poll(self):
            self.polls += 1
            if self.polls > 1 and self.returncode is None:
                self.returncode = 0
                running.remove(self)
            return self.returncode

    def popen(cmd, *, env, **_):
        assert not running, "a second probe started while one spans the nodes"
        launched.append((cmd, env))
        running.append(FakeProc())
        return running[-1]

    monkeypatch.setattr(cr.subprocess, "Popen", popen)
    opts = cr.LaunchOptions(nnodes=2, node_rank=1, rdzv_endpoint="head:29500", poll_s=0.0)
    outcome = cr.run_calibration(plan, tmp_path / "runs.jsonl", n_devices=8, device="cuda", options=opts)
    assert len(launched) == len(plan.probes) == len(outcome.ran) > 1
    for cmd, env in launched:
        assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
        assert "--nproc_per_node=8" in cmd and "--nnodes=2" in cmd and "--node-rank=1" in cmd
    spec = plan.specs()[0]
    assert spec.n_procs == 16 and cr.devices_needed(spec, 8, opts) == 8
    assert cr.child_env(spec, list(range(8)), opts)["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"


def test_with_ddp_refuses_a_batch_that_does_not_split():
    spec = pp.plan_smoke(1).specs()[0]
    with pytest.raises(UsageError, match="does not split"):
        pp.with_ddp(spec, 3)


def test_child_env_pins_threads_and_gpus(specs):
    env = cr.child_env(specs[0], [0], cr.LaunchOptions(env={"EXTRA": "1"}))
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1" and env["EXTRA"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in env or env["CUDA_VISIBLE_DEVICES"] == __import__("os").environ.get(
        "CUDA_VISIBLE_DEVICES")
    gpu = pp.plan_gpu(8).specs()[0]
    assert cr.child_env(gpu, [2, 3], cr.LaunchOptions())["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert Path(env["PYTHONPATH"].split(":")[0], "calibrate", "probe.py").exists()


def test_slots_share_gpus_and_give_ddp_whole_devices():
    slots = cr.Slots("cuda", 4, probes_per_gpu=2)
    assert slots.take(2) == [0, 1]
    assert slots.take(1) == [2] and slots.take(1) == [3] and slots.take(1) == [2] and slots.take(1) == [3]
    assert slots.take(1) is None and slots.take(2) is None
    slots.give([0, 1])
    assert slots.take(2) == [0, 1]
    cpu = cr.Slots("cpu", 2, probes_per_gpu=8)  # CPU: one rank per core, never shared
    assert cpu.take(1) == [0] and cpu.take(1) == [1] and cpu.take(1) is None
    cpu.give([0])
    assert cpu.take(2) is None and cpu.take(1) == [0]


def _result(rid, status="ok", kind="ladder", loss=2.0, batch=4096, curve=()):
    return ProbeResult(id=rid, probe_id=rid.split("@")[0], kind=kind, status=status, n_params=1000,
                       n_params_non_embedding=500, n_layer=1, n_embd=8, seq_len=32, vocab_size=16,
                       flops_per_token=1.0, batch_tokens=batch, lr=1e-3, tokens=1e4, steps=10, loss=loss,
                       curve=list(curve), data="stdlib", device="cpu", n_procs=1, wall_s=1.0)


def test_results_file_resume_rules(tmp_path, specs):
    out = tmp_path / "runs.jsonl"
    sp = specs[0]
    for rid in sp.result_ids():
        cr.append_line(out, _result(rid).model_dump_json())
    failed = specs[1]
    for rid in failed.result_ids():
        cr.append_line(out, _result(rid, status="failed").model_dump_json())
    with open(out, "a") as f:
        f.write('{"id": "torn li')  # a writer killed mid-line is ignored
    todo = cr.pending(specs, out)
    assert sp not in todo and failed not in todo and len(todo) == len(specs) - 2
    assert failed in cr.pending(specs, out, retry_failed=True)
    for rid in failed.result_ids():  # a retry that succeeds wins over the failed line
        cr.append_line(out, _result(rid).model_dump_json())
    latest = cr.latest_by_id(cr.read_results(out))
    assert all(latest[rid].status == "ok" for rid in failed.result_ids())


def test_ladder_points_and_csv(tmp_path):
    rs = [_result("a@r5", loss=3.0), _result("a", loss=2.5), _result("b", status="failed", loss=None),
          _result("c", kind="cbs", loss=2.0)]
    assert cr.ladder_points(rs) == ([1000, 1000], [1e4, 1e4], [3.0, 2.5])
    assert cr.write_ladder_csv(rs, tmp_path / "p.csv") == 2
    assert (tmp_path / "p.csv").read_text().splitlines()[0].startswith("params,params_non_embedding,tokens,loss")


def test_cbs_table_steps_to_target():
    def curve(points):
        return [CurvePoint(step=s, tokens=s * 1.0, ewa_loss=v) for s, v in points]

    small = _result("s", kind="cbs", batch=1024, curve=curve([(0, 5.0), (10, 4.0), (20, 3.0), (40, 2.5)]))
    big = _result("b", kind="cbs", batch=8192, curve=curve([(0, 5.0), (2, 4.0), (4, 3.2), (8, 2.9)]))
    assert cr.steps_to_target(small, 3.5) == 20 and cr.steps_to_target(big, 3.5) == 4
    assert cr.steps_to_target(big, 2.0) is None
    rows = cr.cbs_table([small, big], targets=[3.5, 2.0])
    assert rows == [{"target": 3.5, "batch_tokens": 1024, "steps": 20, "tokens": 20480.0},
                    {"target": 3.5, "batch_tokens": 8192, "steps": 4, "tokens": 32768.0}]
    json.dumps(rows)


def test_resume_key_is_what_shapes_a_result_not_the_layout(specs):
    sp = specs[0]
    assert cr.spec_differences(sp, pp.with_ddp(sp, 2).model_copy(update={"log_every_steps": 7})) == []
    for field, value in (("data", "synthetic:zipf"), ("seed", 3), ("seq_len", 64), ("dtype", "bf16"),
                         ("lr", sp.lr / 2), ("data_vocab_size", 300), ("data_text_key", "body")):
        assert [d[0] for d in cr.spec_differences(sp, sp.model_copy(update={field: value}))] == [field]


def test_check_resume_compares_only_ids_already_in_out(tmp_path, specs):
    out, work = tmp_path / "runs.jsonl", tmp_path / "work"
    (work / "specs").mkdir(parents=True)
    done = specs[0]
    (work / "specs" / f"{done.id}.json").write_text(done.model_dump_json())
    for rid in done.result_ids():
        cr.append_line(out, _result(rid).model_dump_json())
    other = [s.model_copy(update={"data": "synthetic:zipf"}) for s in specs]
    cr.check_resume(specs, out, work)  # the same plan resumes
    cr.check_resume(other[1:], out, work)  # a probe not run yet may change freely
    with pytest.raises(UsageError, match="holds results of a different calibration: data stdlib vs synthetic:zipf"):
        cr.check_resume(other, out, work)
    with pytest.raises(UsageError, match="data stdlib vs synthetic:zipf"):  # run_calibration checks first
        cr.run_calibration(other, out, n_devices=1, work_dir=work)
    assert not (work / "plan.json").exists()


def test_check_resume_without_spec_files_reads_the_lines(tmp_path, specs):
    out = tmp_path / "runs.jsonl"
    sp = specs[0]
    for rid in sp.result_ids():
        line = _result(rid).model_copy(update={"n_layer": sp.n_layer, "n_embd": sp.n_embd, "seq_len": sp.seq_len,
                                               "vocab_size": sp.vocab_size, "batch_tokens": sp.tokens_per_step,
                                               "lr": sp.lr})
        cr.append_line(out, line.model_dump_json())
    cr.check_resume([sp], out, tmp_path / "nowork")
    with pytest.raises(UsageError, match="seq_len 128 vs 64"):
        cr.check_resume([sp.model_copy(update={"seq_len": 64})], out, tmp_path / "nowork")


# ----------------------------------------------------------------------------- SIGTERM / SIGHUP

SIGNAL_DRIVER = """
import sys
from planner import calibrate_run as cr
from planner import probe_plan as pp
specs = pp.plan_smoke(2).specs()[:2]
try:
    cr.run_calibration(specs, sys.argv[1], n_devices=2, options=cr.LaunchOptions(python=sys.argv[2], poll_s=0.05))
except cr.Terminated as exc:
    print("terminated", exc.name, flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_stops_the_children_like_ctrl_c(tmp_path, signame):
    """Audit: kill -TERM on the planner exited 143 and left the probe running (re-parented), still training
    and appending to runs.jsonl. SIGTERM and SIGHUP now stop the children's process groups, as Ctrl-C does."""
    import signal
    import subprocess
    import sys
    import time

    fake = tmp_path / "fake_python"  # stands in for `python -m calibrate.probe ...`: trains "forever"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(300)\n")
    fake.chmod(0o755)
    out = tmp_path / "runs.jsonl"
    work = str(tmp_path / "runs.calibrate")
    driver = subprocess.Popen([sys.executable, "-c", SIGNAL_DRIVER, str(out), str(fake)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.time() + 30
        while not processes_mentioning(work) and time.time() < deadline:
            time.sleep(0.05)
        assert processes_mentioning(work), "no probe started"
        time.sleep(0.3)
        driver.send_signal(getattr(signal, signame))
        stdout, stderr = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130 and stdout.split() == ["terminated", signame], stderr
    assert not processes_mentioning(work), "children were left running"


def test_cli_exits_130_with_one_error_on_sigterm(cli, monkeypatch, tmp_path):
    import os
    import signal
    import time

    def fake(plan, out, **kw):
        os.kill(os.getpid(), signal.SIGTERM)  # as SLURM does at the time limit
        time.sleep(10)
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(cr, "run_calibration", fake)
    before = signal.getsignal(signal.SIGTERM)
    r = cli("calibrate", "--data", "synthetic:zipf?tokens=300000", "--out", str(tmp_path / "cal"))
    assert r.code == 130 and r.stderr.count("error:") == 1 and r.stderr.count("hint:") == 1, r.stderr
    assert "error: interrupted by SIGTERM: 0 finished probe results are kept in" in r.stderr
    assert "rerun the same command with the same --out to resume" in r.stderr
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the command's only
