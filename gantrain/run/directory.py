"""The run directory: its layout, the saved config, what a resume may change, and metrics.jsonl;
and the checks of other output paths a command writes (``check_target``, ``check_makeable``).

    <run>/.hydra/config.yaml      the full config (what ``resume=<run>`` reloads)
    <run>/.hydra/overrides.yaml   the command-line overrides that made it
    <run>/checkpoints/            G, D, both optimizers, step, RNG state, fixed sample noise
    <run>/samples/step_NNNNNN.png previews from the fixed noise
    <run>/metrics.jsonl           one JSON object per log step
    <run>/environment.jsonl       versions, commit and devices, one line per start or resume
    <run>/tb/                     TensorBoard events (logger=tensorboard, the default)
    <run>/metrics.csv             logger=csv: the metrics as a table
    <run>/wandb/, <run>/wandb.id  logger=wandb: its files, and the W&B run a resume continues
    <run>/mlflow.id               logger=mlflow: the MLflow run a resume continues
    <run>/gantrain.log            the console log
    <run>/.lock                   while a process writes the run: its PID (RunLock)
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gantrain.config import RESUMABLE_KEYS
from gantrain.errors import ConfigError, GantrainError, naming

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / ".hydra" / "config.yaml"
        self.overrides = self.root / ".hydra" / "overrides.yaml"
        self.checkpoints = self.root / "checkpoints"
        self.samples = self.root / "samples"
        self.metrics = self.root / "metrics.jsonl"
        self.tb = self.root / "tb"
        self.environment = self.root / "environment.jsonl"

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"

    def holds_run(self) -> bool:
        return self.config.exists() or self.checkpoints.exists()

    def check_new(self) -> None:
        """A new run never reuses a directory that holds one."""
        if self.holds_run():
            raise GantrainError(
                f"{self.root} already holds a run; continue it with resume={self.root} or choose another hydra.run.dir"
            )

    def check_resumable(self) -> None:
        if not self.config.is_file():
            raise ConfigError("resume", f"{self.root} is not a gantrain run (no .hydra/config.yaml)")

    def save_config(self, cfg: DictConfig, overrides: list[str] | None = None) -> None:
        atomic_write(self.config, OmegaConf.to_yaml(cfg))
        if overrides is not None:
            atomic_write(self.overrides, OmegaConf.to_yaml(OmegaConf.create(list(overrides))))

    def record_environment(self, record: dict) -> None:
        """Append what this start of the run runs on (gantrain.run.environment) to environment.jsonl."""
        try:
            with open(self.environment, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            raise GantrainError(f"cannot write {self.environment} ({err.strerror or err})") from None

    def saved_config(self) -> DictConfig:
        """The run's saved config; one that cannot be read (a full disk cut it, a hand edit broke
        it) is a GantrainError naming the file."""
        try:
            saved = OmegaConf.load(self.config)
        except (OSError, yaml.YAMLError, OmegaConfBaseException) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise GantrainError(f"{self.config} cannot be read ({reason})") from None
        if not isinstance(saved, DictConfig):
            raise GantrainError(f"{self.config} cannot be read (it holds no config)")
        return saved

    def resumed_config(self, composed: DictConfig, overrides: list[str]) -> DictConfig:
        """The saved config, with only the resumable keys taken from this command's overrides."""
        self.check_resumable()
        saved = self.saved_config()
        for override in overrides:
            key = override.split("=", 1)[0].lstrip("+~")
            if key == "resume":
                continue
            if key not in RESUMABLE_KEYS:
                raise ConfigError(key, f"cannot change when resuming; only {', '.join(RESUMABLE_KEYS)} can")
            OmegaConf.update(saved, key, OmegaConf.select(composed, key))
        return saved


class RunInUse(GantrainError):
    """Another process holds the run directory's lock."""


class RunLock:
    """One process at a time writes a run directory: an exclusive ``flock`` on ``<run>/.lock``,
    which holds the holder's PID. The OS releases it when the process dies, so a killed run leaves
    no stale lock; a second take by the process holding it is free (the CLI takes it, then train()).

    Usage: ``with RunLock(run.root): ...`` (RunInUse naming the other PID if it is taken).
    """

    _held: dict[Path, list] = {}  # the locks this process holds: path -> [file descriptor, depth]

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root.resolve() / ".lock"

    def __enter__(self) -> RunLock:
        if self.path in self._held:
            self._held[self.path][1] += 1
        else:
            self._held[self.path] = [self._take(), 1]
        return self

    def __exit__(self, *exc) -> None:
        held = self._held[self.path]
        held[1] -= 1
        if held[1] == 0:
            del self._held[self.path]
            # Removed while still locked: a process that opened it meanwhile sees it is gone.
            self.path.unlink(missing_ok=True)
            os.close(held[0])

    def _take(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunInUse(
                    f"{display_path(self.root)} is in use by another gantrain process (PID {holder}); "
                    "wait for it to end or stop it"
                ) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)  # its holder removed it as we opened it: take the new one


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


class MetricsLog:
    """Appends one JSON object per line to metrics.jsonl."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (written after the checkpoint a resume starts from)."""
        if not self.path.exists():
            return
        kept = [json.dumps(record) + "\n" for record in read_jsonl(self.path) if record.get("step", 0) <= step]
        atomic_write(self.path, "".join(kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class NewDirectories:
    """The directories a command is about to create for its run (the run directory and any of its
    parents that do not exist yet), so that a command refused after Hydra made them can remove
    them again without touching anything that existed before."""

    def __init__(self):
        self.planned: list[Path] = []  # deepest first

    def plan(self, run_dir: str | Path) -> None:
        path = Path(run_dir).absolute()
        self.planned = []
        while not path.exists() and path != path.parent:
            self.planned.append(path)
            path = path.parent

    def remove(self, run_dir: str | Path) -> None:
        """Remove ``run_dir`` if this command created it, then the parents it created if empty."""
        if not self.planned or Path(run_dir).absolute() != self.planned[0]:
            return
        shutil.rmtree(self.planned[0], ignore_errors=True)
        for parent in self.planned[1:]:
            try:
                parent.rmdir()  # only when empty: another command may have put a run there since
            except OSError:
                break


def check_makeable(path: str | Path, key: str) -> None:
    """Refuse a directory to be made that is a file or lies below one, or below a folder this user
    cannot write, naming the config ``key`` that set it: Hydra would stop with a traceback when it
    makes the directory."""
    path = Path(path).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())  # the root at the latest
    if not existing.is_dir():
        raise ConfigError(key, f"{display_path(existing)} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(key, f"{display_path(existing)} is not writable (read-only, or not yours)")


def check_target(path: Path, key: str, overwrite: bool, folder: bool = False) -> None:
    """Refuse an output ``path`` (set by ``key``) that holds something of the user's: an existing
    file, or a folder that is not empty, is written to only with ``overwrite=true``; a file where a
    folder goes (or a folder where a file goes) never."""
    if not path.exists():
        return
    if path.is_dir() != folder:
        raise ConfigError(key, f"{path} is a {'file' if folder else 'folder'}; name a {'folder' if folder else 'file'}")
    if overwrite:
        return
    if not folder:
        raise ConfigError(key, f"{path} exists; choose a new name or add overwrite=true")
    if any(path.iterdir()):
        raise ConfigError(key, f"{path} is not an empty folder; choose a new one or add overwrite=true")


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write via a temporary file and a rename: readers never see a half-written file. A failed
    write (a full disk) leaves nothing behind, not even the folders made for it, and raises an
    OSError naming ``path``."""
    tmp = temporary_path(path)
    with new_folders(path.parent):
        try:
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                tmp.write_text(content)
            os.replace(tmp, path)
        except OSError as err:
            raise naming(err, path) from None
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def new_folders(folder: Path) -> Iterator[None]:
    """Make ``folder`` and its missing parents for the block; if the block fails, remove those
    it made again (each only if empty: another writer may have put a file there since)."""
    made = []  # deepest first
    for missing in (folder, *folder.parents):
        if missing.exists() or missing.is_symlink():
            break
        made.append(missing)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException:
        for missing in made:
            try:
                missing.rmdir()
            except OSError:
                break
        raise


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a run's ``.jsonl`` file, one per line; a line that is not one (torn by a
    crash, edited by hand) is left out with a warning naming the file and the line."""
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            log.warning("%s: line %d is not a JSON object; left out: %.60s", display_path(path), number, line)
    return records


def temporary_path(path: Path) -> Path:
    """A hidden name beside ``path`` that no other writer uses (its process id and a random part):
    jobs that a launcher runs at once may write the same file, and each renames only its own."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An .npz file's bytes, for :func:`atomic_write`."""
    import numpy as np  # here: the command line imports this module, and starts faster without it

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against allow_pickle: bool
    return buffer.getvalue()
