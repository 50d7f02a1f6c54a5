"""The job file: PixCrawler's config format, validation messages, work items, schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from platformdirs import user_pictures_dir

from celery_core.crawler.search.registry import ENGINES
from celery_core.jobs.spec import (
    KNOWN_ENGINES,
    JobError,
    WebsiteSettings,
    WorkItem,
    job_schema,
    job_schema_text,
    load_job,
    parse_job,
    split_urls,
)

REPO = Path(__file__).resolve().parents[2]

EXAMPLE: dict[str, Any] = {
    "dataset_name": "animals",
    "categories": {
        "mammals": ["dog", "cat"],
        "gallery": [
            {"name": "site", "website": "http://example.org/", "max_pages": 200, "max_depth": 3},
            {"name": "list", "urls": ["http://example.org/a.jpg"]},
            {"name": "list2", "urls_file": "urls.txt"},
        ],
    },
    "options": {
        "max_images": 100,
        "output_dir": None,
        "engines": ["bing", "duckduckgo"],
        "min_width": 100,
        "min_height": 100,
        "dedup_threshold": 6,
        "generate_labels": True,
        "label_formats": ["txt", "json", "csv", "yaml"],
    },
}
URLS_TXT = """# pictures from the shared album
http://example.org/b.jpg

https://example.org/c.png
https://example.org/b-copy.jpg
"""


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    (tmp_path / "urls.txt").write_text(URLS_TXT, encoding="utf-8")
    (tmp_path / "job.json").write_text(json.dumps(EXAMPLE, indent=2), encoding="utf-8")
    return tmp_path


def example(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def problems_of(data: Any, base_dir: Path) -> list[str]:
    with pytest.raises(JobError) as caught:
        parse_job(data, base_dir)
    return list(caught.value.problems)


def test_example_job_file_loads_as_written(job_dir: Path) -> None:
    loaded = load_job(job_dir / "job.json")
    spec = loaded.spec

    assert loaded.warnings == ()
    assert loaded.path == job_dir / "job.json"
    assert spec.dataset_name == "animals"
    assert list(spec.categories) == ["mammals", "gallery"]
    assert spec.options.engines == ["bing", "duckduckgo"]
    assert spec.work_items() == [
        WorkItem("mammals", "dog", "search", 100, engines=("bing", "duckduckgo")),
        WorkItem("mammals", "cat", "search", 100, engines=("bing", "duckduckgo")),
        WorkItem(
            "gallery",
            "site",
            "website",
            100,
            website=WebsiteSettings("http://example.org/", 200, 3),
        ),
        WorkItem("gallery", "list", "urls", 100, urls=("http://example.org/a.jpg",)),
        WorkItem(
            "gallery",
            "list2",
            "urls",
            100,
            urls=(
                "http://example.org/b.jpg",
                "https://example.org/c.png",
                "https://example.org/b-copy.jpg",
            ),
        ),
    ]


def test_round_trip_gives_back_the_same_file_and_job(job_dir: Path) -> None:
    spec = load_job(job_dir / "job.json").spec
    assert spec.to_file_dict() == EXAMPLE
    assert parse_job(spec.to_file_dict(), job_dir).spec == spec
    assert parse_job(json.dumps(spec.to_file_dict()), job_dir).spec == spec


def test_inline_urls_make_the_job_independent_of_its_folder(job_dir: Path, tmp_path: Path) -> None:
    spec = load_job(job_dir / "job.json").spec
    inline = spec.to_file_dict(inline_urls=True)
    assert inline["categories"]["gallery"][2] == {
        "name": "list2",
        "urls": [
            "http://example.org/b.jpg",
            "https://example.org/c.png",
            "https://example.org/b-copy.jpg",
        ],
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert parse_job(inline, elsewhere).spec.work_items() == spec.work_items()


def test_defaults_fill_missing_options(tmp_path: Path) -> None:
    spec = parse_job({"dataset_name": "d", "categories": {"c": ["k"]}}, tmp_path).spec
    assert spec.options.max_images == 100
    assert spec.options.engines == ["bing", "duckduckgo"]
    assert spec.options.label_formats == ["txt", "json", "csv", "yaml"]
    assert spec.options.dedup_threshold == 6
    assert spec.dataset_root() == Path(user_pictures_dir()) / "PixCrawler" / "d"


def test_output_dir_relative_to_the_job_file(job_dir: Path) -> None:
    data = example()
    data["options"]["output_dir"] = "out/animals"
    (job_dir / "rel.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_job(job_dir / "rel.json").spec.dataset_root() == job_dir / "out" / "animals"
    data["options"]["output_dir"] = str(job_dir / "abs")
    assert parse_job(data, job_dir).spec.dataset_root() == job_dir / "abs"


def test_unknown_keys_are_warnings_not_errors(job_dir: Path) -> None:
    data = example(version=2)
    data["options"]["max_retries"] = 3
    data["categories"]["gallery"][0]["follow_external"] = True
    loaded = parse_job(data, job_dir)
    assert loaded.warnings == (
        "version: unknown key, ignored",
        "options.max_retries: unknown key, ignored",
        "categories.gallery[0].follow_external: unknown key, ignored",
    )
    assert "max_retries" not in loaded.spec.to_file_dict()["options"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("categories", "mammals", 1), 5, "categories.mammals[1]: expected a keyword string or a "
         "source object"),
        (("categories", "mammals", 1), {"name": "x"}, "categories.mammals[1]: a source object "
         "needs 'urls', 'urls_file' or 'website'"),
        (("categories", "gallery", 0, "max_pages"), "200", "categories.gallery[0].max_pages: "
         "expected a whole number, got '200'"),
        (("options", "max_images"), 10.5, "options.max_images: expected a whole number, got 10.5"),
        (("options", "generate_labels"), "yes", "options.generate_labels: expected true or false"),
        (("options", "engines"), "bing", "options.engines: expected a list, got 'bing'"),
        (("categories", "mammals"), "dog", "categories.mammals: expected a list, got 'dog'"),
        (("options",), [], "options: expected an object, got a list"),
        (("categories", "gallery", 1, "name"), None, "categories.gallery[1].name: expected a "
         "string, got null"),
        (("dataset_name",), 7, "dataset_name: expected a string, got 7"),
    ],
)  # fmt: skip
def test_type_errors_name_their_place(
    job_dir: Path, path: tuple[Any, ...], value: Any, message: str
) -> None:
    data = example()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert any(p.startswith(message) for p in problems_of(data, job_dir)), message


def test_missing_required_fields(job_dir: Path) -> None:
    data = example()
    del data["dataset_name"]
    del data["categories"]["gallery"][1]["name"]
    assert problems_of(data, job_dir) == [
        "dataset_name: required",
        "categories.gallery[1].name: required",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset_name": "  "}, "dataset_name: must not be empty"),
        ({"dataset_name": "my/set"}, "dataset_name: 'my/set' cannot be used as a folder name"),
        ({"dataset_name": ".."}, "dataset_name: '..' cannot be used as a folder name"),
        ({"dataset_name": "CON"}, "dataset_name: 'CON' cannot be used as a folder name"),
        ({"categories": {}}, "categories: must not be empty"),
        ({"categories": {"a": []}}, "categories.a: must not be empty"),
        ({"categories": {"a": ["dog", " "]}}, "categories.a[1]: must not be empty"),
        ({"categories": {"a:b": ["dog"]}}, "categories[\"a:b\"]: 'a:b' cannot be used"),
        (
            {"categories": {"a": ["dog", "cat", "Dog "]}},
            "categories.a[2]: duplicate keyword 'Dog' (also at [0])",
        ),
        (
            {"categories": {"a": ["site", {"name": "site", "urls": ["http://e.org/a.jpg"]}]}},
            "categories.a[1]: duplicate keyword 'site' (also at [0])",
        ),
    ],
)
def test_names_and_keywords_are_checked(
    job_dir: Path, change: dict[str, Any], message: str
) -> None:
    assert any(p.startswith(message) for p in problems_of(example(**change), job_dir)), message


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("engines", ["bing", "yahoo"], "options.engines[1]: 'yahoo' is not one of 'bing', "
         "'duckduckgo', 'google' or 'baidu'"),
        ("engines", [], "options.engines: must not be empty"),
        ("engines", ["bing", "bing"], "options.engines: listed more than once: bing"),
        ("label_formats", ["txt", "xml"], "options.label_formats[1]: 'xml' is not one of"),
        ("max_images", 0, "options.max_images: must be at least 1, got 0"),
        ("max_images", 100_001, "options.max_images: must be at most 100000, got 100001"),
        ("dedup_threshold", 33, "options.dedup_threshold: must be at most 32, got 33"),
        ("dedup_threshold", -1, "options.dedup_threshold: must be at least 0, got -1"),
        ("min_width", 0, "options.min_width: must be at least 1, got 0"),
        ("min_height", True, "options.min_height: expected a whole number, got true"),
    ],
)  # fmt: skip
def test_options_are_checked(job_dir: Path, option: str, value: Any, message: str) -> None:
    data = example()
    data["options"][option] = value
    assert any(p.startswith(message) for p in problems_of(data, job_dir)), message


def test_bad_urls_are_named(job_dir: Path) -> None:
    (job_dir / "bad.txt").write_text("https://ok.example.org/a.jpg\nftp://x.org/b.jpg\n")
    data = example()
    gallery = data["categories"]["gallery"]
    gallery[0]["website"] = "file:///etc/passwd"
    gallery[1]["urls"] = ["http://example.org/a.jpg", "javascript:alert(1)", "http://"]
    gallery[2]["urls_file"] = "bad.txt"
    assert problems_of(data, job_dir) == [
        "categories.gallery[0].website: 'file:///etc/passwd' is not an http(s) URL",
        "categories.gallery[1].urls[1]: 'javascript:alert(1)' is not an http(s) URL",
        "categories.gallery[1].urls[2]: 'http://' has no host name",
        "categories.gallery[2]: urls_file 'bad.txt': line 2: 'ftp://x.org/b.jpg' is not an "
        "http(s) URL",
    ]


def test_urls_file_problems(job_dir: Path) -> None:
    data = example()
    data["categories"]["gallery"][2]["urls_file"] = "missing.txt"
    [problem] = problems_of(data, job_dir)
    assert problem.startswith("categories.gallery[2]: urls_file 'missing.txt' not found")
    assert str(job_dir / "missing.txt") in problem

    (job_dir / "empty.txt").write_text("# nothing yet\n\n")
    data["categories"]["gallery"][2]["urls_file"] = "empty.txt"
    [problem] = problems_of(data, job_dir)
    assert "lists no URLs" in problem

    data["categories"]["gallery"][2] = {"name": "both", "urls": ["http://a.org/"], "urls_file": "x"}
    assert problems_of(data, job_dir) == [
        "categories.gallery[2]: give exactly one of 'urls' or 'urls_file'"
    ]


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"dataset_name": "x",\n "categories": {,}}')
    with pytest.raises(JobError) as caught:
        load_job(broken)
    assert str(caught.value).startswith(f"{broken}: line 2 column")
    with pytest.raises(JobError, match="cannot read the file"):
        load_job(tmp_path / "nope.json")
    with pytest.raises(JobError, match="expected a JSON object"):
        parse_job("[1, 2]", tmp_path)


def test_several_problems_are_reported_together(job_dir: Path) -> None:
    data = example(dataset_name="")
    data["options"]["max_images"] = 0
    with pytest.raises(JobError) as caught:
        parse_job(data, job_dir)
    assert caught.value.problems == (
        "dataset_name: must not be empty",
        "options.max_images: must be at least 1, got 0",
    )
    assert str(caught.value) == (
        "2 problems in the job:\n"
        "  dataset_name: must not be empty\n"
        "  options.max_images: must be at least 1, got 0"
    )


def test_work_items_travel_as_plain_json(job_dir: Path) -> None:
    for item in load_job(job_dir / "job.json").spec.work_items():
        wire = json.loads(json.dumps(item.to_dict()))
        assert WorkItem.from_dict(wire) == item
    with pytest.raises(ValueError, match="not a work item"):
        WorkItem.from_dict({"category": "a", "keyword": "b", "kind": "ftp", "target": 1})


def test_split_urls_spreads_a_long_list_over_chunks() -> None:
    urls = tuple(f"http://example.org/{i}.jpg" for i in range(1000))
    item = WorkItem("gallery", "big", "urls", 100, urls=urls)
    chunks = split_urls(item, 300)

    assert [len(c.urls) for c in chunks] == [250, 250, 250, 250]
    assert [c.chunk_index for c in chunks] == [0, 1, 2, 3]
    assert {c.chunk_count for c in chunks} == {4}
    assert {(c.category, c.keyword, c.kind) for c in chunks} == {("gallery", "big", "urls")}
    assert sum((c.urls for c in chunks), ()) == urls
    assert [c.target for c in chunks] == [25, 25, 25, 25]
    assert chunks[1].label == "gallery/big (part 2/4)"

    uneven = split_urls(WorkItem("g", "k", "urls", 10, urls=urls[:7]), 2)
    assert [len(c.urls) for c in uneven] == [2, 2, 2, 1]
    assert sum(c.target for c in uneven) == 7  # no more than there are URLs
    assert all(c.target >= 1 for c in uneven)

    few_wanted = split_urls(WorkItem("g", "k", "urls", 2, urls=urls), 100)
    assert len(few_wanted) == 2  # never more chunks than images wanted
    assert [c.target for c in few_wanted] == [1, 1]


def test_split_urls_leaves_other_items_alone() -> None:
    search = WorkItem("a", "dog", "search", 100, engines=("bing",))
    assert split_urls(search, 1) == [search]
    short = WorkItem("a", "list", "urls", 100, urls=("http://e.org/1.jpg",))
    assert split_urls(short, 10) == [short]
    with pytest.raises(ValueError):
        split_urls(short, 0)


def test_committed_schema_is_the_generated_one() -> None:
    committed = (REPO / "docs" / "job.schema.json").read_text(encoding="utf-8")
    assert committed == job_schema_text(), (
        "docs/job.schema.json is stale: "
        "uv run python -m celery_core.jobs.spec > docs/job.schema.json"
    )


def test_schema_describes_the_format() -> None:
    schema = job_schema()
    assert schema["required"] == ["dataset_name", "categories"]
    engines = schema["$defs"]["JobOptions"]["properties"]["engines"]["items"]["enum"]
    assert engines == list(KNOWN_ENGINES)
    assert set(KNOWN_ENGINES) == set(ENGINES)  # every engine the file allows has a source
