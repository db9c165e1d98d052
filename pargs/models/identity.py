"""What a model (or tokenizer) source holds, as one digest of its content, so a resumed run can tell a
retrained model from the one that made its earlier outputs even when the path is the same.

- A local directory: sha256 of each file that ``from_pretrained`` may read (every top-level file but a
  training run's state, :data:`NOT_READ`), combined with the file names into one ``sha256:...`` digest.
  Sub-folders are not read by ``from_pretrained`` and not hashed.
- A Hugging Face hub name found in the local cache: ``hub:<name>@<commit>`` (the cached snapshot's
  commit names its content; nothing is hashed).
- Anything else (a hub name not downloaded yet, a path that does not exist): None, and the name
  stands for the content.

Hashing reads every byte (sha256 runs at about 0.26 GiB/s on one core of the loaded 2-core
machine of the tests, and at 1-2 GiB/s on an idle core with SHA extensions: a 7B model in 14 GB costs
seconds to a minute). A metadata-only identity (the safetensors header, the file size) is not one: two
fine-tuning runs of one model have the same header and size. So each file's digest is cached by
``(path, size, mtime_ns)`` in :attr:`FileDigests.cache`, which the caller keeps between runs
(:mod:`pargs.lit.manifest` keeps it in the predictions' ``manifest.json``): a file is read again only
when its size or modification time changed, and then a copy with the same bytes (a deterministic
retraining) still gives the same digest. The cache trusts ``(size, mtime_ns)``: a file rewritten with
other bytes of the same size and its modification time set back is not noticed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

#: file names in a model directory that ``from_pretrained`` does not read (a trainer's state, notes)
NOT_READ = (
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    "*.ckpt",
    "README.md",
    ".gitattributes",
)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class FileDigests:
    """sha256 digests of model files and directories, cached by ``(path, size, mtime_ns)``.

    Args:
        cache: ``{resolved path: {"size", "mtime_ns", "sha256"}}`` from an earlier run (trusted while
            a file's size and modification time are unchanged).
    """

    def __init__(self, cache: dict[str, dict] | None = None) -> None:
        self.cache: dict[str, dict] = dict(cache or {})
        self.hashed_bytes = 0  #: bytes read this run (0 when every file was cached)

    def files(self, paths: list[Path]) -> dict[Path, str]:
        """The sha256 of each file, read (in parallel) only when the cache has no entry for its stat."""
        out, todo = {}, []
        for path in paths:
            real = str(path.resolve())
            st = os.stat(real)
            entry = self.cache.get(real)
            if entry and entry["size"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns:
                out[path] = entry["sha256"]
            else:
                todo.append((path, real, st))
        if todo:
            big = sum(st.st_size for _, _, st in todo)
            if big > 1 << 30:
                log.info("hashing %.1f GB of model files (once: the digests are kept with the predictions)", big / 1e9)
            with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1, 8)) as pool:
                digests = list(pool.map(lambda item: _sha256(Path(item[1])), todo))
            for (path, real, st), digest in zip(todo, digests):
                self.cache[real] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
                self.hashed_bytes += st.st_size
                out[path] = digest
        return out

    def directory(self, path: str | os.PathLike) -> str:
        """One ``sha256:`` digest of the files of a model directory that ``from_pretrained`` may read."""
        folder = Path(path)
        names = sorted(
            p for p in folder.iterdir() if p.is_file() and not any(fnmatch.fnmatch(p.name, pat) for pat in NOT_READ)
        )
        digests = self.files(names)
        combined = hashlib.sha256()
        for p in names:
            combined.update(f"{p.name}\0{digests[p]}\n".encode())
        return "sha256:" + combined.hexdigest()

    def source(self, name: str | None) -> str | None:
        """The content digest of a model or tokenizer source (a directory, a file or a hub name);
        None when it is neither local nor in the Hugging Face cache (then its name stands for it)."""
        if name is None:
            return None
        path = Path(name).expanduser()
        if path.is_dir():
            return self.directory(path)
        if path.is_file():
            return "sha256:" + self.files([path])[path]
        return hub_snapshot(name)


def hub_snapshot(name: str) -> str | None:
    """``hub:<name>@<commit>`` of a hub model in the local Hugging Face cache (no network), else None."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(name, local_files_only=True)
    except Exception:  # not a valid repo id, not downloaded, no cache: the name stands for the model
        return None
    return f"hub:{name}@{Path(folder).name}"
