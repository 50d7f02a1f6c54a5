"""The Debian package: lay out the file tree around the PyInstaller folder and run dpkg-deb.

Layout (everything owned by the package, so `dpkg -r` leaves nothing behind):

    /opt/pixcrawler/                     the PyInstaller folder (executable + _internal/)
    /usr/bin/pixcrawler                  -> /opt/pixcrawler/pixcrawler (every role)
    /usr/bin/pixcrawler-gui              starts the desktop app (the desktop entry's Exec)
    /usr/share/applications/pixcrawler.desktop
    /usr/share/icons/hicolor/{scalable,256x256}/apps/pixcrawler.{svg,png}
    /usr/share/doc/pixcrawler/copyright

No maintainer scripts: the desktop database and icon cache are refreshed by dpkg triggers.
"""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "pixcrawler"
INSTALL_DIR = Path("opt") / PACKAGE
# The system libraries the bundle leaves out (pixcrawler.spec, SYSTEM_LIBRARIES) or PyInstaller
# never bundles (GL, EGL, Wayland, libxcb): the desktop stack must match the running system.
DEPENDS = (
    "libgl1",
    "libegl1",
    "libfontconfig1",
    "libfreetype6",
    "libpng16-16",
    "libglib2.0-0",
    "libdbus-1-3",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-glx0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
)
# Qt's Wayland platform plugin needs these; without them Qt runs through XWayland (xcb).
RECOMMENDS = ("libwayland-client0", "libwayland-cursor0", "libwayland-egl1", "xdg-utils")
GUI_LAUNCHER = """#!/bin/sh
# Starts the PixCrawler desktop app (the desktop entry runs this).
exec /opt/pixcrawler/pixcrawler gui "$@"
"""
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: PixCrawler Desktop
Comment: /opt/pixcrawler holds a self-contained build: Python, Qt (through PySide6) and the
 Python libraries listed in the project's uv.lock, each under its own licence, and a
 Valkey server under /opt/pixcrawler/_internal/redis (BSD-3-Clause, licence text next to it).

Files: *
Copyright: PixCrawler contributors
License: MIT

Files: opt/pixcrawler/_internal/redis/*
Copyright: Valkey contributors; Redis Ltd.
License: BSD-3-Clause
Comment: Valkey, https://valkey.io. See opt/pixcrawler/_internal/redis/LICENSE-valkey.txt.

Files: opt/pixcrawler/_internal/PySide6/* opt/pixcrawler/_internal/shiboken6/*
Copyright: The Qt Company Ltd.
License: LGPL-3.0-only
Comment: Qt and PySide6, https://www.qt.io. Replaceable shared libraries.

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all
 copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.

License: BSD-3-Clause
 The full text ships with the server: /opt/pixcrawler/_internal/redis/LICENSE-valkey.txt

License: LGPL-3.0-only
 On Debian systems the full text is in /usr/share/common-licenses/LGPL-3.
"""


@dataclass(frozen=True)
class DebInfo:
    version: str
    architecture: str
    maintainer: str = "PixCrawler <packages@pixcrawler.invalid>"

    @property
    def file_name(self) -> str:
        return f"{PACKAGE}_{self.version}_{self.architecture}.deb"


def dpkg_architecture() -> str:
    out = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


_GLIBC = re.compile(r"\*UND\*.*\bGLIBC_(\d+(?:\.\d+)+)\b")


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def required_glibc(bundle: Path) -> str:
    """The newest glibc symbol version any program or library of `bundle` needs."""
    if shutil.which("objdump") is None:
        return platform.libc_ver()[1] or "2.31"  # the build machine's, a safe upper bound
    newest: tuple[int, ...] = (2, 17)
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink() and _is_elf(path):
            out = subprocess.run(
                ["objdump", "-T", str(path)], capture_output=True, text=True, check=False
            ).stdout
            for match in _GLIBC.finditer(out):
                newest = max(newest, tuple(int(n) for n in match.group(1).split(".")))
    return ".".join(str(n) for n in newest)


def _tree_size_kib(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return (total + 1023) // 1024


def control_text(info: DebInfo, installed_kib: int, glibc: str) -> str:
    depends = [f"libc6 (>= {glibc})", *DEPENDS]
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {info.version}\n"
        f"Architecture: {info.architecture}\n"
        f"Maintainer: {info.maintainer}\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(depends)}\n"
        f"Recommends: {', '.join(RECOMMENDS)}\n"
        "Section: graphics\n"
        "Priority: optional\n"
        "Homepage: https://github.com/pixcrawler\n"
        "Description: build clean image datasets from keywords\n"
        " PixCrawler Desktop turns keywords, URL lists and websites into deduplicated,\n"
        " labelled image datasets on your own computer. It includes its own Redis-compatible\n"
        " server (Valkey) and runs its crawl workers in the background.\n"
    )


def _md5sums(root: Path) -> str:
    lines = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and "DEBIAN" not in path.parts:
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            lines.append(f"{digest}  {path.relative_to(root).as_posix()}\n")
    return "".join(lines)


def _install(src: Path, dest: Path, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)


def _normalise_modes(root: Path) -> None:
    """0755 for folders and programs, 0644 for the rest, whatever the build machine's umask."""
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def stage_tree(bundle: Path, resources: Path, root: Path, info: DebInfo) -> Path:
    """Lay out the package tree for `bundle` (the PyInstaller folder) under `root`."""
    if root.exists():
        shutil.rmtree(root)
    target = root / INSTALL_DIR
    shutil.copytree(bundle, target, symlinks=True)
    bin_dir = root / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / PACKAGE).symlink_to(Path("/") / INSTALL_DIR / PACKAGE)
    (bin_dir / f"{PACKAGE}-gui").write_text(GUI_LAUNCHER)
    (bin_dir / f"{PACKAGE}-gui").chmod(0o755)
    share = root / "usr" / "share"
    _install(resources / "pixcrawler.desktop", share / "applications" / "pixcrawler.desktop")
    icons = share / "icons" / "hicolor"
    _install(resources / "pixcrawler.svg", icons / "scalable" / "apps" / "pixcrawler.svg")
    _install(resources / "pixcrawler.png", icons / "256x256" / "apps" / "pixcrawler.png")
    doc = share / "doc" / PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    _normalise_modes(root)
    debian = root / "DEBIAN"
    debian.mkdir()
    glibc = required_glibc(target)
    (debian / "control").write_text(control_text(info, _tree_size_kib(root), glibc))
    (debian / "md5sums").write_text(_md5sums(root))
    for name in ("control", "md5sums"):
        (debian / name).chmod(0o644)
    debian.chmod(0o755)
    return root


def build_deb(root: Path, out_dir: Path, info: DebInfo, compression: str = "zstd") -> Path:
    """`dpkg-deb --build` the staged tree; returns the .deb's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / info.file_name
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", f"-Z{compression}", str(root), str(deb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return deb
