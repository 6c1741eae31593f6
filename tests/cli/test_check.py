"""`planner check`: every check passing and failing, formats, exit codes, malformed plans, baselines."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from planner import profiles
from planner.plan_io import EXAMPLE
from tests.conftest import assert_one_error

CHECKS = ["fits_memory", "gpu_hours", "cost_usd", "wall_clock_s", "predicted_loss", "tokens_per_param",
          "batch_over_cbs", "lifetime_over_optimum", "batch_as_given"]  # fmt: skip (the last one: plans that give a batch)
GITHUB = re.compile(r"^::(error|warning|notice) file=([^,]+)(?:,line=(\d+))?,title=([^:]+)::(.+)$")


def write(tmp_path, data: dict, name: str = "plan.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def plan():
    return yaml.safe_load(EXAMPLE)


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["plans"][0]["checks"]}


def test_example_plan_passes_every_check(cli, tmp_path, plan):
    r = cli("check", str(write(tmp_path, plan)), "--format", "json")
    assert r.code == 0, r.stderr
    assert statuses(r.json) == {name: "pass" for name in CHECKS}


@pytest.mark.parametrize(
    "section, key, value, failing",
    [
        ("training", "n_gpus", 1, "fits_memory"),  # 6.7B with Adam states on one 80 GB GPU
        ("limits", "min_memory_headroom", 0.9, "fits_memory"),
        ("limits", "max_gpu_hours", 1000.0, "gpu_hours"),
        ("limits", "max_cost_usd", 1000.0, "cost_usd"),
        ("limits", "max_wall_clock_s", 3600.0, "wall_clock_s"),
        ("limits", "target_loss", 1.9, "predicted_loss"),
        ("limits", "max_tokens_per_param", 20.0, "tokens_per_param"),
        ("training", "global_batch_tokens", 6.7e7, "batch_over_cbs"),
        ("limits", "max_over_optimum", 0.01, "lifetime_over_optimum"),
    ],
)
def test_each_check_fails(cli, tmp_path, plan, section, key, value, failing):
    plan[section][key] = value
    r = cli("check", str(write(tmp_path, plan)), "--format", "json")
    assert r.code == 7, r.stderr
    assert statuses(r.json)[failing] == "fail"
    assert "error: limits failed" in r.stderr and failing in r.stderr


def test_missing_limits_are_skipped_and_warnings_need_strict(cli, tmp_path, plan):
    plan["limits"] = {"max_gpu_hours": 60000.0}  # the plan uses ~57k GPU-h: above the 90% warning line
    path = write(tmp_path, plan)
    r = cli("check", str(path), "--format", "json")
    assert r.code == 0 and statuses(r.json)["gpu_hours"] == "warn" and statuses(r.json)["cost_usd"] == "skip"
    assert cli("check", str(path), "--strict").code == 7


def test_github_format(cli, tmp_path, plan):
    plan["limits"]["max_gpu_hours"] = 1000.0
    path = write(tmp_path, plan)
    r = cli("check", str(path), "--format", "github")
    assert r.code == 7
    lines = r.stdout.strip().splitlines()
    assert all(GITHUB.match(line) for line in lines), lines
    error = next(GITHUB.match(line) for line in lines if line.startswith("::error"))
    assert error.group(2) == str(path)
    text = path.read_text().splitlines()
    assert text[int(error.group(3)) - 1].strip().startswith("max_gpu_hours:")  # the offending key's line


def test_junit_format_parses(cli, tmp_path, plan):
    plan["limits"]["target_loss"] = 1.9
    r = cli("check", str(write(tmp_path, plan)), "--format", "junit")
    root = ET.fromstring(r.stdout)
    assert root.tag == "testsuites" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert {c.get("name") for c in cases} == set(CHECKS)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["predicted_loss"]


def test_write_plan_round_trip(cli, tmp_path):
    path = tmp_path / "written.yaml"
    r = cli("recommend", "--target-loss", "2.2", "--inference-tokens", "1e12", "--write-plan", str(path), "--json")
    assert r.code == 0, r.stderr
    r = cli("check", str(path), "--format", "json")
    assert r.code == 0 and set(statuses(r.json).values()) == {"pass"}, r.stdout  # passes unchanged
    doubled = yaml.safe_load(path.read_text())
    doubled["training"]["tokens"] *= 2
    r = cli("check", str(write(tmp_path, doubled, "doubled.yaml")), "--format", "json")
    assert r.code == 7 and statuses(r.json)["gpu_hours"] == "fail"  # the GPU-hour limit it was written with


@pytest.mark.parametrize("flags", [
    ("--objective", "cost"),  # off the FLOP optimum by design: its own over-optimum becomes the limit
    ("--batch-tokens", "8e6"),  # forced past the CBS: trains more tokens for the same loss
    ("--gpus", "64"),
])
def test_write_plan_passes_its_own_check(cli, tmp_path, flags):
    path = tmp_path / "written.yaml"
    r = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "1e12", *flags, "--write-plan", str(path),
            "--json")
    assert r.code == 0, r.stderr
    written = yaml.safe_load(path.read_text())
    assert written["training"]["tokens"] == pytest.approx(r.json["gpu_plan"]["n_tokens_needed"])  # tokens trained
    check = cli("check", str(path), "--format", "json")
    assert check.code == 0 and set(statuses(check.json).values()) == {"pass"}, check.stdout
    metrics = check.json["plans"][0]["metrics"]
    assert metrics["gpu_hours"] == pytest.approx(r.json["gpu_hours"], rel=0.02)  # the same run, the same hours


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda p: p.pop("training"), "training: Field required"),
        (lambda p: p["training"].update(n_gpus="many"), "training.n_gpus"),
        (lambda p: p["training"].update(gpu="h100"), "training.gpu: unknown hardware profile 'h100'"),
        (lambda p: p["laws"].update(loss="chinchilla"), "laws.loss: unknown law profile 'chinchilla'"),
        (lambda p: p["limits"].update(max_gpu_hours=-5), "limits.max_gpu_hours"),
        (lambda p: p["model"].clear(), "model: Value error, give model.params or model.shape"),
        (lambda p: p.update(budget=3), "budget: Extra inputs are not permitted"),
    ],
)
def test_malformed_plans_name_file_key_and_line(cli, tmp_path, plan, mutate, needle):
    mutate(plan)
    path = write(tmp_path, plan)
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert needle in r.stderr and str(path) in r.stderr
    if "unknown" in needle or "n_gpus" in needle or "max_gpu_hours" in needle:
        assert re.search(rf"{re.escape(str(path))}:\d+:", r.stderr)  # the line of the key


def test_bad_usage(cli, tmp_path, plan):
    assert_one_error(cli("check"), 2)
    assert_one_error(cli("check", str(write(tmp_path, plan)), "--format", "xml"), 2)
    assert_one_error(cli("check", str(write(tmp_path, plan)), "--confidence", "1.5"), 2)
    assert_one_error(cli("check", str(tmp_path / "missing.yaml")), 3)
    (tmp_path / "bad.yaml").write_text("name: [\n")
    assert_one_error(cli("check", str(tmp_path / "bad.yaml")), 3)


def test_init(cli, tmp_path):
    r = cli("check", "--init")
    assert r.code == 0 and yaml.safe_load(r.stdout)["schema_version"] == 1
    out = tmp_path / "new.yaml"
    assert cli("check", "--init", str(out)).code == 0 and out.exists()
    assert_one_error(cli("check", "--init", str(out)), 2)  # never overwrites


def test_confidence_uses_the_laws_bootstrap_draws(cli, tmp_path, plan):
    law = yaml.safe_load((profiles.builtin_dir() / "laws" / "besiroglu-2024.yaml").read_text())
    law["name"] = "with-samples"
    # draws of E spread around the point estimate: the 95% bound of the loss sits above the point value
    law["uncertainty"] = {"samples": [[1.8172 + d, 482.01, 2085.43, 0.3478, 0.3658] for d in
                                      (-0.05, -0.02, 0.0, 0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2)]}
    law_path = tmp_path / "law.yaml"
    law_path.write_text(yaml.safe_dump(law))
    plan["laws"]["loss"] = str(law_path)
    path = write(tmp_path, plan)
    point = cli("check", str(path), "--format", "json").json["plans"][0]["metrics"]["predicted_loss"]
    bound = cli("check", str(path), "--format", "json", "--confidence", "0.95").json["plans"][0]["metrics"]
    assert bound["predicted_loss"] > point + 0.1
    # the bound moves the loss check only: the optimum is still the one at the plan's point-estimate loss
    report = cli("check", str(path), "--format", "json", "--confidence", "0.95").json["plans"][0]
    plain = cli("check", str(path), "--format", "json").json["plans"][0]
    over = {r["name"]: r["value"] for r in report["checks"]}["lifetime_over_optimum"]
    assert over == pytest.approx({r["name"]: r["value"] for r in plain["checks"]}["lifetime_over_optimum"])


def test_baseline_file_and_git_ref(cli, tmp_path, plan):
    old = write(tmp_path, plan, "old.yaml")
    plan["training"]["tokens"] *= 1.5
    new = write(tmp_path, plan, "plan.yaml")
    changes = {c["metric"]: c for c in cli("check", str(new), "--baseline", str(old), "--format", "json")
               .json["plans"][0]["changes"]}  # fmt: skip
    assert changes["gpu_hours"]["relative"] == pytest.approx(0.5, rel=1e-6)
    assert changes["predicted_loss"]["delta"] < 0
    github = cli("check", str(new), "--baseline", str(old), "--format", "github").stdout.splitlines()
    notices = [line for line in github if line.startswith("::notice")]
    assert notices and all(GITHUB.match(line) for line in notices)  # the title's ':' is escaped (%3A) too
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    (repo / "plan.yaml").write_text(old.read_text())
    subprocess.run([*git, "add", "plan.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "plan"], check=True)
    (repo / "plan.yaml").write_text(new.read_text())
    r = cli("check", str(repo / "plan.yaml"), "--baseline", "HEAD", "--format", "json")
    changes = {c["metric"]: c for c in r.json["plans"][0]["changes"]}
    assert changes["n_tokens"]["relative"] == pytest.approx(0.5, rel=1e-9)
    assert_one_error(cli("check", str(new), "--baseline", "no-such-ref"), 3)


def test_a_batch_the_layout_cannot_run_is_a_warning(cli, tmp_path, plan):
    plan["training"]["global_batch_tokens"] = 4096  # one sequence: far below one per data-parallel rank
    r = cli("check", str(write(tmp_path, plan)), "--format", "json")
    batch = next(c for c in r.json["plans"][0]["checks"] if c["name"] == "batch_as_given")
    assert batch["status"] == "warn" and batch["limit"] == 4096 and batch["value"] > 1e6
    assert "runs as" in batch["reason"] and batch["key"] == "training.global_batch_tokens"
    assert cli("check", str(write(tmp_path, plan)), "--strict").code == 7  # --strict fails on it


def test_check_reproduces_a_plan_past_the_cbs(cli, tmp_path):
    """recommend evaluates the CBS at the law's D and trains D·penalty; check evaluated it at the trained tokens
    (CBS 3.0M instead of 2.04M), so it saw loss 2.2802 and 5.59x CBS for a plan written at 2.3 and 8.23x. Both now
    use the CBS at the law's D: check inverts the penalty and reproduces the plan's own numbers."""
    path = tmp_path / "written.yaml"
    r = cli("recommend", "--target-loss", "2.3", "--gpus", "4096", "--write-plan", str(path), "--json")
    assert r.code == 0, r.stderr
    rec = r.json
    assert rec["gpu_plan"]["token_overhead_fraction"] > 1.0  # far past the CBS
    check = cli("check", str(path), "--format", "json")
    assert check.code == 0, check.stdout
    report = check.json["plans"][0]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["predicted_loss"]["value"] == pytest.approx(2.3, rel=1e-6)
    assert checks["batch_over_cbs"]["value"] == pytest.approx(
        rec["batch_size_tokens"] / rec["critical_batch_tokens"], rel=1e-9)
    metrics = report["metrics"]
    assert metrics["critical_batch_tokens"] == pytest.approx(rec["critical_batch_tokens"], rel=1e-9)
    for key in ("gpu_hours", "wall_clock_s"):
        assert metrics[key] == pytest.approx(rec[key], rel=1e-9)
    written = yaml.safe_load(path.read_text())["limits"]["max_over_optimum"]
    assert checks["lifetime_over_optimum"]["value"] == pytest.approx(written - 0.05, rel=1e-9)  # the plan's own
    overhead = rec["gpu_plan"]["token_overhead_fraction"]
    reason = checks["predicted_loss"]["reason"]
    assert f"needs {overhead:.1%} more tokens" in reason and f"{1 / (1 + overhead):.1%} of those trained" in reason


def test_check_inverts_the_penalty_when_the_laws_pick_the_batch(tmp_path, plan):
    """A plan with no batch whose GPU count forces one past the CBS: check solves for the law's D whose GPU
    plan trains training.tokens, and the CBS there (the batch is then the one the layout runs)."""
    from pathlib import Path

    from planner import plan_io
    from planner.batch_plan import cbs_tokens
    from planner.check import effective_tokens, shape_of

    del plan["training"]["global_batch_tokens"]
    plan["training"]["n_gpus"] = 16384
    _, inp = plan_io.inputs(plan_io.load(Path(write(tmp_path, plan))), None)
    tp, D = effective_tokens(inp, plan["model"]["params"], shape_of(inp.plan))
    trained = plan["training"]["tokens"]
    assert tp.gpus.batch_tokens == 16384 * 4096 and tp.gpus.token_overhead_fraction > 1.0
    assert D * (1 + tp.gpus.token_overhead_fraction) == pytest.approx(trained, rel=1e-12)
    assert tp.gpus.n_tokens_needed == pytest.approx(trained, rel=1e-12)
    assert tp.batch.critical_batch_tokens == pytest.approx(cbs_tokens(inp.cbs_law, D)[0], rel=1e-12)
