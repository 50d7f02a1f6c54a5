"""Hostile or broken job files end in one line that says what is wrong, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from celery_core.jobs.errors import JobError
from celery_core.jobs.limits import MAX_DEPTH, dataset_folder_problem, shared_folders
from celery_core.jobs.spec import load_job, parse_job


def job(categories: object = None, **options: object) -> dict[str, object]:
    return {"dataset_name": "d", "categories": categories or {"c": ["a"]}, "options": options}


def refused(data: object, base: Path | None = None) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(JobError) as caught:
        parse_job(text, base_dir=base)
    return str(caught.value)


def test_a_number_of_thousands_of_digits() -> None:
    text = '{"dataset_name": "d", "categories": {"c": ["a"]}, "options": {"max_images": %s}}'
    assert "5000 digits" in refused(text % ("9" * 5000))


def test_json_nested_far_deeper_than_any_job() -> None:
    assert "nested" in refused("[" * 100_000 + "]" * 100_000)
    assert "nested" in refused("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))


def test_a_job_file_larger_than_the_cap_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (11 * 1024 * 1024))
    with pytest.raises(JobError, match=r"at most 10\.0 MB"):
        load_job(big)


def test_control_characters_in_output_dir() -> None:
    assert "U+0000" in refused(job(output_dir="x\x00y"))


def test_urls_file_that_never_ends_is_not_read(tmp_path: Path) -> None:
    entry = {"name": "z", "urls_file": "/dev/zero"}
    assert "not a regular file" in refused(job({"c": [entry]}), tmp_path)


@pytest.mark.parametrize(
    ("first", "second"),
    [("a/b", "a_b"), ("x.", "x"), ("caf\u00e9", "cafe\u0301"), ("Cats", "cats ")],
)
def test_names_that_would_share_a_folder_are_refused_naming_both(first: str, second: str) -> None:
    message = refused(job({"c": [first, second]}))
    assert "would share one folder" in message and repr(first) in message


def test_categories_that_would_share_a_folder() -> None:
    assert shared_folders(["Pets", "pets", "Birds"]) == [("Pets", "pets")]


@pytest.mark.parametrize("folder", ["/", "/etc", "/usr/share/x", "/proc/1"])
def test_root_and_system_folders_cannot_hold_a_dataset(folder: str) -> None:
    assert "options.output_dir" in refused(job(output_dir=folder))


def test_an_ordinary_folder_is_accepted(tmp_path: Path) -> None:
    assert dataset_folder_problem(tmp_path / "dataset") is None
    assert parse_job(json.dumps(job(output_dir=str(tmp_path / "out")))).spec


def test_credentials_in_a_url_are_refused_without_echoing_the_password() -> None:
    entry = {"name": "u", "urls": ["http://user:s3cret@example.com/a.jpg"]}
    message = refused(job({"c": [entry]}))
    assert "user name or password" in message and "s3cret" not in message
