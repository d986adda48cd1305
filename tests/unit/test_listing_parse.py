"""The listing client's pieces that need no server: split points, page parsing, SigV4."""

from __future__ import annotations

from urllib.parse import quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from s3ferry.listing.keyspace import keys_between, midpoint
from s3ferry.storage.listing import Entry, _parse, sigv4_authorization

keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@settings(max_examples=3000)
@given(keys, st.one_of(st.none(), keys), st.text(max_size=6))
def test_midpoint_lies_strictly_between_and_is_valid_utf8(
    lo: str, hi: str | None, seen: str
) -> None:
    m = midpoint(lo, hi, "".join(sorted(set(seen))))
    if hi is not None and hi <= lo:
        assert m is None
        return
    if m is None:  # only when hi is lo followed by NULs: no string fits between
        assert hi is not None and hi.startswith(lo) and set(hi[len(lo) :]) == {"\0"}
        return
    assert lo < m
    assert hi is None or m < hi
    assert m.encode("utf-8") > lo.encode("utf-8")  # code-point order is UTF-8 byte order


def test_midpoint_bisects_ascii_keys_near_their_middle() -> None:
    assert "3" < (midpoint("0", "9") or "") < "7"
    assert (midpoint("logs/a", "logs/z") or "").startswith("logs/")


HEX = "0123456789abcdef"


def test_midpoint_takes_the_middle_of_the_characters_keys_use() -> None:
    # Above "5" only 6-9 and a-f hold hex keys: the middle of those, not "Z".
    assert midpoint("k-5", "k-\x7f", HEX) == "k-b"
    # Above "f" no hex digit is left at that place: the middle is sought one further on.
    assert midpoint("k-f3", "k-~", HEX) == "k-fa"


def test_keys_between_estimates_from_the_density_of_a_page() -> None:
    hex_keys = sorted(f"k-{i * 2654435761 % 16**6:06x}" for i in range(16**3))
    page = hex_keys[:256]
    estimate = keys_between(page, page[-1], "k-8")
    actual = sum(page[-1] < k <= "k-8" for k in hex_keys)
    assert estimate is not None and 0.8 * actual < estimate < 1.25 * actual
    assert keys_between(page[:1], page[0], "k-8") is None


def _page(entries: list[dict[str, str]], url: bool = True, extra: str = "") -> bytes:
    body = "".join(
        "<Contents>" + "".join(f"<{k}>{v}</{k}>" for k, v in e.items()) + "</Contents>"
        for e in entries
    )
    encoding = "<EncodingType>url</EncodingType>" if url else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>b</Name>{encoding}<IsTruncated>true</IsTruncated>"
        f"<NextContinuationToken>tok</NextContinuationToken>{body}{extra}</ListBucketResult>"
    ).encode()


AWKWARD = ["a b+c.txt", "naïve/日本語", "x&y<z>", "100%", "tab\there", "a//b", "dir/"]


def test_url_encoded_keys_decode_exactly_on_the_fast_path() -> None:
    rows = [
        {"Key": quote_plus(k), "ETag": "&#34;abc&#34;", "Size": str(i), "LastModified": "t"}
        for i, k in enumerate(AWKWARD)
    ]
    page = _parse(_page(rows, extra="<CommonPrefixes><Prefix>p%2Bq/</Prefix></CommonPrefixes>"))
    assert [e.key for e in page.entries] == AWKWARD
    assert page.entries[3] == Entry("100%", 3, "abc", "t")
    assert page.prefixes == ["p+q/"]
    assert page.truncated and page.continuation == "tok"


def test_a_split_point_echoed_unencoded_does_not_break_the_page() -> None:
    # moto echoes StartAfter raw even with encoding-type=url; "\x17" is no XML character.
    rows = [{"Key": "a%2F%2Fb", "Size": "1", "ETag": "e", "LastModified": "t"}]
    page = _parse(_page(rows, extra="<StartAfter>a//\x17</StartAfter>"))
    assert [e.key for e in page.entries] == ["a//b"]


def test_entries_with_differing_fields_fall_back_to_the_xml_parser() -> None:
    rows = [
        {"Key": "a", "Size": "1", "ETag": '"e1"', "LastModified": "t1"},
        {
            "Key": "b",
            "Size": "2",
            "ETag": "e2",
            "ChecksumAlgorithm": "CRC32C",
            "LastModified": "t2",
        },
        {"Key": "c", "Size": "3", "ETag": "e3", "LastModified": "t3", "StorageClass": "GLACIER"},
    ]
    entries = _parse(_page(rows)).entries
    assert entries == [
        Entry("a", 1, "e1", "t1"),
        Entry("b", 2, "e2", "t2", "STANDARD", "CRC32C"),
        Entry("c", 3, "e3", "t3", "GLACIER"),
    ]


def test_keys_without_url_encoding_are_unescaped_once() -> None:
    rows = [{"Key": "x&amp;amp;y", "Size": "1", "ETag": "&quot;e&quot;", "LastModified": "t"}]
    assert _parse(_page(rows, url=False)).entries == [Entry("x&amp;y", 1, "e", "t")]


def test_elements_between_entries_are_still_read() -> None:
    """Entries that do not follow one another (a prefix, whitespace between them) are parsed
    as well as a run of them is, and nothing around them is lost."""
    row = "<Contents><Key>{}</Key><Size>1</Size><ETag>e</ETag><LastModified>t</LastModified>"
    prefix = "<CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>"
    extra = f"{row.format('a')}</Contents>\n {prefix}{row.format('c')}</Contents>"
    page = _parse(_page([], extra=extra))
    assert [e.key for e in page.entries] == ["a", "c"]
    assert page.prefixes == ["b/"]
    assert page.truncated and page.continuation == "tok"


def test_empty_page() -> None:
    page = _parse(_page([]).replace(b"true", b"false"))
    assert page.entries == [] and page.prefixes == [] and not page.truncated


def test_sigv4_matches_botocore() -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    query = "encoding-type=url&list-type=2&prefix=a%20b%2Fc&start-after=%E6%97%A5"
    url = f"http://127.0.0.1:8333/bucket?{query}"
    request = AWSRequest(method="GET", url=url)
    amz = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": "20261125T120000Z"}
    for k, v in amz.items():
        request.headers[k] = v
    request.context["timestamp"] = amz["x-amz-date"]
    signer = S3SigV4Auth(Credentials("AKID", "SECRET"), "s3", "us-east-1")
    canonical = signer.canonical_request(request)
    ours = sigv4_authorization(
        "AKID", "SECRET", "us-east-1", "127.0.0.1:8333", "/bucket", query, amz
    )
    string_to_sign = signer.string_to_sign(request, canonical)
    expected = signer.signature(string_to_sign, request)
    assert ours.endswith(f"Signature={expected}")
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date" in ours
