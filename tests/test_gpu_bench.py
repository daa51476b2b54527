"""benchmarks/gpu.py: its CPU dry run (every part at the tiny preset) so that the GPU script
cannot rot, and its GPU-free memory figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_on_cpu(bench, capsys, one_thread):
    assert bench.main(["--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in bench.models():
        assert f"\n{name} " in out
    assert "CLI at tiny" in out and "DDP: torchrun 2 ranks over gloo" in out
    assert "2 ranks' RNG states" in out
    lstm_row = next(ln for ln in out.splitlines() if ln.startswith("salstm "))
    assert lstm_row.split()[-2] == "0.0"  # no LSTM gradient is 0 under bf16 autocast


def test_memory_estimate_scales_with_the_batch(bench):
    """Saved activations grow linearly with the batch; weights + grads + AdamW = 16 B/param."""
    a = [bench.saved_activation_bytes("convlstm", "tiny", b) for b in (2, 4, 6)]
    assert a[0] > 0 and a[2] - a[1] == a[1] - a[0]
    est = bench.memory_estimate("unet", "tiny", 10)
    assert est["states"] == 16 * est["params"]
    assert est["activations"] == pytest.approx(
        bench.saved_activation_bytes("unet", "tiny", 10), rel=1e-6
    )


@pytest.mark.gpu
def test_one_model_on_the_gpu(bench):
    r = bench.step_rate("salstm", "tiny", 4, bench.torch.device("cuda"), True, 2)
    assert r["steps_s"] > 0 and r["zero"] == 0.0 and r["peak"] > 0
