"""The package's metadata: what PyPI would refuse, caught before an upload."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

import joerl

ROOT = Path(__file__).resolve().parents[1]


def _metadata() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["metadata"]


def test_every_classifier_is_a_valid_trove_classifier() -> None:
    trove = pytest.importorskip("trove_classifiers", reason="trove-classifiers is in the test extra")
    given = [c.strip() for c in _metadata()["classifiers"].splitlines() if c.strip()]
    assert given, "no classifiers"
    unknown = [c for c in given if c not in trove.classifiers]
    assert not unknown, f"PyPI refuses unknown classifiers: {unknown}"
    assert not [c for c in given if c in trove.deprecated_classifiers], "deprecated classifiers"


def test_the_license_file_and_typing_marker_ship() -> None:
    meta = _metadata()
    assert meta["license"] == "MIT" and (ROOT / meta["license_files"]).read_text().startswith("MIT License")
    assert (Path(joerl.__file__).parent / "py.typed").exists()
    assert "Typing :: Typed" in meta["classifiers"]


def test_python_versions_agree() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options"]["python_requires"] == ">=3.10"
    versions = [c.rsplit(":: ", 1)[1] for c in _metadata()["classifiers"].splitlines() if ":: Python :: 3." in c]
    assert versions and min(versions, key=lambda v: tuple(map(int, v.split(".")))) == "3.10"
