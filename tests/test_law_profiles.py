"""Shipped law profiles, the profile search path, and `planner laws`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from planner import profiles, resolve
from planner.errors import ConfigError
from planner.schemas.laws import LawProfile
from tests.conftest import assert_one_error

SHIPPED = sorted((profiles.builtin_dir() / "laws").glob("*.yaml"))


def test_four_published_laws_ship():
    assert {p.stem for p in SHIPPED} >= {"hoffmann-2022", "hoffmann-2022-unrounded", "sardana-2024", "besiroglu-2024"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_law_validates(path: Path):
    loaded = profiles.load("laws", str(path), LawProfile)
    law = loaded.profile
    assert law.name == path.stem and law.source and law.dataset and law.units.params in ("total", "non_embedding")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_besiroglu_carries_its_published_uncertainty():
    unc = resolve.load_law("besiroglu-2024").profile.uncertainty
    assert unc.standard_errors["A"] == 124.58 and unc.intervals_95["beta"].high == 0.415


def test_user_profiles_dir_shadows_builtin(tmp_path, monkeypatch):
    user = tmp_path / "laws"
    user.mkdir()
    text = (profiles.builtin_dir() / "laws" / "sardana-2024.yaml").read_text().replace("E: 1.69", "E: 1.5")
    text = text.replace("name: sardana-2024", "name: besiroglu-2024")  # found by name: must carry that name
    (user / "besiroglu-2024.yaml").write_text(text)
    monkeypatch.setenv("PLANNER_PROFILES_DIR", str(tmp_path))
    assert resolve.load_law("besiroglu-2024").profile.constants.E == 1.5


def test_unknown_name_lists_known():
    with pytest.raises(ConfigError) as exc:
        resolve.load_law("nope")
    assert "sardana-2024" in exc.value.hint


@pytest.mark.parametrize(
    "text, needle",
    [
        ("- just\n- a list\n", "mapping"),
        ("name: [\n", "not valid YAML"),
        ("schema_version: 1\nname: x\n", "title: Field required"),
    ],
)
def test_malformed_profiles_name_the_problem(tmp_path, text, needle):
    path = tmp_path / "law.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        resolve.load_law(str(path))
    assert str(path) in exc.value.message and needle in exc.value.message


def test_laws_list_and_show(cli):
    r = cli("laws", "list")
    assert r.code == 0 and "besiroglu-2024" in r.stdout and "hoffmann-2022-unrounded" in r.stdout
    r = cli("laws", "show", "besiroglu-2024")
    assert r.code == 0 and "285.2" in r.stdout and "arXiv:2404.10102" in r.stdout and "sha256" in r.stdout
    data = cli("laws", "show", "hoffmann-2022", "--json").json
    assert data["constants"]["alpha"] == 0.34 and len(data["sha256"]) == 64
    assert_one_error(cli("laws", "show", "nope"), 3)
