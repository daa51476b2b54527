"""Choose the demo preset's learning rates on validation loss only (issue 12, docs/models.md).

Trains every model (and its +clim variant) on the demo-size synthetic Parvati at a few learning
rates for the demo budget and prints the validation MSE beside persistence's and climatology's on
the same validation sequences. Test sequences are never scored here.

    python scripts/tune_demo.py --data-root /tmp/tune [--lrs 1e-4 1e-3 3e-3]

``--glacier`` trains on another glacier already preprocessed under ``--data-root`` (e.g. an
experiment-5 world: ``glacier-movement reproduce --experiments 5 --until preprocess`` makes
them), and ``--epochs`` compares budgets too (default: the demo preset's own).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from glacier_movement import config
from glacier_movement.models import PAPER_MODELS
from glacier_movement.preprocessing import preprocess
from glacier_movement.synthetic import synthesize
from glacier_movement.training import TrainSettings, train_model

MODELS = tuple(PAPER_MODELS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 1e-3, 3e-3])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--clim", nargs="+", default=["off", "on"])
    p.add_argument("--glacier", default="parvati", help="a glacier under --data-root")
    p.add_argument("--epochs", nargs="+", type=int, default=[None], help="budgets to compare")
    a = p.parse_args()
    root = Path(a.data_root)
    if not config.Paths(root, a.glacier).frames.is_file():
        if a.glacier != "parvati":
            raise SystemExit(f"{a.glacier}: no preprocessed frames under {root}: make them first")
        synthesize(config.get_glacier("parvati"), root, size=(160, 160), seed=0)
        preprocess(config.get_glacier("parvati"), root)
    print(
        "| glacier | model | lr | epochs | final val MSE | best | persistence | climatology | s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for clim in a.clim:
        for m in a.models:
            for lr in a.lrs:
                for epochs in a.epochs:
                    label = f"{m}{'+clim' if clim == 'on' else ''}"
                    name = f"tune-{a.glacier}-{label}-lr{lr:g}-ep{epochs}"
                    s = TrainSettings(
                        model=m, glacier=(a.glacier,), preset="demo", run_name=name,
                        overwrite=True, lr=lr, epochs=epochs, wandb="disabled", progress=False,
                        climatology_input=clim == "on",
                    )  # fmt: skip
                    res = train_model(s, root)
                    summary = json.loads((res.run_dir / "summary.json").read_text())
                    cfg = summary["config"]
                    print(
                        f"| {a.glacier} | {label} | {lr:g} | {cfg['train']['epochs']} | {res.val_loss:.5f} | "
                        f"{res.best_val_loss:.5f} | {res.persistence_val_loss:.5f} | "
                        f"{cfg['climatology_val_loss']:.5f} | {res.seconds:.0f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
