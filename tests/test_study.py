"""The study: defaults, the runs and glaciers of each experiment."""

from __future__ import annotations

import pytest

from glacier_movement import study as st
from glacier_movement.settings import SettingsError


def test_resolved_defaults_follow_the_preset():
    assert (
        st.Study(preset="demo").resolved().seeds,
        st.Study(preset="demo").resolved().heldout,
    ) == (3, 6)
    tiny = st.Study(preset="tiny").resolved()
    assert (tiny.seeds, tiny.heldout, tiny.glacier) == (1, 1, "parvati")
    assert st.Study(preset="demo", experiments=(4,)).resolved().seeds == 1
    assert st.Study(preset="demo", seeds=2).resolved().seeds == 2


def test_experiment_runs_and_glaciers():
    s = st.Study(preset="demo", seeds=2, heldout=2, strict_models=("salstm", "unet")).resolved()
    runs = st.exp1_runs(s)
    assert len(runs) == 8 * 2 + 2  # four models and their +clim variants at 2 seeds; 2 strict
    assert [r.name for r in runs[:2]] == ["salstm-parvati-demo", "salstm-parvati-demo-seed1"]
    assert runs[-1].name == "unet-parvati-demo-strict" and runs[-1].split == "strict"
    assert st.data_glaciers(s) == ["parvati", "aletsch", "parvati-heldout-1", "parvati-heldout-2"]
    both = st.Study(preset="demo", experiments=(1, 2, 3, 4), heldout=1).resolved()
    assert st.motion_glaciers(both) == ["parvati-motion", "parvati-motion-heldout-1"]
    assert {r.model for r in st.exp4_runs(both)} == set(st.EXP4_MODELS)
    real = st.Study(source="planetary-computer").resolved()
    assert st.heldout_glaciers(real) == [] and st.data_glaciers(real) == ["parvati", "aletsch"]


def test_run_names_of_the_experiments():
    assert st.run_name(2, "salstm", "demo") == "salstm-aletsch-demo-finetuned"
    assert st.run_name(3, "salstm", "demo") == "salstm-parvati+aletsch-demo"
    assert st.run_name(4, "simvp", "tiny", seed_index=1) == "simvp-parvati-motion-tiny-seed1"


def test_bad_studies():
    with pytest.raises(ValueError, match="give a comma-separated list"):
        st.parse_experiments("1,x")
    with pytest.raises(SettingsError, match="strict_models has unknown model"):
        st.Study(strict_models=("gpt",))
    with pytest.raises(SettingsError, match="seeds must be at least 1"):
        st.Study(seeds=0)
    assert st.parse_models("all") == st.MODELS and st.parse_models("none") == ()
