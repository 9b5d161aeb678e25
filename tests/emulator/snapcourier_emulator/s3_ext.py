"""What moto 5.2.5's S3 lacks for snapcourier's ElastiCache flows, patched in.

By the AWS behaviour each patch adds:

* bucket policies are enforced (moto lets any account read and write any bucket
  whose name it knows): a request on another account's bucket is allowed only
  when the bucket policy allows the caller's account that action on that
  resource, and an explicit Deny applies to everyone (bucket_policy.py says what
  a policy may use); CopyObject also needs s3:GetObject (s3:GetObjectVersion
  with a versionId) on its source;
* reading another account's SSE-KMS object needs kms:Decrypt on its key: the key
  policy must allow the caller's account, and an AWS-managed key (aws/s3) can
  never be used across accounts (its policy cannot be changed);
* SSE-KMS objects report their key as an ARN, and SSE-KMS without a key (in the
  request or the bucket's default encryption) uses the AWS-managed aws/s3 key;
* CopyObject takes Object Lock headers (x-amz-object-lock-mode and
  -retain-until-date) and a bucket's default retention without Content-MD5
  (moto demanded it as for PutObject, which has a body);
* DeleteObject's x-amz-bypass-governance-retention is true only when it says
  "true" (moto took any value, "false" included), and bypasses GOVERNANCE
  retention only with s3:BypassGovernanceRetention (a `deny` rule on that
  action takes it away); COMPLIANCE retention is never bypassed;
* PutObjectLockConfiguration works on a bucket that holds objects (AWS lets a
  versioned bucket with objects enable Object Lock and change its default
  retention; moto required an empty bucket);
* GetObjectRetention (moto answered 500);
* copies in parts: CreateMultipartUpload takes Object Lock headers, which the
  completed object keeps; UploadPartCopy reads its source across accounts like
  CopyObject (bucket policy, KMS key), refuses a range outside the source
  (InvalidRange) and answers the part's checksum when the upload has an
  algorithm; ListParts lists those checksums; CompleteMultipartUpload refuses a
  full-object checksum that differs from the parts' (BadDigest) and keeps the
  upload, as S3 does;
* `deny` rules of the runtime config apply to S3 actions (`s3:GetObject`, ...,
  resource `bucket` or `bucket/key`).

S3 requests are serialised by the server (control.WORLD_LOCK) with the ElastiCache
ones, which write exported objects into these buckets.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.core.responses import ActionResult
from moto.s3.exceptions import LockNotEnabled, MissingKey, S3ClientError
from moto.s3.models import FakeBucket, FakeKey, S3Backend, s3_backends
from moto.s3.responses import S3Response

from . import bucket_policy, kms_keys
from .control import CONFIG

S3_MANAGED_ALIAS = "alias/aws/s3"
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
# IAM action names where moto's request classification differs from them.
IAM_ACTIONS = {"HeadBucket": "ListBucket"}
# Actions an owner always keeps (an explicit Deny aside): moto's classification of a
# PUT on a bucket name is "CreateBucket" even when the bucket exists.
NEVER_CROSS_CHECKED = frozenset({"CreateBucket"})


class AccessDenied(S3ClientError):
    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__("AccessDenied", message)


class NoSuchObjectLockConfiguration(S3ClientError):
    def __init__(self) -> None:
        super().__init__("NoSuchObjectLockConfiguration",
                         "The specified object does not have a ObjectLock configuration")


class InvalidArgument(S3ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidArgument", message)


# --- lookups --------------------------------------------------------------------

def find_bucket(name: str) -> tuple[str, FakeBucket] | None:
    """(owner account, bucket) of a bucket name, if the bucket exists."""
    where = s3_backends.bucket_accounts.get(name)
    if where is None:
        return None
    partition, account = where
    bucket = s3_backends[account][partition].buckets.get(name)
    return (account, bucket) if bucket is not None else None


def backend_of(account: str) -> S3Backend:
    return s3_backends[account]["aws"]


def resource_arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"


def allows(who: bucket_policy.Principal, owner: str, bucket: FakeBucket, action: str, key: str | None) -> bool:
    """Whether `who` may do `action` (e.g. "s3:GetObject") on the bucket or object."""
    same = who.account is not None and who.account == owner
    return bucket_policy.permits(bucket.policy, who, action, resource_arn(bucket.name, key), same)


def check_access(account: str, bucket_name: str | None, key: str | None, action: str) -> None:
    """AccessDenied unless the caller may do `action` (without "s3:") there."""
    where = f"{bucket_name}/{key}" if key is not None else (bucket_name or "*")
    if CONFIG.denies(account, f"s3:{action}", where):
        raise AccessDenied()
    found = find_bucket(bucket_name) if bucket_name else None
    if found is None or action in NEVER_CROSS_CHECKED:
        return  # moto answers NoSuchBucket (or creates the bucket)
    owner, bucket = found
    if not allows(bucket_policy.caller(account), owner, bucket, f"s3:{action}", key):
        raise AccessDenied()


def check_decrypt(account: str, obj: FakeKey) -> None:
    """Reading an SSE-KMS object decrypts it with its key: another account's key
    must let the caller's account use kms:Decrypt, and AWS-managed keys never do."""
    if obj.encryption != "aws:kms" or not obj.kms_key_id:
        return
    key = kms_keys.find_key(obj.kms_key_id, obj.account_id, _bucket_region(obj))
    if key is None:
        raise AccessDenied(f"The ciphertext refers to a KMS key that does not exist: {obj.kms_key_id}")
    key_account = key.arn.split(":")[4]
    if key_account == account:
        return
    denied = key.key_manager == "AWS" or not bucket_policy.permits(
        key.policy, bucket_policy.caller(account), "kms:Decrypt", key.arn, same_account=False)
    if denied:
        raise AccessDenied(f"User: arn:aws:iam::{account}:user/snapcourier is not authorized to perform: "
                           f"kms:Decrypt on resource: {key.arn} because no resource-based policy allows "
                           "the kms:Decrypt action")


def _bucket_region(obj: FakeKey) -> str:
    found = find_bucket(obj.bucket_name)
    return found[1].region_name if found is not None else "us-east-1"


# --- encryption -----------------------------------------------------------------

def s3_managed_key(account: str, region: str) -> str:
    """The AWS-managed key behind alias/aws/s3 (made on first use), as an ARN."""
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    return backend.keys[backend.get_key_id_from_alias(S3_MANAGED_ALIAS)].arn


def _normalise_kms_key(self: S3Backend, key: FakeKey, bucket_name: str) -> None:
    if key.encryption != "aws:kms":
        return
    bucket = self.get_bucket(bucket_name)
    if not key.kms_key_id:
        key.kms_key_id = s3_managed_key(self.account_id, bucket.region_name)
        return
    found = kms_keys.find_key(key.kms_key_id, self.account_id, bucket.region_name)
    if found is not None:
        key.kms_key_id = found.arn


def _patch_put_object() -> None:
    stock = S3Backend.put_object

    def put_object(self: S3Backend, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> FakeKey:
        key = stock(self, bucket_name, key_name, *args, **kwargs)
        _normalise_kms_key(self, key, bucket_name)
        return key

    S3Backend.put_object = put_object


# --- request handlers -------------------------------------------------------------

def _authorize(stock: Any) -> Any:
    def authorize(self: S3Response, bucket_name: str | None = None, key_name: str | None = None) -> None:
        stock(self, bucket_name=bucket_name, key_name=key_name)
        action = self.data.get("Action") or ""
        check_access(self.current_account, bucket_name, key_name, IAM_ACTIONS.get(action, action))

    return authorize


def _copy_source(self: S3Response) -> tuple[str, str, str | None]:
    source = self.headers.get("x-amz-copy-source")
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    parsed = urlparse(source)
    bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
    return bucket, key, parse_qs(parsed.query).get("versionId", [None])[0]


def _copy_object(stock: Any) -> Any:
    def copy_object(self: S3Response) -> Any:
        """The source must be readable by the caller (bucket policy, KMS key)."""
        bucket, key, version = _copy_source(self)
        check_access(self.current_account, bucket, key, "GetObjectVersion" if version else "GetObject")
        found = find_bucket(bucket)
        if found is not None:
            source = backend_of(found[0]).get_object(bucket, key, version_id=version)
            if source is not None:
                check_decrypt(self.current_account, source)
        return stock(self)

    return copy_object


def _get_object(stock: Any) -> Any:
    def get_object(self: S3Response) -> Any:
        obj = self.backend.get_object(self.bucket_name, self.parse_key_name(),
                                      version_id=self._get_param("versionId"))
        if obj is not None:
            check_decrypt(self.current_account, obj)
        return stock(self)

    return get_object


def _check_lock_headers(self: S3Response, bucket: FakeBucket) -> None:
    mode = self.headers.get("x-amz-object-lock-mode")
    until = self.headers.get("x-amz-object-lock-retain-until-date")
    hold = self.headers.get("x-amz-object-lock-legal-hold")
    if not (mode or until or hold == "ON"):
        return
    if not bucket.object_lock_enabled:
        raise LockNotEnabled()
    if bool(mode) != bool(until):
        raise InvalidArgument("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
    if mode and mode not in LOCK_MODES:
        raise InvalidArgument("Unknown wormMode directive.")
    if until and _parse_until(until) <= datetime.now(timezone.utc):
        raise InvalidArgument("The retain until date must be in the future!")


def _parse_until(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument("The retain until date must be provided in ISO 8601 format") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _key_response_put(stock: Any) -> Any:
    def key_response_put(self: S3Response, query: dict[str, Any], key_name: str) -> Any:
        """CopyObject (not UploadPartCopy) into a bucket with Object Lock: the
        lock headers are checked, no Content-MD5 is needed (there is no body)."""
        subresource = any(q in query for q in ("retention", "legal-hold", "acl", "tagging", "uploadId"))
        if "x-amz-copy-source" not in self.headers or subresource:
            return stock(self, query, key_name)
        self._set_action("KEY", "PUT", query)
        self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
        _check_lock_headers(self, self.backend.get_bucket(self.bucket_name))
        return self.copy_object()

    return key_response_put


# --- copies in parts --------------------------------------------------------------

def _lock_of_request(self: S3Response) -> tuple[str | None, str | None]:
    return self.headers.get("x-amz-object-lock-mode"), self.headers.get("x-amz-object-lock-retain-until-date")


def _checksum_header(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm.lower()}"


def _key_response_post(stock: Any) -> Any:
    def key_response_post(self: S3Response, request: Any, body: bytes, bucket_name: str, query: dict[str, Any],
                          key_name: str) -> Any:
        if body == b"" and "uploads" in query:
            bucket = self.backend.get_bucket(bucket_name)
            _check_lock_headers(self, bucket)
            before = set(bucket.multiparts)
            answer = stock(self, request, body, bucket_name, query, key_name)
            mode, until = _lock_of_request(self)
            for upload_id in set(bucket.multiparts) - before:
                bucket.multiparts[upload_id].sc_lock = (mode, until)
            return answer
        if query.get("uploadId"):
            _check_full_checksum(self, bucket_name, query["uploadId"][0], body)
        return stock(self, request, body, bucket_name, query, key_name)

    return key_response_post


def _check_full_checksum(self: S3Response, bucket_name: str, upload_id: str, body: bytes) -> None:
    """A full-object checksum given to CompleteMultipartUpload must be the parts'."""
    from moto.s3.utils import compute_checksum

    multipart = self.backend.get_bucket(bucket_name).multiparts.get(upload_id)
    algorithm = multipart.metadata.get("x-amz-checksum-algorithm") if multipart is not None else None
    given = self.headers.get(_checksum_header(algorithm)) if algorithm else None
    if multipart is None or not given:
        return
    parts = [multipart.parts.get(number) for number, _ in self._complete_multipart_body(body)]
    if any(p is None for p in parts):
        return  # moto answers InvalidPart
    value = b"".join(p.value for p in parts if p is not None)
    computed = compute_checksum(value, algorithm).decode()
    if computed != given:
        raise S3ClientError("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")


def _complete_multipart_upload(stock: Any) -> Any:
    def complete(self: S3Backend, bucket_name: str, multipart_id: str, body: Any) -> FakeKey | None:
        multipart = self.get_bucket(bucket_name).multiparts.get(multipart_id)
        key = stock(self, bucket_name, multipart_id, body)
        mode, until = getattr(multipart, "sc_lock", (None, None))
        if key is not None and mode and until:
            key.lock_mode, key.lock_until = mode, until
        _normalise_kms_key(self, key, bucket_name) if key is not None else None
        return key

    return complete


def _upload_part_copy(self: S3Response) -> Any:
    """As moto's, with CopyObject's access rules on the source, the range checked,
    and the part's checksum in the answer when the upload has an algorithm."""
    from moto.s3.exceptions import InvalidRange
    from moto.s3.utils import compute_checksum

    src_bucket, src_key, version = _copy_source(self)
    check_access(self.current_account, src_bucket, src_key, "GetObjectVersion" if version else "GetObject")
    found = find_bucket(src_bucket)
    source = backend_of(found[0]).get_object(src_bucket, src_key, version_id=version) if found else None
    if source is None:
        raise MissingKey(key=src_key)
    check_decrypt(self.current_account, source)
    value = bytes(source.value)
    wanted = str(self.headers.get("x-amz-copy-source-range", ""))
    if wanted:
        try:
            first, last = (int(n) for n in wanted.split("bytes=")[-1].split("-"))
        except ValueError:
            raise InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last") from None
        if first > last or last >= len(value):
            raise InvalidRange(wanted, str(len(value)))
        value = value[first:last + 1]
    multipart = self.backend.get_bucket(self.bucket_name).multiparts.get(self._get_param("uploadId"))
    if multipart is None:
        from moto.s3.exceptions import NoSuchUpload
        raise NoSuchUpload(upload_id=self._get_param("uploadId"))
    part = multipart.set_part(self._get_int_param("partNumber"), value)
    result: dict[str, Any] = {"LastModified": part.last_modified_ISO8601, "ETag": part.etag}
    algorithm = multipart.metadata.get("x-amz-checksum-algorithm")
    if algorithm:
        part.sc_checksum = (algorithm, compute_checksum(value, algorithm).decode())
        result[f"Checksum{algorithm}"] = part.sc_checksum[1]
    self.data["Action"] = "UploadPartCopy"
    return self.serialized(ActionResult({"CopyPartResult": result}))


def _list_parts(self: S3Response) -> Any:
    """ListParts with each part's checksum (moto listed none), under S3's root element
    ListPartsResult (moto's serializer wrote ListPartsResponse, which botocore takes and
    the Rust SDK refuses)."""
    upload_id = self._get_param("uploadId")
    marker = self._get_int_param("part-number-marker", 0)
    max_parts = self._get_int_param("max-parts", 1000)
    multipart = self.backend.get_bucket(self.bucket_name).multiparts.get(upload_id)
    if multipart is None:
        from moto.s3.exceptions import NoSuchUpload
        raise NoSuchUpload(upload_id=upload_id)
    numbers = [n for n in multipart.partlist if n > marker]
    page, truncated = numbers[:max_parts], len(numbers) > max_parts
    parts = []
    for number in page:
        part = multipart.parts[number]
        entry: dict[str, Any] = {"PartNumber": number, "LastModified": part.last_modified_ISO8601,
                                 "ETag": part.etag, "Size": part.size}
        checksum = getattr(part, "sc_checksum", None)
        if checksum:
            entry[f"Checksum{checksum[0]}"] = checksum[1]
        parts.append(entry)
    self.data["Action"] = "ListParts"
    status, headers, body = self.serialized(ActionResult({
        "Bucket": self.bucket_name, "Key": self.parse_key_name(), "UploadId": upload_id,
        "PartNumberMarker": marker, "NextPartNumberMarker": page[-1] if page else marker,
        "MaxParts": max_parts, "IsTruncated": truncated, "Parts": parts,
        "StorageClass": "STANDARD",
    }))
    if isinstance(body, bytes):
        body = body.decode()
    body = body.replace("<ListPartsResponse", "<ListPartsResult", 1).replace("</ListPartsResponse>",
                                                                            "</ListPartsResult>")
    headers["content-length"] = str(len(body.encode()))
    return status, headers, body


def _delete_object(self: S3Response) -> Any:
    """DeleteObject; x-amz-bypass-governance-retention counts only as "true" and
    with s3:BypassGovernanceRetention. A locked version: AccessDenied (moto)."""
    key_name = self.parse_key_name()
    wanted = str(self.headers.get("x-amz-bypass-governance-retention", "")).lower() == "true"
    bypass = wanted and not CONFIG.denies(self.current_account, "s3:BypassGovernanceRetention",
                                          f"{self.bucket_name}/{key_name}")
    if_match = self.headers.get("If-Match")
    if if_match:
        obj = self.backend.get_object(self.bucket_name, key_name)
        if obj is None:
            raise MissingKey()
        if if_match.replace('"', "") != obj.etag.replace('"', ""):
            from moto.s3.exceptions import PreconditionFailed
            raise PreconditionFailed("If-Match")
    _, meta = self.backend.delete_object(self.bucket_name, key_name, version_id=self._get_param("versionId"),
                                         bypass=bypass)
    return 204, {f"x-amz-{k}": v for k, v in meta.items()}, ""


def _get_object_retention(self: S3Response, key_name: str) -> Any:
    self.data["Action"] = "GetObjectRetention"
    self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
    obj = self.backend.get_object(self.bucket_name, key_name, version_id=self._get_param("versionId"))
    if obj is None:
        raise MissingKey(key=key_name)
    if not obj.lock_mode or not obj.lock_until:
        raise NoSuchObjectLockConfiguration()
    return self.serialized(ActionResult({
        "Retention": {"Mode": obj.lock_mode, "RetainUntilDate": _parse_until(obj.lock_until)},
    }))


def _key_response_get(stock: Any) -> Any:
    def key_response_get(self: S3Response, query: dict[str, Any], key_name: str) -> Any:
        if "retention" in query:
            return _get_object_retention(self, key_name)
        return stock(self, query, key_name)

    return key_response_get


def _put_object_lock_configuration(self: S3Backend, bucket_name: str, lock_enabled: bool, mode: str | None = None,
                                   days: int | None = None, years: int | None = None) -> None:
    """As moto's, without its refusal of a bucket that holds objects."""
    from moto.s3.exceptions import InvalidBucketState

    bucket = self.get_bucket(bucket_name)
    if not bucket.is_versioned:
        raise InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
    if lock_enabled:
        bucket.object_lock_enabled = True
        bucket.versioning_status = "Enabled"
    bucket.default_lock_mode = mode
    bucket.default_lock_days = days
    bucket.default_lock_years = years


def _neutral_permission(self: FakeBucket, action: str, resource: str) -> Any:
    """moto's own bucket-policy check (any Deny, whoever asks) answered a bare 403
    without an error document; check_access decides instead, as AWS answers."""
    from moto.iam.access_control import PermissionResult

    return PermissionResult.NEUTRAL


def install() -> None:
    _patch_put_object()
    FakeBucket.get_permission = _neutral_permission
    S3Backend.put_object_lock_configuration = _put_object_lock_configuration
    r = S3Response
    r._authenticate_and_authorize_s3_action = _authorize(r._authenticate_and_authorize_s3_action)
    r.copy_object = _copy_object(r.copy_object)
    r.get_object = _get_object(r.get_object)
    r._key_response_put = _key_response_put(r._key_response_put)
    r._key_response_get = _key_response_get(r._key_response_get)
    r._key_response_post = _key_response_post(r._key_response_post)
    r.upload_part_copy = _upload_part_copy
    r.list_parts = _list_parts
    S3Backend.complete_multipart_upload = _complete_multipart_upload(S3Backend.complete_multipart_upload)
    r.delete_object = _delete_object
