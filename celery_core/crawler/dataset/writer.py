"""The dataset on disk: `<root>/<category>/<keyword>/0001.jpg ...` plus `<root>/manifest.jsonl`.

Each image is written to a hidden temp name in its folder and then linked to its final name,
so a crash leaves either a whole image or a temp file (removed at the next start), never half
an image under a dataset name. The manifest gets one JSON line per kept image, appended with a
single write under an exclusive lock, so several worker processes can share it.
Files are not fsynced (speed): the guarantees hold for a crashed process; after a power cut an
image may be left empty under its name, which the next run of its keyword fetches again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from celery_core.crawler.dataset.names import safe_name
from celery_core.crawler.dataset.temp_files import (
    TEMP_MAX_AGE_S,
    remove_stray_temp_files,
    temp_name,
)
from celery_core.crawler.images.check import (
    EXTENSIONS,
    CheckedImage,
    ImageRules,
    InvalidImage,
    check_image,
)

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: one process per dataset, guarded by the thread lock only
    fcntl = None

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
LOCK_NAME = ".lock"
# Locks live beside the dataset, not among the images a training script will list.
LOCK_DIR = ".pixcrawler/locks"
_EXTENSIONS = tuple(EXTENSIONS.values())
_NUMBERED = re.compile(r"^(\d+)\.[A-Za-z0-9]+$")
_append_lock = threading.Lock()
# flock covers other processes (and other open files in this one); this covers platforms
# without fcntl.
_folder_thread_lock = threading.RLock()


# Lenient rules for adopting files a crash left without a manifest line: they passed the
# checks when they were written, perhaps under other settings.
_ADOPT_RULES = ImageRules(
    max_pixels=170_000_000,
    allowed_formats=frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}),
)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ManifestEntry:
    """One kept image, as one line of `manifest.jsonl`."""

    path: str  # relative to the dataset root, "/" separators
    url: str | None  # as the source found it (what a re-run compares)
    source_page: str | None
    source: str
    sha256: str
    phash: str  # 16 hex digits
    width: int
    height: int
    format: str
    bytes: int
    category: str
    keyword: str
    fetched_at: str
    final_url: str | None = None  # where the image was after redirects, when different

    @classmethod
    def from_checked(
        cls,
        checked: CheckedImage,
        *,
        path: str,
        size: int,
        category: str,
        keyword: str,
        url: str | None,
        source: str,
        source_page: str | None = None,
        final_url: str | None = None,
        fetched: datetime | None = None,
    ) -> ManifestEntry:
        when = fetched or datetime.now(UTC)
        return cls(
            path=path,
            url=url,
            source_page=source_page,
            source=source,
            sha256=checked.sha256,
            phash=checked.phash_hex,
            width=checked.width,
            height=checked.height,
            format=checked.format,
            bytes=size,
            category=category,
            keyword=keyword,
            fetched_at=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            final_url=final_url,
        )

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        return cls(
            path=str(data["path"]),
            url=data.get("url"),
            source_page=data.get("source_page"),
            source=str(data.get("source", "")),
            sha256=str(data["sha256"]),
            phash=str(data.get("phash", "0" * 16)),
            width=int(data.get("width", 0)),
            height=int(data.get("height", 0)),
            format=str(data.get("format", "")),
            bytes=int(data.get("bytes", 0)),
            category=str(data.get("category", "")),
            keyword=str(data.get("keyword", "")),
            fetched_at=str(data.get("fetched_at", "")),
            final_url=data.get("final_url"),
        )


@dataclass
class ExistingImages:
    """What the manifest says was kept; a keyword re-run skips its own URLs and contents."""

    entries: list[ManifestEntry] = field(default_factory=list)
    urls: set[str] = field(default_factory=set)
    sha256s: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)

    def add(self, entry: ManifestEntry) -> None:
        self.entries.append(entry)
        if entry.url:
            self.urls.add(entry.url)
        self.sha256s.add(entry.sha256)
        self.paths.add(entry.path)

    def in_folder(self, relative_folder: str) -> int:
        prefix = relative_folder.rstrip("/") + "/"
        return sum(1 for path in self.paths if path.startswith(prefix))

    def of_folder(self, relative_folder: str) -> ExistingImages:
        """Only the entries kept in one keyword's folder."""
        prefix = relative_folder.rstrip("/") + "/"
        subset = ExistingImages()
        for entry in self.entries:
            if entry.path.startswith(prefix):
                subset.add(entry)
        return subset

    def on_disk(self, root: Path) -> tuple[ExistingImages, list[ManifestEntry]]:
        """The entries whose file is still there, and those whose file is there but empty.

        An image removed by hand (a dataset being curated) no longer counts toward the target,
        so a re-run tops the folder up; its URL and content stay known, so the re-run does not
        fetch that picture again. An empty file is what a power cut leaves when the file had
        its name but its bytes never reached the disk (they are not fsynced): it does not
        count either, and its URL and content are not known, so the re-run fetches it again.
        """
        present, emptied = ExistingImages(), []
        for entry in self.entries:
            size = file_size(root / entry.path)
            if size == 0:
                emptied.append(entry)
                continue
            if entry.url:
                present.urls.add(entry.url)
            present.sha256s.add(entry.sha256)
            if size is not None:
                present.entries.append(entry)
                present.paths.add(entry.path)
        return present, emptied

    def highest_number(self) -> int:
        """The largest running number any entry was given (0: none)."""
        numbers = (_NUMBERED.match(entry.path.rsplit("/", 1)[-1]) for entry in self.entries)
        return max((int(m.group(1)) for m in numbers if m), default=0)

    def hashes(self) -> Iterator[tuple[str, int, str]]:
        """(sha256, phash, path) of every entry, to seed a duplicate index."""
        for entry in self.entries:
            yield entry.sha256, int(entry.phash, 16), entry.path


@dataclass
class KeywordFolder:
    """The folder of one keyword and the next free running number in it."""

    path: Path
    relative: str
    next_number: int

    def name_for(self, number: int, ext: str) -> str:
        return f"{number:04d}.{ext}"


class Dataset:
    """Reads and writes one dataset root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / MANIFEST_NAME

    # --- folders --------------------------------------------------------------------------

    def relative_folder(self, category: str, keyword: str) -> str:
        return f"{safe_name(category)}/{safe_name(keyword)}"

    def prepare_folder(self, category: str, keyword: str) -> KeywordFolder:
        """Create the keyword's folder, drop stray temp files, find the next number."""
        relative = self.relative_folder(category, keyword)
        path = self.root / relative
        path.mkdir(parents=True, exist_ok=True)
        self.remove_temp_files(path)
        numbers = [int(m.group(1)) for m in map(_NUMBERED.match, os.listdir(path)) if m]
        return KeywordFolder(path, relative, max(numbers, default=0) + 1)

    @staticmethod
    def remove_temp_files(folder: Path, older_than: float = TEMP_MAX_AGE_S) -> int:
        return remove_stray_temp_files(folder, older_than)

    def lock_path(self, folder: KeywordFolder) -> Path:
        directory = self.root / LOCK_DIR
        directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(folder.relative.encode("utf-8")).hexdigest()[:16]
        return directory / f"{digest}{LOCK_NAME}"

    @contextmanager
    def folder_lock(self, folder: KeywordFolder) -> Iterator[None]:
        """Held while a file gets its final name and its manifest line, and while orphans are
        looked for: so no crawl of the same folder sees a file without its line."""
        with _folder_thread_lock:
            fd = os.open(self.lock_path(folder), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                with _locked(fd, exclusive=True):
                    yield
            finally:
                os.close(fd)

    def orphans(self, folder: KeywordFolder, known: set[str]) -> list[Path]:
        """Numbered files with no manifest line (a crash came between the file and its line)."""
        found = []
        for name in sorted(os.listdir(folder.path)):
            if _NUMBERED.match(name) and f"{folder.relative}/{name}" not in known:
                found.append(folder.path / name)
        return found

    # --- images ---------------------------------------------------------------------------

    def write_image(
        self,
        folder: KeywordFolder,
        ext: str,
        data: bytes,
        decide: Callable[[str], ManifestEntry | None],
    ) -> str | None:
        """Store `data` as the next free number in `folder` and return its relative path.

        The bytes go to a temp file first; then, under the folder lock, the file takes the
        first free name and `decide(path)` is asked for its manifest entry (None: drop the
        file, e.g. a duplicate). Names are taken with a hard link, which fails instead of
        replacing, so crawls sharing the folder never overwrite each other and `path` is
        unique when `decide` sees it. If `decide` raises, the file is removed.
        """
        temp = folder.path / temp_name(ext)
        try:
            with open(temp, "xb") as handle:
                handle.write(data)
            with self.folder_lock(folder):
                while True:
                    name = folder.name_for(folder.next_number, ext)
                    try:
                        if _number_taken(folder, folder.next_number):
                            raise FileExistsError(name)
                        _commit(temp, folder.path / name)
                        break
                    except FileExistsError:
                        folder.next_number += 1
                relative = f"{folder.relative}/{name}"
                try:
                    entry = decide(relative)
                    if entry is not None:
                        self.append_manifest(entry)
                except BaseException:
                    (folder.path / name).unlink()
                    raise
                if entry is None:
                    (folder.path / name).unlink()
                    return None
                folder.next_number += 1
                return relative
        finally:
            if temp.exists():
                temp.unlink()

    # --- manifest -------------------------------------------------------------------------

    def append_manifest(self, *entries: ManifestEntry) -> None:
        if not entries:
            return
        data = "".join(entry.to_line() for entry in entries).encode("utf-8")
        self.root.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        with _append_lock:
            fd = os.open(self.manifest_path, flags, 0o644)
            try:
                with _locked(fd, exclusive=True):
                    end = os.fstat(fd).st_size
                    view = memoryview(data)
                    try:
                        while view:
                            written = os.write(fd, view)
                            view = view[written:]
                    except OSError:
                        # A full disk can take part of the lines: cut them off, or the next
                        # line appended would be glued to a torn one and lost with it.
                        with suppress(OSError):
                            os.ftruncate(fd, end)
                        raise
            finally:
                os.close(fd)

    def read_manifest(self) -> list[ManifestEntry]:
        """Every well-formed line; a torn last line (crash mid-write) is ignored."""
        if not self.manifest_path.exists():
            return []
        with open(self.manifest_path, "rb") as handle, _locked(handle.fileno(), exclusive=False):
            raw = handle.read()
        entries = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entries.append(ManifestEntry.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
        return entries

    def existing(self) -> ExistingImages:
        known = ExistingImages()
        for entry in self.read_manifest():
            known.add(entry)
        return known


def adopt_orphans(
    dataset: Dataset,
    folder: KeywordFolder,
    existing: ExistingImages,
    category: str,
    keyword: str,
) -> list[ManifestEntry]:
    """Give files that a crash left without a manifest line their line back (source
    "recovered", no URL), so re-runs count them and deduplicate against them."""
    adopted: list[ManifestEntry] = []
    with dataset.folder_lock(folder):
        known = existing.paths | {entry.path for entry in dataset.read_manifest()}
        for path in dataset.orphans(folder, known):
            entry = _adopt(dataset, folder, path, category, keyword)
            if entry is not None:
                adopted.append(entry)
    return adopted


def _adopt(
    dataset: Dataset, folder: KeywordFolder, path: Path, category: str, keyword: str
) -> ManifestEntry | None:
    data = path.read_bytes()
    try:
        checked = check_image(data, _ADOPT_RULES)
    except InvalidImage as exc:
        log.warning("leaving %s alone: %s", path, exc)
        return None
    entry = ManifestEntry.from_checked(
        checked,
        path=f"{folder.relative}/{path.name}",
        size=len(data),
        category=category,
        keyword=keyword,
        url=None,
        source="recovered",
        fetched=datetime.fromtimestamp(path.stat().st_mtime, UTC),
    )
    dataset.append_manifest(entry)
    return entry


def file_size(path: Path) -> int | None:
    """The size of a regular file, or None when there is none."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _number_taken(folder: KeywordFolder, number: int) -> bool:
    """Whether another crawl of the folder used `number` (with any image extension)."""
    return any((folder.path / folder.name_for(number, ext)).exists() for ext in _EXTENSIONS)


def _commit(temp: Path, final: Path) -> None:
    """Give `temp` the name `final` atomically, never replacing an existing file."""
    try:
        os.link(temp, final)
    except FileExistsError:
        raise
    except OSError:
        # No hard links here (some network or FAT drives): rename instead.
        if os.name == "nt":
            os.rename(temp, final)  # refuses an existing target on Windows
            return
        if final.exists():
            raise FileExistsError(final) from None
        os.rename(temp, final)
        return
    temp.unlink()


@contextmanager
def _locked(fd: int, exclusive: bool) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
