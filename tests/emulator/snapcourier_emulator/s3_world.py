"""Direct insertion of S3 objects (POST /snapcourier/objects): an object put
straight into a bucket, as its owner, with what the API cannot set: an old
LastModified, an Object Lock retention that has already expired, a body of a
given size without sending it.

A list is all or none: every entry is checked before any is put.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.utils import utcnow
from moto.s3.models import FakeBucket

from . import kms_keys, rdb, s3_ext
from .elasticache_ext import default_data
from .world import InsertError

FIELDS = frozenset({"bucket", "key", "body", "size", "last_modified", "lock_mode", "lock_until", "kms_key_id",
                    "checksum"})
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
MAX_SIZE = 64 * 1024 * 1024  # a body the emulator holds in memory
MAX_KEY_BYTES = 1024


@dataclass
class Plan:
    """A checked object, ready to put."""

    owner: str
    bucket: FakeBucket
    key: str
    body: bytes
    last_modified: datetime  # naive UTC, as moto keeps it
    lock_mode: str | None
    lock_until: str | None  # moto's string form
    kms_key_id: str | None
    checksum: bool


def _timestamp(spec: dict[str, Any], name: str) -> datetime | None:
    """An RFC 3339 timestamp with an offset, as naive UTC."""
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InsertError(f"{name} must be an RFC 3339 timestamp with an offset (e.g. 2026-01-01T00:00:00Z)")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise InsertError(f"{name}: {err}") from None
    if parsed.tzinfo is None:
        raise InsertError(f"{name} must carry a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def _moto_time(value: datetime) -> str:
    """The string form moto keeps a retain-until date in (and its is_locked parses)."""
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(spec: dict[str, Any], owner: str, bucket: FakeBucket, key: str) -> bytes:
    if "body" in spec and "size" in spec:
        raise InsertError("give body or size, not both")
    if "body" in spec:
        if not isinstance(spec["body"], str):
            raise InsertError("body must be a string (stored as UTF-8)")
        return spec["body"].encode()
    if "size" in spec:
        size = spec["size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise InsertError(f"size must be an integer from 0 to {MAX_SIZE}")
        return b"x" * size
    # A valid .rdb of a one-shard dataset named after the object.
    return rdb.body(default_data(owner, bucket.region_name, f"{bucket.name}/{key}", 1)[0], 1)


def _lock(spec: dict[str, Any], bucket: FakeBucket, last_modified: datetime) -> tuple[str | None, str | None]:
    mode = spec.get("lock_mode")
    until = _timestamp(spec, "lock_until")
    if mode is not None and mode not in LOCK_MODES:
        raise InsertError(f"lock_mode must be one of {list(LOCK_MODES)}")
    if (mode is None) != (until is None):
        raise InsertError("lock_mode and lock_until go together (give both or neither)")
    if mode is not None and not bucket.object_lock_enabled:
        raise InsertError(f"lock_mode: bucket {bucket.name} does not have Object Lock enabled")
    if mode is not None and until is not None:
        return mode, _moto_time(until)
    if bucket.has_default_lock:
        # As a PutObject at last_modified: the bucket's default retention from then.
        days = (bucket.default_lock_days or 0) + 365 * (bucket.default_lock_years or 0)
        return bucket.default_lock_mode, _moto_time((last_modified + timedelta(days=days)).replace(microsecond=0))
    return None, None


def plan(spec: Any) -> Plan:
    """Every check of one object; changes nothing."""
    if not isinstance(spec, dict):
        raise InsertError("each object must be a JSON object")
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise InsertError(f"unknown fields for an object: {unknown}")
    name = spec.get("bucket")
    if not isinstance(name, str) or not name:
        raise InsertError("bucket is required (a bucket name)")
    found = s3_ext.find_bucket(name)
    if found is None:
        raise InsertError(f"bucket {name} does not exist")
    owner, bucket = found
    key = spec.get("key")
    if not isinstance(key, str) or not key or len(key.encode()) > MAX_KEY_BYTES:
        raise InsertError(f"key is required (a non-empty string of at most {MAX_KEY_BYTES} bytes)")
    body = _body(spec, owner, bucket, key)
    last_modified = _timestamp(spec, "last_modified") or utcnow()
    lock_mode, lock_until = _lock(spec, bucket, last_modified)
    kms_key_id = None
    if spec.get("kms_key_id") is not None:
        ref = spec["kms_key_id"]
        found_key = kms_keys.find_key(ref, owner, bucket.region_name) if isinstance(ref, str) and ref else None
        if found_key is None:
            raise InsertError(f"kms_key_id {ref!r} is not a KMS key (id, alias or ARN) that exists")
        kms_key_id = found_key.arn
    checksum = spec.get("checksum", True)
    if not isinstance(checksum, bool):
        raise InsertError("checksum must be true or false")
    return Plan(owner, bucket, key, body, last_modified, lock_mode, lock_until, kms_key_id, checksum)


def put(p: Plan) -> str | None:
    """Put a checked object; returns its version id (None in an unversioned bucket).
    In a versioned bucket the object is a new version, placed in the key's history
    by its last_modified (a past one makes it a noncurrent version if a later one
    exists), so GetObject and ListObjectVersions agree on which is current."""
    backend = s3_ext.backend_of(p.owner)
    obj = backend.put_object(p.bucket.name, p.key, p.body, lock_mode=p.lock_mode, lock_until=p.lock_until,
                             encryption="aws:kms" if p.kms_key_id else None, kms_key_id=p.kms_key_id,
                             disable_notification=True)
    obj.last_modified = p.last_modified
    if p.checksum:
        obj.checksum_algorithm = "SHA256"
        obj.checksum_value = base64.b64encode(hashlib.sha256(p.body).digest()).decode()
    if not p.bucket.is_versioned:
        return None
    versions = [v for v in p.bucket.keys.getlist(p.key) if v is not obj]
    at = len(versions)
    while at > 0 and versions[at - 1].last_modified > p.last_modified:
        at -= 1
    versions.insert(at, obj)
    p.bucket.keys.setlist(p.key, versions)
    return obj.version_id


def insert_objects(body: Any) -> dict[str, Any]:
    """One object -> {"version_id"}; a list -> {"version_ids"}, all or none."""
    if isinstance(body, list):
        plans = [plan(spec) for spec in body]
        return {"version_ids": [put(p) for p in plans]}
    return {"version_id": put(plan(body))}
