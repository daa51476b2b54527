"""The trainer's callbacks (validation batches, CSV logs, Weights & Biases, the progress bar,
checkpoints and signals) and the CSV and wandb writers they use."""

from __future__ import annotations

import contextlib
import csv
import errno
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import io, signals
from ..catalog import RunPaths
from ..errors import GlacierError
from ..settings import WANDB_MODES
from .data import _val_batches, evaluate_loss
from .loop import Callback, StepLog, Trainer, TrainResult


# --------------------------------------------------------------------------------- CSV logging
class _Csv:
    """Append-only CSV that keeps rows whose first column passes ``keep`` when reopened."""

    def __init__(self, path: Path, header: Sequence[str], keep=None):
        self.path = path
        rows: list[list[str]] = []
        if keep is not None and path.is_file():
            with open(path, newline="") as f:
                r = csv.reader(f)
                if next(r, None) == list(header):
                    rows = [row for row in r if row and keep(float(row[0]))]
        with io.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        self._f = open(path, "a", newline="", buffering=1)  # noqa: SIM115 - closed in close()
        self._w = csv.writer(self._f)

    def write(self, *row) -> None:
        try:
            self._w.writerow(
                ["" if v is None else (f"{v:.8g}" if isinstance(v, float) else v) for v in row]
            )
        except OSError as e:  # appended, not written through atomic_path: say it the same way
            if e.errno in (errno.ENOSPC, errno.EFBIG):
                raise GlacierError(
                    f"cannot write {self.path}: {e.strerror}; free disk space and run again with --resume"
                ) from e
            raise

    def close(self) -> None:
        # a row that could not be flushed was reported by write(); do not mask that error here
        with contextlib.suppress(OSError):
            self._f.close()


# ------------------------------------------------------------------------------------- wandb
def _wandb_start(
    mode: str, project: str, cfg: dict[str, Any], root: Path, name: str, run_id: str | None
):
    """A wandb run (or None when disabled). Files go to ``<root>/wandb/``; offline never touches
    the network (upload later with ``wandb sync <root>/wandb/offline-run-*``)."""
    if mode not in WANDB_MODES:
        raise GlacierError(f"unknown wandb mode {mode!r}: use one of {', '.join(WANDB_MODES)}")
    if mode == "disabled":
        return None
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb  # slow to import (~1 s): only runs that log load it

    (root / "wandb").mkdir(parents=True, exist_ok=True)
    try:
        return wandb.init(
            project=project,
            config=cfg,
            dir=str(root),
            name=name,
            id=run_id,
            resume="allow" if run_id else None,
            mode=mode,
        )
    except wandb.errors.UsageError as e:  # pyright: ignore[reportAttributeAccessIssue] - lazy module
        raise GlacierError(
            f"wandb {mode} failed ({str(e).splitlines()[0][:120]}): run `wandb login` first, or use "
            "--wandb offline (upload later with `wandb sync`) or --wandb disabled"
        ) from None


# --------------------------------------------------------------------------------- callbacks
class Validation(Callback):
    """Every ``val_every`` steps, the loss on one validation batch (rank 0; the batches taken in
    turn), into the step's log."""

    def __init__(self, t: Trainer):
        self.batches = _val_batches(t.val[1], t.cfg.batch_size)

    def on_step(self, t: Trainer, log: StepLog) -> None:
        if log.step % t.cfg.val_every == 0:
            batch = self.batches[(log.step // t.cfg.val_every - 1) % len(self.batches)]
            log.val_loss = evaluate_loss(
                t.model, (t.val[0], batch), t.cfg.batch_size, t.device, t.amp
            )


class CsvLogs(Callback):
    """``losses.csv`` (step, train_loss, val_loss) and ``epochs.csv`` (epoch, train_loss,
    val_loss); a resumed run keeps the rows up to its checkpoint and drops the later ones."""

    def __init__(self, t: Trainer, resumed: bool):
        step0, epochs0 = t.state.step, t.state.epoch
        self.steps = _Csv(
            RunPaths(t.run_dir).losses,
            ("step", "train_loss", "val_loss"),
            keep=lambda s: s <= step0 if resumed else False,
        )
        self.epochs = _Csv(
            RunPaths(t.run_dir).epochs,
            ("epoch", "train_loss", "val_loss"),
            keep=lambda e: e <= epochs0 if resumed else False,
        )

    def on_step(self, t: Trainer, log: StepLog) -> None:
        self.steps.write(log.step, log.train_loss, log.val_loss)

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        self.epochs.write(round(epoch, 4), train_loss, val_loss)

    def close(self, failed: bool) -> None:
        self.steps.close()
        self.epochs.close()


class Wandb(Callback):
    """The losses to a Weights & Biases run (its id kept in the state, so a resume continues it)."""

    def __init__(self, run: Any):
        self.run = run

    def on_step(self, t: Trainer, log: StepLog) -> None:
        val = {"validationLoss": log.val_loss} if log.val_loss is not None else {}
        self.run.log({"trainLoss": log.train_loss, **val}, step=log.step)

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        self.run.log(
            {"epoch": epoch, "epochTrainLoss": train_loss, "epochValidationLoss": val_loss},
            step=t.state.step,
        )

    def on_end(self, t: Trainer, result: TrainResult) -> None:
        self.run.summary.update(
            {"finalValidationLoss": result.val_loss, "persistenceValidationLoss": t.persistence}
        )

    def close(self, failed: bool) -> None:
        if failed:
            self.run.finish(exit_code=1)
        else:
            self.run.finish()


class ProgressBar(Callback):
    """A tqdm bar on stderr: steps, epoch, the epoch's mean loss, the last validation loss."""

    def __init__(self, t: Trainer):
        self.last_val = math.nan
        self.bar = tqdm(
            total=t.total_steps,
            initial=t.state.step,
            unit="step",
            desc=f"{t.model_name}",
            dynamic_ncols=True,
            mininterval=1.0,
            file=sys.stderr,
        )

    def on_step(self, t: Trainer, log: StepLog) -> None:
        if log.val_loss is not None:
            self.last_val = log.val_loss
        self.bar.update(1)
        self.bar.set_postfix_str(
            f"epoch {log.epoch + 1}/{t.cfg.epochs} loss {t.state.epoch_mean():.4g}"
            + (f" val {self.last_val:.4g}" if math.isfinite(self.last_val) else ""),
            refresh=False,
        )

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        self.last_val = val_loss

    def close(self, failed: bool) -> None:
        self.bar.close()


class Checkpointing(Callback):
    """``last.pt`` every ``ckpt_every`` steps and on signals, ``best.pt`` at a new lowest
    validation loss. Every rank has one (the saves and the signal poll are collectives).

    SIGTERM/SIGINT stop the run after the current step (``last.pt`` written, then
    :class:`signals.Interrupted`); SIGUSR1 asks for a ``last.pt`` now and training goes on.
    """

    def __init__(self) -> None:
        self.flags = signals.Deferred().install()

    def on_step(self, t: Trainer, log: StepLog) -> None:
        if log.step % t.cfg.ckpt_every == 0:
            t.save(t.last_path)
        stop, wanted = self.flags.poll(t.dd.world, t.device)  # collective under DDP
        if not (stop or wanted):
            return
        if log.step % t.cfg.ckpt_every:  # else written just now
            t.save(t.last_path)
        if t.dd.world > 1:
            torch.distributed.barrier()  # no rank leaves (and tears gloo down) before the file exists
        if not stop:
            if t.dd.main:
                print(
                    f"checkpoint at step {log.step} (SIGUSR1): {t.last_path}",
                    file=sys.stderr,
                    flush=True,
                )
            return
        self.flags.consume()
        raise signals.Interrupted(
            stop, f"at step {log.step} of {t.total_steps} ({t.last_path} written)"
        )

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        if val_loss < t.state.best_val_loss:
            t.state.best_val_loss = val_loss
            t.save(t.best_path)

    def close(self, failed: bool) -> None:
        # a stop that came after the last step goes to the previous handler
        self.flags.restore(redeliver=not failed)


def _main_callbacks(
    t: Trainer, resumed: bool, wandb_mode: str, wandb_root: Path, progress: bool
) -> list[Callback]:
    """Rank 0's callbacks, in the order they run: validation batch, CSV logs, wandb, progress."""
    t.run_dir.mkdir(parents=True, exist_ok=True)
    callbacks: list[Callback] = [Validation(t), CsvLogs(t, resumed)]
    wb = _wandb_start(
        wandb_mode, t.model_name, t.record, wandb_root, t.run_dir.name, t.state.wandb_id
    )
    if wb is not None:
        t.state.wandb_id = wb.id
        callbacks.append(Wandb(wb))
    if progress:
        callbacks.append(ProgressBar(t))
    return callbacks
