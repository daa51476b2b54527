"""The catalog names every output: run names and the per-glacier output files."""

from __future__ import annotations

import ast
from pathlib import Path

import glacier_movement
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


def test_run_files_are_distinct_and_in_the_run_folder(tmp_path):
    run = Catalog(tmp_path).run("r")
    files = [*run.outputs, run.settings_file("train")]
    assert len(set(files)) == len(files) and all(
        f.parent == tmp_path / "models" / "r" for f in files
    )


#: The file names of run folders and data folders: spelled in catalog.py (runs) and config.Paths
#: (a glacier's data folder, ``Catalog.glacier``) only.
FOLDER_FILES = (
    "last.pt", "best.pt", "losses.csv", "epochs.csv", "summary.json", "frames.npz", "truth.npz",
    "alignment.npz", "sequences.json", "sequence_examples.png", "frames.png", "scene.json",
    "flow.npz", "flow_epe.csv", "flow_epe.json",
)  # fmt: skip


def _spelled(path: Path) -> list[str]:
    """The FOLDER_FILES that ``path`` spells as a string literal (``"last.pt"``, ``"x/last.pt"``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out += [n for n in FOLDER_FILES if node.value == n or node.value.endswith("/" + n)]
    return out


def test_file_names_come_from_the_catalog():
    package = Path(glacier_movement.__file__).parent
    spelled = {
        str(p.relative_to(package)): names
        for p in sorted(package.rglob("*.py"))
        if str(p.relative_to(package)) not in ("catalog.py", "config.py") and (names := _spelled(p))
    }
    assert spelled == {}
