from __future__ import annotations

import pytest

from s3ferry.jobs.listing import default_list_workers, merge_list_workers


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8333", "http://localhost:9000", "https://[::1]:443"]
)
def test_a_store_on_this_machine_leaves_a_core_to_the_walk(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert merge_list_workers(endpoint) == 1
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert merge_list_workers(endpoint) == default_list_workers() == 16


@pytest.mark.parametrize("endpoint", ["aws", "https://s3.example.com", "http://10.0.0.5:8333"])
def test_a_remote_store_gets_the_default(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert merge_list_workers(endpoint) == default_list_workers() == 4
