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


# ----------------------------------------------------------------------------- resume into another calibration


def _finished_out_dir(d, plan, results):
    """An --out DIR as a finished run leaves it: runs.jsonl plus the spec recorded at each launch."""
    from planner import calibrate_run as cr

    (d / "work" / "specs").mkdir(parents=True)
    for r in results:
        cr.append_line(d / "runs.jsonl", r.model_dump_json())
    for spec in plan.specs():
        (d / "work" / "specs" / f"{spec.id}.json").write_text(spec.model_dump_json())


def _no_probe_may_run(monkeypatch):
    from planner import calibrate_run as cr

    def fail(*a, **kw):
        raise AssertionError("a probe was launched")

    monkeypatch.setattr(cr, "_launch", fail)


@pytest.mark.parametrize("keep_specs", [True, False])
def test_resume_with_other_data_is_refused_before_anything_runs(cli, monkeypatch, tmp_path, smoke_plan,
                                                                synthetic_results, keep_specs):
    from tests.conftest import assert_one_error

    d = tmp_path / "cal"
    _finished_out_dir(d, smoke_plan, synthetic_results)
    if not keep_specs:  # an out dir without spec files: the runs.jsonl lines are the key
        for f in (d / "work" / "specs").iterdir():
            f.unlink()
    before = (d / "runs.jsonl").read_text()
    _no_probe_may_run(monkeypatch)
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--data", "synthetic:zipf",
            "--out", str(d))
    assert_one_error(r, 2)
    assert f"--out {d} holds results of a different calibration: data stdlib vs synthetic:zipf" in r.stderr
    assert "use another --out, or the same flags" in r.stderr
    assert (d / "runs.jsonl").read_text() == before and not (d / "report.md").exists()
    assert not (d / "work" / "plan.json").exists()


@pytest.mark.parametrize("flags, needle", [(("--seed", "1"), "seed 0 vs 1"),
                                           (("--vocab-size", "300"), "vocab_size 257 vs 300")])
def test_resume_with_other_probe_settings_is_refused(cli, monkeypatch, tmp_path, smoke_plan, synthetic_results,
                                                     flags, needle):
    d = tmp_path / "cal"
    _finished_out_dir(d, smoke_plan, synthetic_results)
    _no_probe_may_run(monkeypatch)
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", *flags, "--out", str(d))
    assert r.code == 2 and needle in r.stderr, r.stderr


def test_resume_with_the_same_flags_runs_nothing_and_reports(cli, monkeypatch, tmp_path, smoke_plan,
                                                             synthetic_results):
    d = tmp_path / "cal"
    _finished_out_dir(d, smoke_plan, synthetic_results)
    _no_probe_may_run(monkeypatch)
    # the DDP layout is not part of the key: 1 core runs the DDP probe single-process, same results
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "1", "--bootstrap", "0", "--json",
            "--out", str(d))
    assert r.code == 0, r.stderr
    assert r.json["ran"] == [] and len(r.json["skipped_probes"]) == len(smoke_plan.probes)


# ----------------------------------------------------------------------------- the device a flag implies


def test_gpus_alone_implies_cuda(cli):
    r = cli("calibrate", "--gpus", "8", "--nnodes", "2", "--rdzv-endpoint", "h:29500", "--dry-run", "--json")
    assert r.code == 0, r.stderr
    assert r.json["device"] == "cuda" and r.json["preset"] == "gpu" and r.json["n_devices"] == 8
    assert r.json["nnodes"] == 2
    smoke = cli("calibrate", "--preset", "smoke", "--gpus", "2", "--dry-run", "--json")  # cores, on CPU
    assert smoke.code == 0 and smoke.json["device"] == "cpu" and smoke.json["n_devices"] == 2


# ----------------------------------------------------------------------------- multi-node plans


def test_dry_run_plans_every_probe_over_all_nodes(cli):
    r = cli("calibrate", "--preset", "gpu", "--nnodes", "2", "--node-rank", "0", "--rdzv-endpoint", "host:29500",
            "--gpus", "8", "--dry-run", "--json")
    assert r.code == 0, r.stderr
    assert {p["spec"]["n_procs"] for p in r.json["probes"]} == {16}
    table = cli("calibrate", "--preset", "gpu", "--nnodes", "2", "--rdzv-endpoint", "host:29500", "--gpus", "8",
                "--dry-run")
    assert "2 nodes x 8 cuda devices, each probe DDP over all 16" in table.stdout


def test_multi_node_layout_the_launcher_refuses_is_a_dry_run_error(cli):
    from tests.conftest import assert_one_error

    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "4", "--nnodes", "2", "--node-rank", "0",
            "--rdzv-endpoint", "localhost:29511", "--dry-run")
    assert_one_error(r, 2)
    assert "batch of 4 sequences does not split over 8" in r.stderr


# ----------------------------------------------------------------------------- tables at 80 columns


@pytest.mark.parametrize("columns", [80, 140])
def test_plan_table_shows_flops_and_fits_the_terminal(columns):
    import os

    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run([sys.executable, "-m", "planner", "calibrate", "--preset", "gpu", "--gpus", "8", "--dry-run"],
                         capture_output=True, text=True, check=False, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line.rstrip()) <= columns for line in lines) and "…" not in out.stdout
    assert lines[0].startswith("calibrate plan: gpu on 8 cuda device(s)")  # the summary does not wrap
    assert " FLOPs, " in lines[1] and "GPU-h" in lines[1]
    header = next(line for line in lines if line.lstrip().startswith("probe"))
    assert header.split() == ["probe", "N", "D", "batch", "lr", "DDP", "FLOPs", "start", "wall"]
    row = next(line for line in lines if line.lstrip().startswith("ladder-L3-d192")).split()
    assert row[4] == "1.0e-2" and row[6].count("e") == 1  # lr and FLOPs whole
    assert len([line for line in lines if line.lstrip().startswith(("ladder-", "cbs-"))]) == 12  # no wrapped rows


def test_results_table_header_fits_80_columns(synthetic_results):
    from rich.console import Console

    from planner.render_calibrate import results_table

    failed = synthetic_results[0].model_copy(update={"status": "failed", "loss": None, "reason": "x" * 80})
    console = Console(width=80, record=True, file=__import__("io").StringIO())
    console.print(results_table([failed, *synthetic_results[1:]]))
    text = console.export_text()
    assert "B_simple" in text and "…" not in text
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())


# ----------------------------------------------------------------------------- progress in a log


def test_log_progress_prints_running_probes_periodically(capsys):
    from planner.calibrate_run import Progress
    from planner.cli.calibrate import _live

    row = Progress("ladder-L2-d40", state="running", devices="cpu0", step=120, planned_steps=300, loss=3.2101,
                   tokens_per_s=41_000, mfu=0.123, eta_s=95)
    with _live(every_s=0.0, tty=False) as show:
        show([row])  # the state change
        show([row])  # then the periodic line
        show([row])
    lines = capsys.readouterr().err.splitlines()
    err = [line for line in lines if not line.startswith("overall:")]
    assert any(line.startswith("overall: 0 done, 1 running; ETA ") for line in lines)
    assert err[0].split() == ["running", "ladder-L2-d40", "cpu0"]
    assert err[1] == err[2]
    for part in ("ladder-L2-d40", "cpu0", "step 120/300", "loss 3.210", "41k tok/s", "MFU 12.3%", "ETA 1.58m"):
        assert part in err[1]
    with _live(every_s=3600.0, tty=False) as show:  # not before every_s has passed
        show([row])
        show([row])
    assert len(capsys.readouterr().err.splitlines()) == 1


# ----------------------------------------------------------------------------- busy and allocated GPU-hours


def test_single_and_multi_node_plans_report_busy_and_allocated_gpu_hours():
    """Audit: one node reported 8 busy GPU-h while its 1.22 h on 8 GPUs allocates 9.8; two nodes counted the
    whole allocation. Both now report both, say the budget caps busy hours, and warn past the budget."""
    from planner import probe_plan as pp

    one = pp.plan_budget(8, 4.0, 989.4e12, 0.40)
    assert one.total_device_hours <= 4.0 + 1e-9 and one.budget_constrains == "busy"
    assert one.allocated_device_hours == pytest.approx(one.wall_clock_s * 8 / 3600)
    assert one.allocated_device_hours > 4.0  # GPUs idle while the longest probes finish
    [w] = [w for w in one.warnings if "allocates" in w]
    assert f"allocates {one.allocated_device_hours:.3g} GPU-hours (8 GPUs x" in w and "above the 4 GPU-hour" in w
    assert "node" not in w
    two = pp.plan_budget(8, 8.0, 989.4e12, 0.40, nnodes=2)
    assert two.allocated_device_hours == pytest.approx(two.wall_clock_s * 16 / 3600)
    assert two.allocated_device_hours == pytest.approx(two.total_device_hours)  # serial probes over all 16
    assert two.total_device_hours <= 8.0 + 1e-9  # costed over all 16 ranks, start-up included
    assert not [w for w in two.warnings if "GPU-hour budget" in w]
    tight = pp.plan_budget(8, 1.0, 989.4e12, 0.40, nnodes=2)  # start-up on 16 ranks alone exceeds 1 GPU-hour
    assert sum("budget" in w and "GPU-hour" in w for w in tight.warnings) == 1  # one warning, not two
    assert "on 2 nodes every probe spans all 16 GPUs" in tight.warnings[-1]
    single = pp.plan_budget(1, 2.0, 989.4e12, 0.40)  # one GPU: nothing idles, nothing to warn about
    assert single.allocated_device_hours == pytest.approx(single.total_device_hours)
    assert not [w for w in single.warnings if "GPU-hour budget" in w]
    smoke = pp.plan_smoke(n_cores=2)
    assert smoke.budget_constrains is None and smoke.allocated_device_hours == pytest.approx(smoke.wall_clock_s / 1800)


def test_dry_run_json_and_table_show_both_gpu_hour_figures(cli):
    r = cli("calibrate", "--dry-run", "--json", "--gpus", "8", "--budget-gpu-hours", "4")
    assert r.code == 0, r.stderr
    plan = r.json
    assert plan["total_device_hours"] <= 4.0 + 1e-9  # kept: busy GPU-hours, what the budget caps
    assert plan["budget_device_hours"] == 4.0 and plan["budget_constrains"] == "busy"
    assert plan["allocated_device_hours"] == pytest.approx(plan["wall_clock_s"] * 8 / 3600)
    assert "warning: the plan allocates" in r.stderr
    table = cli("calibrate", "--dry-run", "--gpus", "8", "--budget-gpu-hours", "4")
    lines = table.stdout.splitlines()
    assert lines[1].startswith(f"{lines[1].split()[0]} FLOPs, {plan['total_device_hours']:.3g} GPU-h busy, ")
    from planner.units import duration

    wall = duration(plan["wall_clock_s"])
    assert f"{plan['allocated_device_hours']:.3g} GPU-h allocated (8 x ~{wall} wall)" in lines[1]
    assert lines[2].startswith("budget 4 GPU-h caps busy GPU-h; ladder span")


def test_live_progress_table_fits_80_columns_with_an_overall_eta():
    """Audit: at 80 columns the live table cut state, step, tok/s and device ("runni…", "189/3…"), showed an
    always-empty MFU column on CPU, and had no overall ETA."""
    import io

    from rich.console import Console

    from planner.calibrate_run import Progress
    from planner.render_calibrate import overall_line, progress_table

    gpu = [Progress("cbs-L8-d512-b1048576", state="running", devices="gpu0-7", n_procs=8, step=123_456,
                    planned_steps=234_567, loss=3.2101, tokens_per_s=1.234e6, mfu=0.456, eta_s=4400),
           Progress("ladder-L24-d1536", state="queued", n_procs=4), Progress("ladder-L4-d256", state="skipped"),
           Progress("ladder-L6-d384", state="failed", devices="gpu3")]
    cpu = [Progress("ladder-L2-d40", state="running", devices="cpu0,1", n_procs=2, step=189, planned_steps=300,
                    loss=3.2, tokens_per_s=41_000, eta_s=95), Progress("cbs-L1-d24-b4096", state="done", devices="cpu1")]
    for rows, planned, n in ((gpu, {"ladder-L24-d1536": 3600.0}, 8), (cpu, {}, 2)):
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(progress_table(rows, overall_line(rows, planned, n)))
        text = console.export_text()
        assert "…" not in text and all(len(line.rstrip()) <= 80 for line in text.splitlines()), text
        assert ("MFU" in text) == (rows is gpu)
        for r in rows:
            assert r.probe_id in text and r.state in text
        assert ("123k/235k" in text and "gpu0-7" in text) if rows is gpu else ("189/300" in text and "41k" in text)
    line = overall_line(gpu, {"ladder-L24-d1536": 3600.0}, 8)
    assert line.startswith("overall: 0 done, 1 running, 1 queued, 1 failed, 1 already done; ETA ~")
    assert line.endswith("1.72h")  # 4400 s running + 3600 s x 4 GPUs / 8 GPUs
    assert "ETA" not in overall_line(gpu, {}, 8)  # the queued probe's time is unknown


# ----------------------------------------------------------------------------- audit: resume key, corrupt lines, dry run


def test_resume_from_runs_jsonl_alone_compares_seed_and_data_path(cli, monkeypatch, tmp_path, smoke_plan,
                                                                   synthetic_results):
    """Audit: runs.jsonl copied to a new --out (no work/specs) and rerun with --seed 1 silently reused the
    seed-0 results. Lines now record their seed; a --data path is compared resolved to an absolute path."""
    from tests.conftest import assert_one_error

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world, " * 30_000)
    d = tmp_path / "cal"
    d.mkdir()
    for r in synthetic_results:
        from planner import calibrate_run as cr

        cr.append_line(d / "runs.jsonl", r.model_copy(update={"seed": 0, "data": str(corpus)}).model_dump_json())
    _no_probe_may_run(monkeypatch)
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--seed", "1", "--data", str(corpus),
            "--out", str(d))
    assert_one_error(r, 2)
    assert "holds results of a different calibration: seed 0 vs 1" in r.stderr
    monkeypatch.chdir(tmp_path)  # the same file by a relative path is the same calibration
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--data", "corpus.txt",
            "--out", str(d), "--dry-run", "--json")
    assert r.code == 0, r.stderr
    assert r.json["data"] == str(corpus) and f"--out {d} already holds 8 of 8 probes complete" in r.stderr


def test_dry_run_checks_out_like_the_run_and_counts_what_is_done(cli, tmp_path, smoke_plan, synthetic_results):
    """Audit: a dry run against an --out holding another calibration exited 0 while the run was refused."""
    from tests.conftest import assert_one_error

    d = tmp_path / "cal"
    _finished_out_dir(d, smoke_plan, synthetic_results[:3])  # one ladder probe: 3 lines
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--dry-run", "--out", str(d))
    assert r.code == 0, r.stderr
    assert f"note: --out {d} already holds 1 of 8 probes complete; a run skips them" in r.stderr
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--seed", "3", "--dry-run",
            "--out", str(d))
    assert_one_error(r, 2)
    assert "holds results of a different calibration: seed 0 vs 3" in r.stderr
    assert "already holds" not in cli("calibrate", "--dry-run", "--out", str(tmp_path / "new")).stderr


@pytest.mark.parametrize("dry", [True, False])
def test_a_corrupt_line_in_the_middle_of_runs_jsonl_is_refused_at_plan_time(cli, monkeypatch, tmp_path, smoke_plan,
                                                                            synthetic_results, dry):
    """Audit: a truncated middle line was skipped (its probe retrained); a valid-JSON line failing the schema was
    ignored by the planner but counted as done by the probe, ending in a false `failed` line and exit 6."""
    from tests.conftest import assert_one_error

    d = tmp_path / "cal"
    _finished_out_dir(d, smoke_plan, synthetic_results[:3])
    lines = (d / "runs.jsonl").read_text().splitlines()
    for bad in (lines[1][:60], '{"id": "ladder-L1-d16", "status": "ok"}'):
        (d / "runs.jsonl").write_text("\n".join([lines[0], bad, lines[2]]) + "\n")
        _no_probe_may_run(monkeypatch)
        r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--out", str(d),
                *(("--dry-run",) if dry else ()))
        assert_one_error(r, 3)
        assert f"{d / 'runs.jsonl'}:2: not a probe result line" in r.stderr
        assert "delete or repair that line" in r.stderr
    (d / "runs.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:60])  # a crash's cut-short last line
    r = cli("calibrate", "--device", "cpu", "--preset", "smoke", "--gpus", "2", "--out", str(d), "--dry-run")
    assert r.code == 0 and "already holds 1 of 8 probes" in r.stderr, r.stderr
