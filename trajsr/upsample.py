"""Upsample a coarse trajectory file with a trained model, streaming it in chunks.

Each chunk is processed together with the last 2K kept frames of the one before, and only gaps whose
whole context lies in the buffer are written, so the output equals the in-memory result and memory
stays bounded by the chunk size. Gaps within K − 1 of either end of the file have too little context
and fall back to a cubic spline through the 2K nearest kept frames; the summary says how many.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path


from .errors import TrajsrError
from .io.stream import ChunkWriter, iter_chunks
from .learned import LearnedInterpolator
from .trajectory import Trajectory, concatenate


@dataclasses.dataclass
class UpsampleSummary:
    """What :func:`upsample` did: kept and written frame counts, spline-fallback gaps, output path."""

    kept_frames: int
    fine_frames: int
    spline_gaps: int
    output: Path | None


def upsample_trajectory(coarse: Trajectory, model, batch_size: int = 2048) -> Trajectory:
    """In memory: the fine trajectory (nm, ps) that ``model`` rebuilds from ``coarse``."""
    interpolator = model if isinstance(model, LearnedInterpolator) else LearnedInterpolator(model, batch_size)
    return interpolator.interpolate(coarse)


def upsample(coarse_path, model, output, *, top=None, dt_fs=None, force: bool = False, chunk: int = 5000,
             batch_size: int = 2048, progress: bool = True) -> UpsampleSummary:
    """Stream ``coarse_path`` through ``model`` into ``output`` (any format trajsr writes).

    Parameters
    ----------
    coarse_path : path
        Coarse trajectory; its spacing must be the model's factor × dt (fs), or give ``dt_fs``.
    model : path, keras.Model or LearnedInterpolator
        A trained super-resolution model.
    output : path
        Fine trajectory to write; never overwritten without ``force``.
    chunk : int
        Kept frames read per chunk.
    """
    from tqdm import tqdm
    interp = model if isinstance(model, LearnedInterpolator) else LearnedInterpolator(model, batch_size)
    factor, overlap = interp.factor, 2 * interp.context
    if chunk < 2 * overlap:
        raise TrajsrError(f"chunk must hold at least {2 * overlap} kept frames, got {chunk}")
    buffer, first_gap, kept = None, 0, 0
    bar = tqdm(desc="upsampling", unit=" kept frames", disable=not progress)
    with ChunkWriter(output, force) as writer:
        chunks = iter_chunks(coarse_path, top=top, dt_fs=dt_fs, chunk=chunk)
        part = next(chunks, None)
        if part is None:
            raise TrajsrError(f"{coarse_path}: no frames")
        while part is not None:
            following = next(chunks, None)
            kept += part.n_frames
            buffer = part if buffer is None else concatenate([buffer, part])
            last = following is None
            if buffer.n_frames < 2:
                raise TrajsrError(f"{coarse_path}: need at least 2 frames to upsample")
            fine = interp.interpolate(buffer)
            start = kept - buffer.n_frames  # global index of buffer[0]
            # gaps with the whole context inside the buffer (or at a true end of the file)
            stop_gap = buffer.n_frames - 1 if last else buffer.n_frames - interp.context - 1
            lo, hi = (first_gap - start) * factor, stop_gap * factor + (1 if last else 0)
            writer.write(fine[lo:hi])
            first_gap = start + stop_gap
            bar.update(part.n_frames)
            buffer = buffer[max(0, buffer.n_frames - overlap):]
            part = following
        bar.close()
    interior = max(0, kept - 2 * interp.context + 1)  # gaps with K kept frames on each side
    return UpsampleSummary(kept, (kept - 1) * factor + 1, kept - 1 - interior, Path(output))

