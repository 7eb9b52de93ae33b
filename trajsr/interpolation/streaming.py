"""Upsample a coarse trajectory file with any interpolator, streaming it in chunks.

Each chunk is processed together with the last 2K kept frames of the one before (K: the
interpolator's ``context``), and only gaps whose whole context lies in the buffer are written, so the
output equals the in-memory result and memory stays bounded by the chunk size. A learned model's
gaps near the ends of the file fall back to the spline (see :mod:`.learned`); the summary says how many.
A chunk depends on the kept frames alone, so a method that leaves cores idle computes two at once (shooting:
``chunks_side_by_side``, each on a thread); chunks are written in the file's order, one at a time, while the
next ones compute.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import TrajsrError, raise_if_stopped
from ..io.stream import ChunkWriter, iter_chunks
from ..trajectory import Trajectory, check_factor, concatenate
from .gapreport import GapReport, SideFile
from .interpolator import Interpolator


@dataclasses.dataclass
class UpsampleSummary:
    """What :func:`upsample` did: kept and written frame counts, spline-fallback gaps, output path, and for
    a calibrated model the :class:`.gapreport.GapReport` (uncertainty, threshold, out-of-distribution gaps)."""

    kept_frames: int
    fine_frames: int
    spline_gaps: int
    output: Path | None
    gaps: GapReport | None = None
    #: gaps the gap guard replaced by the baseline (a learned path tore a bond; see :mod:`.gapguard`)
    guarded_gaps: int = 0
    #: whether the stored velocities were used: "with the file's velocities" or "from positions only"
    mode: str = "from positions only"
    #: what became of the velocities the method rebuilds: "written", "not kept by FORMAT" or "none rebuilt"
    velocities: str = "none rebuilt"


def as_interpolator(model, batch_size: int = 2048) -> Interpolator:
    """An :class:`Interpolator` as given, or a :class:`~.learned.LearnedInterpolator` for a
    ``.keras`` path or a ``keras.Model``; a propagator's ``.keras`` path fills gaps by shooting
    (:class:`~.shooting.ShootingInterpolator`)."""
    if isinstance(model, Interpolator):
        return model
    from ..modelfile import is_propagator
    if isinstance(model, (str, Path)) and is_propagator(model):  # unreadable: LearnedInterpolator names the file
        from .shooting import ShootingInterpolator
        return ShootingInterpolator.load(model)
    from .learned import LearnedInterpolator
    return LearnedInterpolator(model, batch_size)


def _factor_of(interp: Interpolator, factor) -> int:
    if interp.factor is not None:
        if factor is not None and check_factor(factor) != interp.factor:
            raise TrajsrError(f"the model upsamples by {interp.factor}, not {factor}")
        return interp.factor
    if factor is None:
        raise TrajsrError(f"{interp.name} needs an upsampling factor (--factor)")
    return check_factor(factor)


#: the chunks computed at once may hold this much memory together: their fine frames (positions and
#: velocities, float64) and the method's working memory (shooting's Jacobians and normal equations)
CHUNK_MEMORY_BYTES = 4 * 1024 ** 3


def _chunks_at_once(interp, part, factor, chunk, overlap) -> int:
    """How many chunks of a file like ``part`` to compute at once: the interpolator's
    :attr:`~.interpolator.Interpolator.chunks_side_by_side` where that many fit in :data:`CHUNK_MEMORY_BYTES`,
    else 1 (shooting at the default 5,000 kept frames a chunk: up to aspirin's 21 atoms two at once, from 23
    atoms one at a time). Where even one chunk would need more (a large factor, or shooting a large molecule
    from positions): one clear error, before any work, naming the ``--chunk`` that fits."""
    per_kept = interp.bytes_per_kept_frame(part, factor)
    at_once = interp.chunks_side_by_side
    if at_once * (chunk + overlap) * per_kept <= CHUNK_MEMORY_BYTES:
        return at_once
    if (chunk + overlap) * per_kept <= CHUNK_MEMORY_BYTES:
        return 1
    what = f"{interp.name} of {part.n_atoms} atoms at --factor {factor}"
    fitting = CHUNK_MEMORY_BYTES // per_kept - overlap
    if fitting < 2 * overlap:
        raise TrajsrError(f"{what} needs more than {CHUNK_MEMORY_BYTES / 1024 ** 3:g} GiB for even the smallest "
                          f"chunk ({2 * overlap} kept frames)")
    raise TrajsrError(f"{what} with --chunk {chunk} needs {(chunk + overlap) * per_kept / 1024 ** 3:.1f} GiB per "
                      f"chunk; use --chunk {fitting} or less")


def upsample_trajectory(coarse: Trajectory, model, factor: int | None = None, batch_size: int = 2048) -> Trajectory:
    """In memory: the fine trajectory (nm, ps) that ``model`` (an interpolator or a trained model) rebuilds."""
    interp = as_interpolator(model, batch_size)
    return interp.interpolate(coarse, _factor_of(interp, factor))


def upsample(coarse_path, model, output, *, factor: int | None = None, top=None, dt_fs=None, force: bool = False,
             chunk: int = 5000, batch_size: int = 2048, progress: bool = True, uncertainty: bool = False,
             max_uncertainty=None, positions_only: bool = False) -> UpsampleSummary:
    """Stream ``coarse_path`` through an interpolator into ``output`` (any format trajsr writes).

    Parameters
    ----------
    coarse_path : path
        Coarse trajectory; for a trained model its spacing must be the model's factor × dt (fs).
    model : Interpolator, path or keras.Model
        A baseline (``trajsr.get_baseline("spline")``) or a trained super-resolution model.
    output : path
        Fine trajectory to write; never overwritten without ``force``, and never the coarse file itself.
    factor : int, optional
        Upsampling factor; a trained model's own factor by default (baselines need it).
    top : path, optional
        Topology for formats without atoms.
    dt_fs : float, optional
        Spacing of the coarse frames in fs, for files without time.
    chunk : int
        Kept frames read per chunk (at least 4K).
    batch_size : int
        Gaps per inference batch of a trained model.
    uncertainty : bool
        Write the per-atom uncertainty (nm; a calibrated model): the ``uncertainty`` dataset of a trajsr
        ``.h5``, else the side file ``OUTPUT.uncertainty.npz``.
    max_uncertainty : float (nm) or "default", optional
        Replace the gaps above this uncertainty by Hermite (velocities stored) or the spline.
    positions_only : bool
        Ignore the velocities the file stores (rebuild from positions alone).
    """
    if Path(output).resolve() == Path(coarse_path).resolve():  # --force must not replace the user's coarse file
        raise TrajsrError(f"{output}: is the coarse file being upsampled; write the output elsewhere")
    interp = as_interpolator(model, batch_size)
    factor = _factor_of(interp, factor)
    overlap = 2 * interp.context
    if int(chunk) != chunk or chunk < 2 * overlap:
        raise TrajsrError(f"--chunk must be an integer of at least {2 * overlap} kept frames "
                          f"(4 x the context of {interp.context}), got {chunk}")
    from tqdm import tqdm
    buffer, first_gap, kept, guarded = None, 0, 0, 0
    from ..io.formats import format_for_writing, suffix_of
    fmt, velocities = format_for_writing(output), "none rebuilt"
    with SideFile(output, uncertainty and not fmt.keeps_uncertainty, force) as side, \
            ChunkWriter(output, force) as writer:  # the side file commits after the trajectory
        chunks = iter_chunks(coarse_path, top=top, dt_fs=dt_fs, chunk=chunk)
        if positions_only:
            chunks = (part.replace(velocities=None) for part in chunks)
        part = next(chunks, None)
        if part is None:
            raise TrajsrError(f"{coarse_path}: no frames")
        fmt.check_holds(output, part.is_periodic, coarse_path)
        mode = "with the file's velocities" if interp.uses_velocities(part) else "from positions only"
        interp.check(part, factor)  # before the progress bar: errors come alone on their line
        calibration, calibrated_options, report = interp.calibration_for(part, factor), {}, None
        if calibration is None and (uncertainty or max_uncertainty is not None):
            raise TrajsrError(f"{coarse_path}: {interp.name}: {interp.uncertainty_hint(part, factor)}")
        if calibration is not None:  # gaps are flagged against it even when no σ is asked for
            calibrated_options = dict(uncertainty=uncertainty, max_uncertainty=max_uncertainty)
            report = GapReport(calibration, max_uncertainty)
        at_once = _chunks_at_once(interp, part, factor, chunk, overlap)  # or a memory error
        bar = tqdm(desc="upsampling", unit=" kept frames", disable=None if progress else True)
        workers, writing = ThreadPoolExecutor(at_once), ThreadPoolExecutor(max_workers=1)
        stopping, computing, pending = threading.Event(), deque(), None
        try:
            while part is not None or computing:
                if part is not None:  # hand the next chunk to a worker
                    following = next(chunks, None)
                    kept += part.n_frames
                    buffer = part if buffer is None else concatenate([buffer, part])
                    last = following is None
                    if buffer.n_frames < 2:
                        raise TrajsrError(f"{coarse_path}: need at least 2 frames to upsample")
                    start = kept - buffer.n_frames  # global index of buffer[0]
                    own = {"starts_file": start == 0, "stop": stopping} if interp.solves_whole_chunks else {}
                    # gaps with the whole context inside the buffer (or at a true end of the file)
                    stop_gap = buffer.n_frames - 1 if last else buffer.n_frames - interp.context - 1
                    computing.append((workers.submit(interp.interpolate, buffer, factor, **calibrated_options, **own),
                                      start, first_gap, stop_gap, last, part.n_frames))
                    first_gap = start + stop_gap
                    buffer = buffer[max(0, buffer.n_frames - overlap):]
                    part = following
                    if part is not None and len(computing) < at_once:
                        continue
                future, start, first, stop_gap, last, n_read = computing.popleft()  # in the file's order
                fine = future.result()
                raise_if_stopped()  # a Ctrl-C a C library's callback swallowed while this thread waited
                lo, hi = (first - start) * factor, stop_gap * factor + (1 if last else 0)
                written = fine[lo:hi]
                if written.velocities is not None:
                    velocities = "written" if fmt.keeps_velocities else f"not kept by {suffix_of(output) or 'the format'}"
                if "guard_failed" in fine.info:
                    guarded += int(fine.info["guard_failed"][first - start:stop_gap].sum())
                if report is not None:
                    report.add(fine.info["gap_flags"], slice(first - start, stop_gap), written.uncertainty,
                               factor, fine.info.get("gap_difficulty"))
                    side.add(written.uncertainty)
                if pending is not None:
                    pending.result()  # one chunk being written: order kept, memory bounded
                pending = writing.submit(writer.write, written)  # written while the next ones compute
                bar.update(n_read)
            if pending is not None:
                pending.result()
        except BaseException:
            bar.leave = False  # clear the bar's line so the error stands alone
            raise
        finally:
            stopping.set()  # a chunk still computing (an error, Ctrl-C, SIGTERM) ends within a batch of paths
            workers.shutdown(wait=True, cancel_futures=True)
            writing.shutdown(wait=True)
            bar.close()
    if report is not None:
        report.warn_if_out_of_distribution(coarse_path, interp.out_of_distribution_means)
    return UpsampleSummary(kept, (kept - 1) * factor + 1, interp.edge_gaps(kept), Path(output), report, guarded, mode,
                           velocities)


_worker = {}


def _init_worker(model, batch_size, factor, options):
    from ..console import import_tensorflow
    from .baselines import BASELINES
    if isinstance(model, str) and model in BASELINES:
        _worker["interp"] = BASELINES[model]()
    else:
        if not isinstance(model, Interpolator):
            import_tensorflow()  # quietly, in each worker
        _worker["interp"] = as_interpolator(model, batch_size)
    _worker["factor"], _worker["options"] = factor, options


def _upsample_one(paths):
    source, target = paths
    return upsample(source, _worker["interp"], target, factor=_worker["factor"], progress=False, **_worker["options"])


def output_path(source, out_dir, suffix: str | None = None) -> Path:
    """Where :func:`upsample_many` writes ``source``: its name in ``out_dir``, ``suffix`` (``.dcd``) changing
    the format."""
    return Path(out_dir) / (Path(source).stem + (suffix or Path(source).suffix))


def check_targets(sources, out_dir, suffix: str | None = None, force: bool = False) -> list[Path]:
    """Where :func:`upsample_many` writes each of ``sources``; one clear error, before any work, for a missing
    ``out_dir``, two inputs of one name, an output that is its own input, or one that exists without ``force``."""
    from ..io.atomic import check_writable
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise TrajsrError(f"{out_dir}: no such directory (--out-dir)")
    targets = [output_path(s, out_dir, suffix) for s in sources]
    if len(set(targets)) != len(targets):
        raise TrajsrError("two inputs would write the same output name in --out-dir")
    for source, target in zip(sources, targets):
        if Path(source).resolve() == target.resolve():
            raise TrajsrError(f"{target}: would overwrite its own input; choose another --out-dir")
        check_writable(target, force)
    return targets


def upsample_many(sources, model, out_dir, *, factor: int | None = None, processes: int = 1, suffix: str | None = None,
                  batch_size: int = 2048, **options) -> list:
    """Upsample several files into ``out_dir`` (same names; ``suffix`` changes the format), one after
    another with one loaded model, or over ``processes`` processes (each loads the model once).

    ``model`` is a baseline name (``"spline"``), an :class:`Interpolator` (one process only) or a ``.keras``
    path; ``options`` go to :func:`upsample` (``top``, ``dt_fs``, ``force``, ``chunk``).
    Returns the :class:`UpsampleSummary` of each file, in order.
    """
    targets = check_targets(sources, out_dir, suffix, options.get("force", False))
    jobs = list(zip(map(str, sources), targets))
    if processes <= 1 or len(jobs) == 1:
        _init_worker(model, batch_size, factor, options)
        return [_upsample_one(job) for job in jobs]
    if isinstance(model, Interpolator):
        raise TrajsrError("several processes need the model as a file name or a baseline name")
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(min(processes, len(jobs)), _init_worker,
                                                    (str(model), batch_size, factor, options)) as pool:
        return pool.map(_upsample_one, jobs)
