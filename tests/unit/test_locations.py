from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3ferry.errors import UsageError
from s3ferry.locations import key_for, parse_s3_url, path_for


@pytest.mark.parametrize(
    ("text", "bucket", "key"),
    [
        ("s3://bkt", "bkt", ""),
        ("s3://bkt/", "bkt", ""),
        ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b/"),
        ("s3://bkt/a b/ü+%#?&=;", "bkt", "a b/ü+%#?&=;"),
    ],
)
def test_parse_valid(text: str, bucket: str, key: str) -> None:
    url = parse_s3_url(text)
    assert (url.bucket, url.key) == (bucket, key)


@pytest.mark.parametrize(
    "text",
    [
        "s3:/b",
        "s3://",
        "s3:///k",
        "s3://B_ad/x",
        "http://x/y",
        "s3://ab/k",
        "s3://-bad/k",
        "s3://a..b/k",
        "s3://bkt/" + "k" * 1025,
    ],
)
def test_parse_invalid_names_the_url(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_s3_url(text)
    assert e.value.subject == text


def test_prefix_forms() -> None:
    assert parse_s3_url("s3://bkt/a").as_prefix() == "a/"
    assert parse_s3_url("s3://bkt/a/").as_prefix() == "a/"
    assert parse_s3_url("s3://bkt").as_prefix() == ""


def test_key_for_refuses_non_utf8_and_long_keys() -> None:
    assert key_for("p/", "a/b c") == "p/a/b c"
    with pytest.raises(UsageError, match="UTF-8"):
        key_for("p/", "bad\udcff")
    with pytest.raises(UsageError, match="1024"):
        key_for("p/", "x" * 1100)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("p/../x", "would land outside the target directory"),
        ("p/a/../../x", "would land outside the target directory"),
        ("p//etc/passwd", "would land outside the target directory"),
        ("p/C:x", "would land outside the target directory"),
        ("p/d/C:x", "would land outside the target directory"),
        ("p/a//x", r"cannot be a local path \(an empty segment\)"),
        ("p/./x", r"cannot be a local path \(a '\.' segment\)"),
        ("p/a\\b", r"cannot be a local path \(a backslash\)"),
        ("p/..\\x", r"cannot be a local path \(a backslash\)"),
        ("p/\0", r"cannot be a local path \(a NUL byte\)"),
        ("p/", "key equals the prefix"),
    ],
)
def test_path_for_refuses_escapes_and_names_why(key: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        path_for(Path("/target"), "p/", key)


@given(st.text(min_size=1, max_size=60))
def test_path_for_never_leaves_root(relative: str) -> None:
    root = Path("/target/root")
    try:
        path = path_for(root, "p/", "p/" + relative)
    except UsageError:
        return
    assert path.resolve().is_relative_to(root)
    assert path != root
