"""The public surface is exactly ``__all__``, sorted, and every name resolves."""

from __future__ import annotations

import s3ferry


def test_all_is_sorted_and_resolves() -> None:
    assert s3ferry.__all__ == sorted(s3ferry.__all__)
    for name in s3ferry.__all__:
        assert getattr(s3ferry, name) is not None


def test_unknown_name_raises_attribute_error() -> None:
    try:
        s3ferry.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "nope" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_every_public_function_takes_the_same_keyword_options() -> None:
    import inspect

    for fn in (
        s3ferry.upload,
        s3ferry.download,
        s3ferry.upload_from_stream,
        s3ferry.download_to_stream,
        s3ferry.read_range,
        s3ferry.iter_records,
        s3ferry.restore,
    ):
        params = inspect.signature(fn).parameters
        assert {"transfer", "store", "sink"} <= set(params)
        assert all(
            params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in ("transfer", "store", "sink")
        )
