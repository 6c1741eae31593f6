"""`planner calibrate` adapter: --dry-run needs no torch; flag errors; the plan it prints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def planner(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *argv], capture_output=True, text=True, check=False)


def test_dry_run_smoke_prints_the_plan_without_torch():
    code = ("import sys, io, contextlib\nfrom planner.cli import main\n"
            "sys.argv = ['planner', 'calibrate', '--dry-run', '--json']\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n    try:\n        main()\n    except SystemExit as e:\n"
            "        assert not e.code, e.code\n"
            "plan = __import__('json').loads(buf.getvalue())\n"
            "print(plan['preset'], len(plan['probes']), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["smoke", "8", "False"]


def test_dry_run_budget_plan_json():
    out = planner("calibrate", "--dry-run", "--device", "cuda", "--gpus", "8", "--budget-gpu-hours", "8", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["preset"] == "budget" and plan["n_devices"] == 8
    assert plan["total_device_hours"] <= 8.0 + 1e-9
    assert plan["peak_flops_per_s"] == pytest.approx(989.4e12)
    assert "epochs of stdlib" in out.stderr  # the demo corpus cannot feed a GPU ladder


def test_dry_run_table_names_every_probe():
    out = planner("calibrate", "--dry-run", "--preset", "gpu", "--gpus", "8")
    assert out.returncode == 0, out.stderr
    assert "ladder-L4-d256" in out.stdout or "ladder-L3-d192" in out.stdout
    assert "cbs-" in out.stdout


@pytest.mark.parametrize("argv,needle", [
    (["--preset", "gpu", "--device", "cpu"], "runs on cuda"),
    (["--device", "tpu"], "expected cpu or cuda"),
    (["--preset", "budget", "--device", "cuda"], "--budget-gpu-hours"),
    (["--device", "cuda", "--nnodes", "2"], "--rdzv-endpoint"),
    (["--device", "cuda", "--budget-gpu-hours", "0.001"], "cannot fit"),
])
def test_flag_errors(argv, needle):
    out = planner("calibrate", "--dry-run", *argv)
    assert out.returncode in (2, 4), out
    assert needle in out.stderr and out.stderr.startswith("error:")


def test_out_must_be_a_directory(cli, tmp_path):
    old = tmp_path / "runs.jsonl"
    old.write_text("")
    out = cli("calibrate", "--out", str(old))
    assert out.code == 2 and "is a file" in out.stderr and "--out names a results directory" in out.stderr


# ----------------------------------------------------------------------------- the results directory
# run_calibration is replaced by synthetic results (tests/calibrate/conftest.py): no probe is trained.


def _fake_run(monkeypatch, results):
    from planner import calibrate_run as cr

    def fake(plan, out, **kw):
        for r in results:
            cr.append_line(out, r.model_dump_json())
        return cr.Outcome(results=list(results), ran=sorted({r.probe_id for r in results}), skipped=[], wall_s=0.1)

    monkeypatch.setattr(cr, "run_calibration", fake)


FILES = ("runs.jsonl", "ladder.csv", "curves.csv", "cbs.csv", "mfu.csv", "law.yaml", "batch.yaml", "report.md",
         "loss.png", "cbs.png")


def test_results_directory_feeds_recommend(cli, monkeypatch, tmp_path, synthetic_results):
    _fake_run(monkeypatch, synthetic_results)
    d = tmp_path / "cal"
    out = cli("calibrate", "--out", str(d), "--bootstrap", "100", "--json")
    assert out.code == 0, out.stderr
    summary = out.json
    assert all((d / f).exists() for f in FILES) and set(FILES) <= set(summary["files"])
    assert summary["loss_law"]["E"] == pytest.approx(0.9, abs=0.3) and summary["batch_law"]["d_law"]["exp"] > 0
    assert summary["units"]["tokens"] == "training bytes"
    assert cli("profiles", "validate", str(d / "law.yaml"), str(d / "batch.yaml")).code == 0
    law = __import__("yaml").safe_load((d / "law.yaml").read_text())
    assert law["units"]["loss"].startswith("nats per byte") and "NOT comparable" in law["notes"]
    report = (d / "report.md").read_text()
    assert "besiroglu-2024" in report and "nats per byte" in report and "NOT comparable" in report
    assert "95% bootstrap interval" in report and "CBS(D)" in report
    rec = cli("recommend", "--law", str(d / "law.yaml"), "--batch-law", str(d / "batch.yaml"), "--params", "50k",
              "--json")
    assert rec.code == 0, rec.stderr
    assert rec.json["law"]["path"] == str(d / "law.yaml")
    header = (d / "curves.csv").read_text().splitlines()[0]
    assert header.startswith("id,probe,kind,params,batch_tokens,phase,step,tokens,loss,ewa_loss")


def test_failed_probe_and_unusable_sweep_still_write_the_law(cli, monkeypatch, tmp_path, synthetic_results):
    broken = synthetic_results[1].model_copy(update={"status": "failed", "reason": "out of memory", "loss": None})
    cbs = [r for r in synthetic_results if r.kind == "cbs"][:2]  # 2 batch sizes cannot identify a CBS
    results = [r for r in synthetic_results if r.kind == "ladder" and r.id != broken.id] + [broken, *cbs]
    _fake_run(monkeypatch, results)
    d = tmp_path / "cal"
    (d).mkdir()
    (d / "batch.yaml").write_text("stale: true\n")  # from an earlier run: must not survive
    out = cli("calibrate", "--out", str(d), "--bootstrap", "0")
    assert out.code == 6, out.stderr
    assert "1 of 14 probe results failed" in out.stderr and "warning: no batch law" in out.stderr
    assert (d / "law.yaml").exists() and not (d / "batch.yaml").exists() and not (d / "cbs.png").exists()
    report = (d / "report.md").read_text()
    assert "out of memory" in report and "No batch law written" in report
    assert "11 of 12 planned post-decay ladder points" in report


def test_too_few_probes_exits_6_and_says_so(cli, monkeypatch, tmp_path, synthetic_results):
    sizes = sorted({r.n_params for r in synthetic_results if r.kind == "ladder"})
    results = [r if r.kind == "cbs" or r.n_params in sizes[:2] else
               r.model_copy(update={"status": "failed", "reason": "ProbeFailed: non-finite training loss", "loss": None})
               for r in synthetic_results]
    _fake_run(monkeypatch, results)
    d = tmp_path / "cal"
    out = cli("calibrate", "--out", str(d))
    assert out.code == 6
    assert "too few probes finished to fit: 6 of 12 ladder points (2 of 4 sizes)" in out.stderr
    assert out.stderr.count("error:") == 1 and "hint:" in out.stderr
    assert not (d / "law.yaml").exists()
    assert all((d / f).exists() for f in ("runs.jsonl", "ladder.csv", "report.md", "mfu.csv", "loss.png"))
    assert "too few probes finished to fit" in (d / "report.md").read_text()
