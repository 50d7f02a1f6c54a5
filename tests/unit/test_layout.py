"""The layout stays one a newcomer can find their way in: small rooms, small modules."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("celery_core", "pixcrawler_gui")
TOP_LIMITS = {"celery_core": 6}  # modules directly in a package; 8 for any other package
FOLDER_LIMIT = 24  # modules in any one folder, tests and bench included
MODULE_LINES = 500


def _modules_in(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*.py") if p.name != "__init__.py"]


def _packages() -> list[Path]:
    return [init.parent for name in PACKAGES for init in (REPO / name).rglob("__init__.py")]


def test_the_checks_see_the_tree() -> None:
    assert len(_packages()) > 20  # a wrong REPO would make every check below pass vacuously


def test_no_package_has_more_than_eight_modules_at_its_top() -> None:
    crowded = {}
    for folder in _packages():
        limit = TOP_LIMITS.get(str(folder.relative_to(REPO)), 8)
        if len(_modules_in(folder)) > limit:
            crowded[str(folder.relative_to(REPO))] = len(_modules_in(folder))
    assert crowded == {}


def test_no_folder_holds_more_than_24_modules() -> None:
    roots = (*PACKAGES, "tests", "bench")
    folders = {p.parent for name in roots for p in (REPO / name).rglob("*.py")}
    counts = {str(f.relative_to(REPO)): len(_modules_in(f)) for f in folders}
    assert {f: n for f, n in counts.items() if n > FOLDER_LIMIT} == {}


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for name in PACKAGES
        for p in (REPO / name).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MODULE_LINES
    }
    assert long == {}
