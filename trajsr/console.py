"""The console side of the CLI: one-line argument errors, checked numeric options, SIGTERM as a clean
exit, and a TensorFlow import without its start-up noise that keeps compiled XLA programs between runs."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from pathlib import Path

from .errors import Terminated


class DefaultsHelp(argparse.HelpFormatter):
    """Help that states each option's default, where it has one worth stating (not None, not off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default == argparse.SUPPRESS
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``trajsr: error: ...``), exit status 2, and defaults in ``--help``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelp)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"trajsr: error: {message} (see '{self.prog} --help')\n")


class Once(argparse._StoreAction):
    """An option with two spellings (the current one and an earlier one), to be given once: argparse would
    silently keep the last of ``--architecture lstm --model bilstm``."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_spellings_given", {})
        if self.dest in given:
            twice = f"{option_string} given twice" if given[self.dest] == option_string else \
                f"{given[self.dest]} and {option_string} are the same option ({' / '.join(self.option_strings)})"
            parser.error(f"{twice}: give it once")
        given[self.dest] = option_string
        super().__call__(parser, namespace, values, option_string)


def number(kind, low, inclusive, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


COUNT = number(int, 1, True, "a positive integer")
INDEX = number(int, -10 ** 18, True, "an integer")
FACTOR = number(int, 2, True, "an integer factor >= 2")
POSITIVE = number(float, 0.0, False, "a positive, finite number")
NONNEGATIVE = number(int, 0, True, "a non-negative integer")


def or_default(parse):
    """``parse``, except that the word ``default`` passes through (an option whose bare form means it)."""
    return lambda text: text if text == "default" else parse(text)


def terminate(signum, frame):
    """SIGTERM's handler in the CLI: :class:`~trajsr.errors.Terminated` (partial outputs are removed)."""
    raise Terminated()


#: the kept programs take at most this much disk (MB), the least recently used deleted first; every new
#: model or setting adds programs of ~1 MB (the weights are compiled in) that nothing else removes
XLA_CACHE_MB = 1000


def keep_compiled_programs() -> Path | None:
    """Point TensorFlow's persistent XLA cache at ``$XDG_CACHE_HOME/trajsr/xla`` (``~/.cache/trajsr/xla``;
    ``TRAJSR_XLA_CACHE`` names another folder, or "" for none) before TensorFlow is imported, so a
    rollout's compilation (~1.5 s of every ``trajsr propagate``) is paid once per machine and program. An
    entry is used only when its program matches exactly (TensorFlow compares the whole HLO), written to a
    temporary file and renamed (runs in parallel are safe). The folder is trimmed to :data:`XLA_CACHE_MB`
    (``TRAJSR_XLA_CACHE_MB`` sets another size) by :func:`trim_compiled_programs`. Nothing is set when the
    user's ``TF_XLA_FLAGS`` already name a cache or the folder cannot be written (or has white space in its
    path); returns the folder in use."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "tf_xla_persistent_cache_directory" in flags:
        return None
    limit_mb = xla_cache_limit_mb()
    try:
        folder = os.environ.get("TRAJSR_XLA_CACHE")
        if folder is None:
            folder = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trajsr" / "xla")
        if not folder or any(c.isspace() for c in folder):  # TF_XLA_FLAGS is split at white space
            return None
        Path(folder).mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            return None
    except (OSError, RuntimeError):  # RuntimeError: no home folder to be found
        return None
    try:
        trim_compiled_programs(Path(folder), limit_mb)
    except OSError:  # a folder that cannot be listed: it still serves as the cache
        pass
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={folder}".strip()
    return Path(folder)


def xla_cache_limit_mb() -> float:
    """The kept programs' size limit (MB): ``TRAJSR_XLA_CACHE_MB`` or :data:`XLA_CACHE_MB`; a value that is
    not a number >= 0 is a :class:`~trajsr.errors.TrajsrError` (the CLI checks it before any command starts)."""
    limit = os.environ.get("TRAJSR_XLA_CACHE_MB", "").strip()
    try:
        limit_mb = float(limit) if limit else float(XLA_CACHE_MB)
    except ValueError:
        limit_mb = math.nan
    if not 0 <= limit_mb < math.inf:
        from .errors import TrajsrError
        raise TrajsrError(f"TRAJSR_XLA_CACHE_MB must be a size in MB (a number >= 0), got {limit!r}")
    return limit_mb


def trim_compiled_programs(folder: Path, limit_mb: float) -> int:
    """Delete the least recently used of TensorFlow's kept programs in ``folder`` (``xla_compile_cache__*.pb``;
    nothing else there is touched) until they take at most ``limit_mb`` MB. "Used" is the later of a file's
    access and modification times (access times are kept at least daily on Linux's default ``relatime``).
    Returns how many files it deleted; a file another run deleted first, or one this user may not delete, is
    passed over."""
    programs = []
    for entry in os.scandir(folder):
        if entry.name.startswith("xla_compile_cache__") and entry.name.endswith(".pb") \
                and entry.is_file(follow_symlinks=False):
            stat = entry.stat(follow_symlinks=False)
            programs.append((max(stat.st_atime, stat.st_mtime), stat.st_size, entry.path))
    total, deleted = sum(size for _, size, _ in programs), 0
    for _, size, path in sorted(programs):
        if total <= limit_mb * 1e6:
            break
        try:
            os.unlink(path)
        except FileNotFoundError:  # another run deleted it first
            pass
        except OSError:  # not ours to delete (a shared folder): the next one
            continue
        else:
            deleted += 1
        total -= size
    return deleted


def import_tensorflow(before_devices=None, start_devices: bool = True) -> None:
    """Import TensorFlow without its start-up noise (absl, CUDA probing, CPU-feature notes): C-level
    stderr is captured during the import and only lines that are not known noise are passed on.
    ``before_devices`` (a callable) runs inside the capture before the devices start: a multi-worker
    strategy is created there (its collectives must be configured first). ``start_devices`` (the CLI)
    also starts the devices inside the capture and keeps TensorFlow's Python warnings (tf.function
    retracing) off the console."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keep_compiled_programs()
    noise = re.compile(r"absl::InitializeLog|cudart_stub|cuInit|cuda_(platform|diagnostics|executor)|"
                       r"cpu_feature_guard|To enable the following instructions|rebuild TensorFlow|"
                       r"Unable to register cu|computation_placer|TF-TRT|oneDNN custom operations")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf
            if before_devices is not None:
                before_devices()
            if start_devices:
                tf.config.list_logical_devices()  # device start-up logs its probing now, into the capture
                tf.get_logger().setLevel("ERROR")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip() and not noise.search(line):
                    print(line, file=sys.stderr)


