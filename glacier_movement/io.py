"""File formats (npz, never pickle), atomic writes and the writers of results.

Scene files ``<root>/<glacier>/raw/<year>.npz`` are written by acquisition and by the synthetic
generator and read by preprocessing; frame files ``<root>/<glacier>/frames.npz`` are written by
preprocessing and read by everything after it. Readers validate and name the file and the problem.
Writers of results: CSV tables (:func:`write_csv`), text, ``.npy`` arrays, grayscale PNG/PDF
images, GeoTIFFs, and Markdown tables (:func:`markdown_table`, every table of the reports).
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pandas as pd
from PIL import Image

from .config import BANDS
from .errors import DataError, GlacierError


def _read_umask() -> int:
    mask = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _remove_orphans(path: Path, suffix: str) -> None:
    """Remove temporary files of ``path`` whose writer process is gone (killed mid-write); the
    writer's pid is part of the name, so a live writer's file is left alone."""
    if not path.parent.is_dir():
        return
    for old in path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix)}"):
        pid = old.name[len(path.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            old.unlink(missing_ok=True)
        except (PermissionError, OverflowError):  # alive (another user's), or no pid at all
            pass


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    A crash, a kill or an exception leaves ``path`` as it was (absent or the old version), so
    readers never see a half-written file. An exception leaves no temporary file behind; one left
    by a killed process (``kill -9``) is removed by the next write of the same file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GlacierError(
            f"cannot create folder {path.parent}: {e.strerror}; check the data root"
        ) from e
    suffix = suffix or "".join(path.suffixes) + ".tmp"
    _remove_orphans(path, suffix)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (28, 27):  # ENOSPC, EFBIG
            raise GlacierError(
                f"cannot write {path}: {e.strerror}; free disk space and run again"
            ) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_serialized(
    path: str | os.PathLike, dump: Callable[[BinaryIO], object], suffix: str
) -> Path:
    """Write what ``dump(file)`` serializes (``np.save``, ``torch.save`` …) to ``path`` atomically.

    Serialized in memory, then written by Python: numpy's and torch's own writers report a full
    disk without an errno (or as a RuntimeError), Python's as the OSError ``atomic_path`` names.
    """
    buf = BytesIO()
    dump(buf)
    with atomic_path(path, suffix=suffix) as tmp:
        tmp.write_bytes(buf.getbuffer())
    return Path(path)


def save_npz(path: str | os.PathLike, compress: bool = False, **arrays) -> Path:
    """Write arrays to ``path`` (.npz) atomically."""
    path = Path(path)
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        (np.savez_compressed if compress else np.savez)(tmp, **arrays)
    return path


def load_npz(
    path: str | os.PathLike, required: dict[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Read every array of an .npz file into memory, without pickle.

    ``required`` maps key → what it is (for the message). Raises :class:`DataError` naming the file
    for a missing, truncated or foreign file, or a missing key.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist: run the stage that writes it first")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
        # np.load takes anything else for a pickle, and its message suggests loading it unsafely
        if magic and not magic.startswith((b"PK", b"\x93NUMPY")):
            raise ValueError(f"not a zip archive, it starts with {magic!r}")
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array under an .npz name
            raise ValueError("a single .npy array, not an .npz archive")
        with loaded as f:
            out = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        why = f"{type(e).__name__}: {e}"
        if "pickle" in str(e):  # an object array or a pickle: never unpickled
            why = "it holds pickled Python objects, which are never loaded"
        raise DataError(
            f"{path} is not a readable .npz file ({why}); it is truncated or "
            "foreign: delete it and write it again"
        ) from None
    for key, what in (required or {}).items():
        if key not in out:
            raise DataError(
                f"{path} has no {key!r} ({what}): it is not a file of this project; delete it and write it again"
            )
    return out


# --------------------------------------------------------------------------------------- scenes
@dataclass
class Scenes:
    """All kept scenes of one glacier-year.

    ``data`` is uint16 digital numbers, (N, 7, H, W), band order :data:`BANDS`, 0 = nodata;
    reflectance = data * scale + offset. ``times`` are UTC acquisition datetimes (datetime64[ns]);
    ``cloud_cover`` is the scene's cloud cover in percent; ``transform`` the 6 affine numbers
    (a, b, c, d, e, f) of the grid in ``epsg``.
    """

    times: np.ndarray
    data: np.ndarray
    cloud_cover: np.ndarray
    glacier: str
    epsg: int
    transform: tuple[float, ...]
    scale: float
    offset: float
    bands: tuple[str, ...] = BANDS

    def reflectance(self, band: int | str) -> np.ndarray:
        """Surface reflectance of one band, (N, H, W) float32, NaN where nodata."""
        i = self.bands.index(band) if isinstance(band, str) else band
        dn = self.data[:, i]
        out = dn.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        out[dn == 0] = np.nan
        return out


_SCENE_KEYS = {
    "times": "acquisition datetimes",
    "data": "uint16 digital numbers (N, 7, H, W)",
    "bands": "band names",
    "cloud_cover": "cloud cover per scene, percent",
    "scale": "reflectance scale",
    "offset": "reflectance offset",
    "epsg": "EPSG code of the grid",
    "transform": "affine transform, 6 numbers",
    "glacier": "glacier name",
}


def write_scenes(path: str | os.PathLike, scenes: Scenes) -> Path:
    """Write one year's scene file atomically (validated first, so nothing bad is written)."""
    _validate_scenes(Path(path), scenes)
    return save_npz(
        path,
        times=scenes.times.astype("datetime64[ns]"),
        data=scenes.data,
        bands=np.array(scenes.bands),
        cloud_cover=scenes.cloud_cover.astype(np.float64),
        scale=np.float64(scenes.scale),
        offset=np.float64(scenes.offset),
        epsg=np.int64(scenes.epsg),
        transform=np.asarray(scenes.transform, dtype=np.float64),
        glacier=np.array(scenes.glacier),
    )


def read_scenes(path: str | os.PathLike) -> Scenes:
    """Read and validate one year's scene file; :class:`DataError` names the file and the problem."""
    path = Path(path)
    f = load_npz(path, _SCENE_KEYS)
    try:
        scenes = Scenes(
            times=f["times"],
            data=f["data"],
            cloud_cover=f["cloud_cover"],
            glacier=str(f["glacier"]),
            epsg=int(f["epsg"]),
            transform=tuple(float(v) for v in np.ravel(f["transform"])),
            scale=float(f["scale"]),
            offset=float(f["offset"]),
            bands=tuple(str(b) for b in np.ravel(f["bands"])),
        )
    except (TypeError, ValueError) as e:
        raise DataError(
            f"{path}: malformed scalar field ({e}); delete the file and write it again"
        ) from None
    _validate_scenes(path, scenes)
    return scenes


def _validate_scenes(path: Path, s: Scenes) -> None:
    def bad(msg: str) -> DataError:
        return DataError(f"{path}: {msg}; delete the file and acquire or synthesize it again")

    if s.data.dtype != np.uint16:
        raise bad(f"'data' has dtype {s.data.dtype}, expected uint16 digital numbers")
    if s.data.ndim != 4 or s.data.shape[1] != len(BANDS):
        raise bad(f"'data' has shape {s.data.shape}, expected (N, {len(BANDS)}, H, W)")
    n = s.data.shape[0]
    if tuple(s.bands) != BANDS:
        raise bad(f"bands are {list(s.bands)}, expected {list(BANDS)}")
    if not np.issubdtype(s.times.dtype, np.datetime64) or s.times.shape != (n,):
        raise bad(
            f"'times' has dtype {s.times.dtype} and shape {s.times.shape}, expected datetime64 ({n},)"
        )
    if not np.issubdtype(s.cloud_cover.dtype, np.number) or s.cloud_cover.shape != (n,):
        raise bad(f"'cloud_cover' has shape {s.cloud_cover.shape}, expected ({n},) percent")
    if len(s.transform) != 6:
        raise bad(f"'transform' has {len(s.transform)} numbers, expected 6")


# --------------------------------------------------------------------------------------- frames
@dataclass
class Frames:
    """Preprocessed NDSI snow/ice frames of one glacier, one per seasonal window.

    ``frames`` is float32 (T, H, W): NDSI where NDSI ≥ 0.3, else 0. ``window_start`` are the
    windows' first days (datetime64[D]); ``window_months`` their length; ``n_scenes`` how many
    scenes were averaged into each (0 = interpolated); ``interpolated`` flags the filled windows;
    ``epsg``/``transform`` georeference the ROI grid; ``roi`` is (row0, row1, col0, col1) of the
    crop in the acquired scene grid (the grid of ``truth.npz`` for synthetic data).
    """

    frames: np.ndarray
    window_start: np.ndarray
    window_months: int
    n_scenes: np.ndarray
    interpolated: np.ndarray
    glacier: str
    epsg: int
    transform: tuple[float, ...]
    roi: tuple[int, int, int, int]


_FRAME_KEYS = {
    "frames": "NDSI frames (T, H, W)",
    "window_start": "first day of each window",
    "window_months": "window length in months",
    "n_scenes": "scenes per window",
    "interpolated": "interpolated-window flags",
    "glacier": "glacier name",
    "epsg": "EPSG code",
    "transform": "affine transform",
    "roi": "crop (row0, row1, col0, col1) in the scene grid",
}


def write_frames(path: str | os.PathLike, fr: Frames) -> Path:
    """Write a frame file atomically."""
    _validate_frames(Path(path), fr)
    return save_npz(
        path,
        frames=fr.frames.astype(np.float32),
        window_start=fr.window_start.astype("datetime64[D]"),
        window_months=np.int64(fr.window_months),
        n_scenes=np.asarray(fr.n_scenes, dtype=np.int64),
        interpolated=np.asarray(fr.interpolated, dtype=bool),
        glacier=np.array(fr.glacier),
        epsg=np.int64(fr.epsg),
        transform=np.asarray(fr.transform, dtype=np.float64),
        roi=np.asarray(fr.roi, dtype=np.int64),
    )


def read_frames(path: str | os.PathLike) -> Frames:
    """Read and validate a frame file."""
    path = Path(path)
    f = load_npz(path, _FRAME_KEYS)
    try:
        fr = Frames(
            frames=f["frames"],
            window_start=f["window_start"],
            window_months=int(f["window_months"]),
            n_scenes=f["n_scenes"],
            interpolated=f["interpolated"],
            glacier=str(f["glacier"]),
            epsg=int(f["epsg"]),
            transform=tuple(float(v) for v in np.ravel(f["transform"])),
            roi=cast(tuple[int, int, int, int], tuple(int(v) for v in np.ravel(f["roi"]))),
        )
    except (TypeError, ValueError) as e:
        raise DataError(
            f"{path}: malformed scalar field ({e}); run `glacier-movement preprocess` again"
        ) from None
    _validate_frames(path, fr)
    return fr


def _validate_frames(path: Path, fr: Frames) -> None:
    def bad(msg: str) -> DataError:
        return DataError(f"{path}: {msg}; run `glacier-movement preprocess` again")

    if fr.frames.ndim != 3 or fr.frames.dtype != np.float32:
        raise bad(f"'frames' is {fr.frames.dtype} {fr.frames.shape}, expected float32 (T, H, W)")
    t = fr.frames.shape[0]
    for name in ("window_start", "n_scenes", "interpolated"):
        if np.shape(getattr(fr, name)) != (t,):
            raise bad(f"{name!r} has shape {np.shape(getattr(fr, name))}, expected ({t},)")
    if not np.isfinite(fr.frames).all():
        raise bad("'frames' holds NaN or infinite values")


# -------------------------------------------------------------------------------- writers
def write_csv(df: pd.DataFrame, path: Path, float_format: str | None = None) -> Path:
    """Write a DataFrame as CSV atomically: no index column, gzip (level 1) for a ``.gz`` name,
    floats as ``float_format`` (e.g. ``"%.6g"``; default: full precision)."""
    with atomic_path(path, suffix=".tmp" + "".join(path.suffixes)) as tmp:
        gz = path.suffix == ".gz"
        df.to_csv(
            tmp,
            index=False,
            float_format=float_format,
            compression={"method": "gzip", "compresslevel": 1} if gz else None,
        )
    return path


def write_text(text: str, path: Path) -> Path:
    """Write ``text`` to ``path`` atomically, UTF-8."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def save_array(arr: np.ndarray, path: Path) -> Path:
    """``np.save`` atomically."""
    return write_serialized(path, lambda f: np.save(f, arr), suffix=".tmp.npy")


def save_grayscale(img: np.ndarray, path: Path) -> Path:
    """Write a 2-D image as 8-bit grayscale PNG or PDF (by suffix), min–max scaled as the original.

    (x − min) / (max − min) · 255.999, floored (the original's ``minmaxConvertToRGB``); a
    constant image is written black.
    """
    img = np.asarray(img, dtype=np.float64)
    lo, hi = float(img.min()), float(img.max())
    scaled = (img - lo) / (hi - lo) * 255.999 if hi > lo else np.zeros_like(img)
    fmt = {".png": "PNG", ".pdf": "PDF"}[path.suffix.lower()]
    with atomic_path(path, suffix=".tmp" + path.suffix) as tmp:
        Image.fromarray(scaled.astype(np.uint8)).save(tmp, format=fmt)  # 2-D uint8: mode "L"
    return path


def write_geotiff(
    path: Path,
    bands: np.ndarray,
    epsg: int,
    transform: Sequence[float],
    descriptions: Sequence[str] = (),
) -> Path:
    """Write (K, H, W) as a K-band float32 GeoTIFF in EPSG:``epsg`` on the affine ``transform``.

    ``transform`` is the 6 numbers (a, b, c, d, e, f) of the frames' grid (``io.Frames``); no
    nodata value (0 is a real value: no snow/ice). Opens in QGIS/GDAL as is.
    """
    # rasterio loads GDAL (slow, heavy): imported only where a GeoTIFF is written
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS

    bands = np.asarray(bands, dtype=np.float32)
    if bands.ndim == 2:
        bands = bands[None]
    profile = {
        "driver": "GTiff",
        "width": bands.shape[2],
        "height": bands.shape[1],
        "count": bands.shape[0],
        "dtype": "float32",
        "crs": CRS.from_epsg(int(epsg)),
        "transform": Affine(*[float(v) for v in transform[:6]]),
        "nodata": None,
        "compress": "deflate",
    }
    with atomic_path(path, suffix=".tmp.tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(bands)
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)
    return path


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None
) -> str:
    """A Markdown table: the ``header`` cells, a separator line and one line per row of cells.

    ``align`` has one letter per column, ``l`` (``---``) or ``r`` (``---:``); default all ``l``.
    Cells are written as given (format numbers before). Lines are joined by newlines, with no
    newline at the end: ``| a | b |`` / ``|---|---:|`` / ``| 1 | 2 |``.
    """
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} must be one letter l or r per column of {list(header)}")
    sep = "|" + "".join({"l": "---|", "r": "---:|"}[a] for a in align)
    return "\n".join(
        ["| " + " | ".join(header) + " |", sep, *("| " + " | ".join(r) + " |" for r in rows)]
    )
