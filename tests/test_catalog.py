"""The catalog names every output: run names and the per-glacier output files."""

from __future__ import annotations

from pathlib import Path

from glacier_movement.catalog import Catalog


def test_run_names():
    assert Catalog.run_name("salstm", "parvati", "demo") == "salstm-parvati-demo"
    assert (
        Catalog.run_name("lstm+clim", ["parvati"], "tiny", "strict")
        == "lstm+clim-parvati-tiny-strict"
    )
    assert (
        Catalog.run_name("salstm", ["parvati", "aletsch"], "paper", finetuned=True, seed_index=2)
        == "salstm-parvati+aletsch-paper-finetuned-seed2"
    )


def test_paths_under_the_root(tmp_path):
    c = Catalog.at(tmp_path)
    assert c.run_dir("r") == tmp_path / "models" / "r" and c.loss_curves.parent == c.models_dir
    g = c.glacier("parvati")
    names = [
        g.result_file("r", k) for k in ("results", "per_sequence", "motion", "markdown")
    ] + [g.scene_dir("r"), g.scene_figure("r"), g.flow_figure("r"), g.flow_epe("r"),
         g.scene_scores("r"), g.generalization_figure("r"), g.settings_file("preprocess")]  # fmt: skip
    assert len(set(names)) == len(names)  # no two outputs share a file
    assert all(p.is_relative_to(tmp_path / "parvati") for p in names)
    assert g.flow_epe("r").parent == g.scene_dir("r")
    assert g.result_file("a", "results") != g.result_file("b", "results")


def test_default_root(monkeypatch):
    monkeypatch.delenv("GLACIER_DATA_ROOT", raising=False)
    assert Catalog.at().root == Path("data")
    monkeypatch.setenv("GLACIER_DATA_ROOT", "/x")
    assert Catalog.at().root == Path("/x") and Catalog.at("y").root == Path("y")
