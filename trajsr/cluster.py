"""The cluster a multi-worker training process belongs to (``TF_CONFIG``, or SLURM's ``srun``), checked
before TensorFlow starts, so that the CLI can refuse a bad one in one line without importing it."""
from __future__ import annotations

import json
import os

from .errors import TrajsrError


def check_cluster() -> None:
    """One-line errors, before TensorFlow starts, for a multi-worker run without a usable cluster: no
    ``TF_CONFIG`` (outside SLURM), or one that is not JSON with ``cluster`` and ``task`` (type, index)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
            return
        raise TrajsrError("--strategy multiworker needs a cluster: set TF_CONFIG in each worker process, or "
                          "start the workers with srun under SLURM (see the README)")
    try:
        config = json.loads(text)
    except ValueError as err:
        raise TrajsrError(f"TF_CONFIG is not valid JSON ({err})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise TrajsrError('TF_CONFIG needs "cluster" (e.g. {"worker": ["host1:port", "host2:port"]}) and "task" '
                          '({"type": "worker", "index": i})')
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if not isinstance(members, list) or isinstance(index, bool) or not isinstance(index, int) \
            or not 0 <= index < len(members):
        raise TrajsrError(f"TF_CONFIG: task {kind!r} index {index!r} is not in its cluster "
                          f"({', '.join(f'{k}: {len(v) if isinstance(v, list) else v}' for k, v in cluster.items())})")
