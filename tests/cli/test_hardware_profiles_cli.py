"""`planner hardware list|show` and `planner profiles validate`."""

from __future__ import annotations

from planner import profiles
from tests.conftest import assert_one_error


def test_hardware_list_and_show(cli):
    r = cli("hardware", "list")
    assert r.code == 0 and "h100-sxm5-80gb" in r.stdout and "tpu-v5p" in r.stdout
    r = cli("hardware", "show", "h100-sxm5-80gb")
    assert r.code == 0 and "989.4" in r.stdout and "sources" in r.stdout
    data = cli("hardware", "show", "a100-sxm4-80gb", "--json").json
    assert data["peak_tflops_dense"]["bf16"] == 312.0 and len(data["sha256"]) == 64
    r = cli("hardware", "show", "h100")
    assert_one_error(r, 3)
    assert "h100-sxm5-80gb" in r.stderr  # unknown accelerator: lists what exists


def test_validate_every_shipped_profile(cli):
    r = cli("profiles", "validate")
    assert r.code == 0, r.stderr
    n_files = sum(len(list((profiles.builtin_dir() / k).glob("*.yaml"))) for k in profiles.KINDS)
    assert r.stdout.count(" ok ") == n_files


def test_validate_user_files_names_file_and_field(cli, tmp_path):
    good = profiles.builtin_dir() / "hardware" / "l4.yaml"
    bad = tmp_path / "my-gpu.yaml"
    bad.write_text(good.read_text().replace("memory_gb: 24.0", "memory_gb: -24.0"))
    r = cli("profiles", "validate", str(good), str(bad))
    assert_one_error(type(r)(r.code, "", r.stderr), 3)  # the table goes to stdout, one error to stderr
    assert f"{bad}:" in r.stderr and "memory_gb" in r.stderr
    unknown = tmp_path / "what.yaml"
    unknown.write_text("kind: spaceship\nname: x\n")
    r = cli("profiles", "validate", str(unknown))
    assert r.code == 3 and "kind" in r.stderr
