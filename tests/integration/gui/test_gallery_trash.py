"""Curating a dataset in the gallery: an image moved to the trash leaves the folder and the
gallery, and one already removed from the folder is not shown, though its preview is still in
Redis."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from PySide6.QtCore import Qt

from celery_core.crawler.dataset.writer import Dataset, ManifestEntry
from celery_core.crawler.images.check import ImageRules, check_image
from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.jobs.redis_keys import ThumbnailRecord, thumb_key, thumbs_key
from celery_core.jobs.spec import parse_job
from tests.integration.gui.conftest import run, screenshot, wait_for
from tests.integration.gui.jobs_fixtures import (
    JobsSession,
    job_dict,
    load_record,
    write_job_done,
    write_keyword_done,
)


def make_dataset(root: Path, count: int) -> list[Path]:
    dataset, folder = Dataset(root), root / "birds" / "robin"
    folder.mkdir(parents=True)
    files = []
    for n in range(1, count + 1):
        data = encode(make_picture(300 + n, (320, 240)))
        path = folder / f"{n:04d}.jpg"
        path.write_bytes(data)
        entry = ManifestEntry.from_checked(
            check_image(data, ImageRules()), path=f"birds/robin/{path.name}", size=len(data),
            category="birds", keyword="robin", url=f"http://example.org/{n}.jpg", source="urls",
        )  # fmt: skip
        dataset.append_manifest(entry)
        files.append(path)
    return files


def test_moving_an_image_to_the_trash_takes_it_out_of_the_dataset(
    qtbot: Any, jobs_session: JobsSession, submitter: Celery, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    spec = parse_job(job_dict(out, {"birds": ["robin"]})).spec
    job_id = run(jobs_session.loop, qtbot, jobs_session.app.jobs.service.submit(spec))
    assert job_id is not None
    files = make_dataset(out, 5)
    files[4].unlink()  # removed from the folder outside the app
    record = load_record(submitter, job_id)
    previews = submitter.backend.client.pipeline()
    for n in range(1, 6):  # what the worker sent while it crawled
        thumb = ThumbnailRecord(job_id, n, thumb_key(job_id, n), f"birds/robin/{n:04d}.jpg",
                                "birds", "robin", 160, 120)  # fmt: skip
        previews.set(thumb.key, encode(make_picture(300 + n, (160, 120))))
        previews.rpush(thumbs_key(job_id), thumb.to_json())
    previews.execute()
    write_keyword_done(submitter, record, 0, kept=5)
    write_job_done(submitter, record, kept=5)

    app = jobs_session.app
    jobs = app.pages.jobs.model
    wait_for(qtbot, lambda: jobs.job(job_id).ended, timeout=10)  # type: ignore[union-attr]
    gallery = app.pages.gallery
    app.window.show_page("gallery")
    gallery.model.show_job(job_id, str(out))  # read afresh, now that the folder is complete
    wait_for(qtbot, lambda: gallery.model.listed, timeout=10)
    assert gallery.model.rowCount() == 4
    shown = [gallery.model.item(n).path for n in range(4)]  # type: ignore[union-attr]
    assert shown == [f"birds/robin/{n:04d}.jpg" for n in range(1, 5)]

    gallery.view.setCurrentIndex(gallery.filter.index(1, 0))
    wait_for(qtbot, gallery.detail.trash_button.isEnabled, timeout=10)
    qtbot.mouseClick(gallery.detail.trash_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: gallery.model.rowCount() == 3, timeout=10)
    assert not files[1].exists()
    trash = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "files" / files[1].name
    assert trash.read_bytes() == encode(make_picture(302, (320, 240)))  # the user can undo it
    assert gallery.notice.isVisible() and "Moved 0002.jpg to the trash" in gallery.notice.text()
    assert gallery.again_button.isVisible()
    assert gallery.count.text() == "3 images"
    # The next image is selected, so a run of Delete presses goes through the folder.
    wait_for(qtbot, lambda: gallery.detail.item is not None, timeout=10)
    assert gallery.detail.item.path == "birds/robin/0003.jpg"  # type: ignore[union-attr]
    screenshot(app.window, "30-gallery-moved-to-trash")

    gallery.view.setFocus()
    qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    wait_for(qtbot, lambda: gallery.model.rowCount() == 2, timeout=10)
    assert sorted(p.name for p in files[0].parent.iterdir()) == ["0001.jpg", "0004.jpg"]
    gallery.model.show_job(job_id, str(out))  # read again: what left the folder stays out
    wait_for(qtbot, lambda: gallery.model.listed, timeout=10)
    assert gallery.model.rowCount() == 2

    # Topping the folder up starts from the job's own settings.
    qtbot.mouseClick(gallery.again_button, Qt.MouseButton.LeftButton)
    assert app.window.pages.currentWidget() is app.pages.form
    assert app.pages.form.options.output_dir.text() == str(out)

    # Several at once: what is selected goes, whichever image the panel shows.
    app.window.show_page("gallery")
    gallery.view.selectAll()
    assert gallery.detail.trash_button.text() == "Move 2 to trash"
    screenshot(app.window, "31-gallery-two-selected")
    qtbot.mouseClick(gallery.detail.trash_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: gallery.model.rowCount() == 0, timeout=10)
    assert list(files[0].parent.iterdir()) == []
    assert "Moved 2 images to the trash" in gallery.notice.text()
