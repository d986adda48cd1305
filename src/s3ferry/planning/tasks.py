"""Tasks for a queue of workers: small objects packed together, large ones split into parts.

A task is one queue message; its JSON form is explicit and versioned so that
workers of another release refuse what they cannot read instead of guessing::

    {"v": 1, "type": "objects", "source": "s3://src/prefix/", "dest": "s3://dst/prefix/",
     "objects": [["key/below/prefix", 1234, "etag"], ...]}
    {"v": 1, "type": "part", "source": ..., "dest": ..., "object": ["key", 123456789, "etag"],
     "upload_id": "...", "part": 3, "parts": 24, "part_size": 5242880}

Keys are relative to the prefixes. Packing streams: at most one open bundle
is held, whatever the number of objects planned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from s3ferry.config import S3_MAX_PART_BYTES, S3_MAX_PARTS, S3_MIN_PART_BYTES
from s3ferry.errors import UsageError
from s3ferry.planning.policy import is_md5

TASK_VERSION = 1


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """How objects are packed and split (the field team's defaults).

    Attributes:
        max_objects: objects in one task at most.
        max_bytes: bytes in one task at most (an object larger than this
            alone still makes one task, unless it is split).
        split_threshold: objects larger than this are copied in parts, one task per part.
        chunk_size: size of those parts; grown so no object needs more than 10,000.
    """

    max_objects: int = 10
    max_bytes: int = 20_000_000
    split_threshold: int = 5_000_000
    chunk_size: int = S3_MIN_PART_BYTES

    def check(self) -> None:
        """Raises UsageError naming the first limit S3 or common sense refuses."""
        for name in ("max_objects", "max_bytes", "split_threshold", "chunk_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')}", "must be positive")
        if not S3_MIN_PART_BYTES <= self.chunk_size <= S3_MAX_PART_BYTES:
            raise UsageError(
                f"--chunk-size {self.chunk_size}",
                "S3 parts (but the last) must be from 5 MiB to 5 GiB",
            )


class Listed(Protocol):
    """An object as a listing or inventory reports it."""

    @property
    def key(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def etag(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object of a task; ``key`` is relative to the task's source and dest prefixes."""

    key: str
    size_bytes: int
    etag: str


@dataclass(frozen=True, slots=True)
class ObjectsTask:
    source: str
    dest: str
    objects: tuple[ObjectRef, ...]

    @property
    def size_bytes(self) -> int:
        return sum(o.size_bytes for o in self.objects)


@dataclass(frozen=True, slots=True)
class PartTask:
    """Part ``part`` (1-based) of ``parts`` of one object's multipart copy."""

    source: str
    dest: str
    object: ObjectRef
    upload_id: str
    part: int
    parts: int
    part_size: int

    @property
    def range(self) -> tuple[int, int]:
        """Bytes ``(start, end_exclusive)`` of the object this part holds."""
        start = (self.part - 1) * self.part_size
        return start, min(start + self.part_size, self.object.size_bytes)

    @property
    def size_bytes(self) -> int:
        start, end = self.range
        return end - start


Task = ObjectsTask | PartTask


def already_copied(size_bytes: int, etag: str, there_size: int, there_etag: str) -> bool:
    """An object at the destination is this one: same size, and same MD5 where both ETags
    are plain MD5s (otherwise, e.g. multipart or encrypted, the ETags cannot tell)."""
    if size_bytes != there_size:
        return False
    return not (is_md5(etag) and is_md5(there_etag)) or etag == there_etag


def parts_of(size_bytes: int, chunk_size: int) -> tuple[int, int]:
    """``(part size, part count)`` for an object: ``chunk_size`` grown to 10,000 parts at most."""
    part = max(chunk_size, -(-size_bytes // S3_MAX_PARTS))
    return part, max(1, -(-size_bytes // part))


def plan_tasks(
    objects: Iterable[Listed],
    source: str,
    dest: str,
    limits: PlanLimits,
    start_upload: Callable[[ObjectRef], str],
) -> Iterator[Task]:
    """The tasks that copy ``objects`` (keys relative to ``source``'s prefix), in order.

    ``start_upload`` opens the destination's multipart upload of a split
    object and returns its id; it is called just before that object's part
    tasks are yielded.
    """
    bundle: list[ObjectRef] = []
    held = 0
    for o in objects:
        ref = ObjectRef(o.key, o.size_bytes, o.etag)
        if ref.size_bytes > limits.split_threshold:
            part_size, count = parts_of(ref.size_bytes, limits.chunk_size)
            upload_id = start_upload(ref)
            for n in range(1, count + 1):
                yield PartTask(source, dest, ref, upload_id, n, count, part_size)
            continue
        if bundle and (
            len(bundle) == limits.max_objects or held + ref.size_bytes > limits.max_bytes
        ):
            yield ObjectsTask(source, dest, tuple(bundle))
            bundle, held = [], 0
        bundle.append(ref)
        held += ref.size_bytes
    if bundle:
        yield ObjectsTask(source, dest, tuple(bundle))


def encode(task: Task) -> str:
    """The task's JSON text (the queue message body)."""
    doc: dict[str, Any] = {"v": TASK_VERSION, "source": task.source, "dest": task.dest}
    if isinstance(task, ObjectsTask):
        doc |= {"type": "objects", "objects": [[o.key, o.size_bytes, o.etag] for o in task.objects]}
    else:
        o = task.object
        doc |= {
            "type": "part",
            "object": [o.key, o.size_bytes, o.etag],
            "upload_id": task.upload_id,
            "part": task.part,
            "parts": task.parts,
            "part_size": task.part_size,
        }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def decode(body: str) -> Task:
    """The task of a message body.

    Raises:
        UsageError: the body is not a task of a version this release knows.
    """
    try:
        doc = json.loads(body)
        version = doc.get("v") if isinstance(doc, dict) else None
        if version != TASK_VERSION:
            raise UsageError("task", f"version {version!r} is not {TASK_VERSION}; upgrade s3ferry")
        if doc["type"] == "objects":
            refs = tuple(ObjectRef(str(k), int(s), str(e)) for k, s, e in doc["objects"])
            return ObjectsTask(str(doc["source"]), str(doc["dest"]), refs)
        if doc["type"] == "part":
            k, s, e = doc["object"]
            return PartTask(
                str(doc["source"]),
                str(doc["dest"]),
                ObjectRef(str(k), int(s), str(e)),
                str(doc["upload_id"]),
                int(doc["part"]),
                int(doc["parts"]),
                int(doc["part_size"]),
            )
        raise UsageError("task", f"unknown task type {doc['type']!r}")
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError("task", f"not a task: {e}") from e
