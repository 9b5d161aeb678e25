"""The HTTP side: moto's own WSGI dispatcher behind a thin front that adds
the control routes, request counting, throttling and Lambda routing, and the
serve loop.

RDS, Redshift, ElastiCache and S3 requests and control routes run one at a time under WORLD_LOCK: moto's
backends are plain dicts that a describe iterates while another request
thread may insert, and the creating-phase counters must see each describe
once. Other services keep moto's own concurrency.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from moto.core.exceptions import ServiceException
from moto.iam.models import get_account_id_from
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import (REGIONS, elasticache_ext, elasticache_world, kms_keys, lambda_routes, rds_ext, redshift_ext,
               redshift_world, s3_ext, s3_world, sfn_ext, world)
from .control import CONFIG, REQUESTS, WORLD_LOCK, ConfigError
from .lambda_routes import ROUTES, RouteError

HOST = "127.0.0.1"
CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
PROFILES = {"source": "snapcourier-source", "destination": "snapcourier-destination"}

StartResponse = Callable[..., Any]


@dataclass
class AwsRequest:
    service: str
    action: str
    account: str
    region: str
    json_protocol: bool
    # The resource a Query-protocol call names (snapshot, cluster, instance or tagged ARN).
    resource: str | None = None


# Parameters that name the resource of an RDS or Redshift call, most specific first.
RESOURCE_PARAMS = ("DBClusterSnapshotIdentifier", "DBSnapshotIdentifier", "TargetDBClusterSnapshotIdentifier",
                   "ResourceName", "DBClusterIdentifier", "DBInstanceIdentifier",
                   "SnapshotIdentifier", "TargetSnapshotIdentifier", "SourceSnapshotIdentifier", "SnapshotArn",
                   "ClusterIdentifier", "SnapshotCopyGrantName",
                   # ElastiCache
                   "SnapshotName", "SourceSnapshotName", "ServerlessCacheSnapshotName", "ReplicationGroupId",
                   "ServerlessCacheName")
# Services whose requests run one at a time (see the module docstring). S3 with
# ElastiCache: an export writes objects into S3's backend.
LOCKED_SERVICES = frozenset({"rds", "redshift", "elasticache", "s3"})


def _read_form_body(environ: dict[str, Any]) -> dict[str, list[str]]:
    """The query protocol's parameters, leaving the body readable for moto."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return parse_qs(body.decode("utf-8", "replace"))


def inspect_request(environ: dict[str, Any]) -> AwsRequest | None:
    """Service, action and account of a SigV4-signed AWS request; None for
    anything else (moto's own /moto-api routes, unsigned calls)."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    match = CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", "")) or CREDENTIAL_RE.search(
        "Credential=" + query.get("X-Amz-Credential", [""])[0]
    )
    if not match:
        return None
    access_key, region, service = match.groups()
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        action = target.rsplit(".", 1)[-1]
    elif service == "lambda" and lambda_routes.INVOKE_PATH_RE.match(environ.get("PATH_INFO", "")):
        action = "Invoke"
    else:
        params = _read_form_body(environ) or query
        action = params.get("Action", [f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"])[0]
    account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or get_account_id_from(access_key)
    resource = None
    if not target and service != "lambda":
        resource = next((params[name][0] for name in RESOURCE_PARAMS if params.get(name)), None)
    return AwsRequest(service, action, account, region, json_protocol=bool(target), resource=resource)


def access_denied_response(request: AwsRequest, start_response: StartResponse) -> list[bytes]:
    """What AWS answers for an explicit IAM deny, in the Query protocol."""
    request_id = str(uuid.uuid4())
    message = (f"User: arn:aws:iam::{request.account}:user/snapcourier is not authorized to perform: "
               f"{request.service}:{request.action} on resource: {request.resource} with an explicit deny")
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    start_response("403 Forbidden", [
        ("Content-Type", "text/xml"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
    ])
    return [body]


def throttling_response(request: AwsRequest, start_response: StartResponse) -> list[bytes]:
    """What AWS answers when it throttles a call, in the call's protocol."""
    request_id = str(uuid.uuid4())
    if request.json_protocol:
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    start_response("400 Bad Request", [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
    ])
    return [body]


def _json(start_response: StartResponse, status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class EmulatorApp:
    """WSGI front of moto's dispatcher."""

    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.routes: dict[tuple[str, str], Callable[[Any], tuple[str, Any]]] = {
            ("GET", "/snapcourier/config"): lambda _: ("200 OK", CONFIG.as_dict()),
            ("POST", "/snapcourier/config"): lambda body: ("200 OK", CONFIG.update(body)),
            ("GET", "/snapcourier/requests"): lambda _: ("200 OK", REQUESTS.snapshot()),
            ("POST", "/snapcourier/requests/reset"): self._reset_requests,
            ("POST", "/snapcourier/snapshots"): self._insert_snapshots,
            ("POST", "/snapcourier/clusters"): lambda body: ("200 OK", {"arn": _create_cluster(body)}),
            ("POST", "/snapcourier/objects"): lambda body: ("200 OK", s3_world.insert_objects(body)),
            ("GET", "/snapcourier/lambda-routes"): lambda _: ("200 OK", ROUTES.as_dict()),
            ("POST", "/snapcourier/lambda-routes"): lambda body: ("200 OK", ROUTES.update(body)),
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/snapcourier/"):
            return self.control(environ, start_response)
        request = inspect_request(environ)
        if request is None:
            return self.moto(environ, start_response)
        # Decided before moto sees the request, so a throttled call never
        # does part of its work.
        throttled = CONFIG.should_throttle(request.service)
        REQUESTS.record(request.account, f"{request.service}:{request.action}", throttled)
        # The latency a real endpoint adds, outside WORLD_LOCK: a client that makes its
        # calls one at a time pays it per call, one that overlaps them does not.
        REQUESTS.enter(request.service)
        try:
            delay = CONFIG.latency_seconds(request.service)
            if delay:
                time.sleep(delay)
            return self.dispatch(request, throttled, environ, start_response)
        finally:
            REQUESTS.leave(request.service)

    def dispatch(self, request: Any, throttled: bool, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        if throttled:
            return throttling_response(request, start_response)
        if CONFIG.denies(request.account, f"{request.service}:{request.action}", request.resource):
            return access_denied_response(request, start_response)
        if request.service in LOCKED_SERVICES:
            return self.call_moto_locked(environ, start_response)
        if request.service == "lambda" and request.action == "Invoke":
            # A routed function never reaches moto's Lambda (which would want Docker).
            hit = lambda_routes.routed(environ["PATH_INFO"], request.account, request.region)
            if hit is not None:
                return lambda_routes.invoke(environ, start_response, *hit)
        return self.moto(environ, start_response)

    def call_moto_locked(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        with WORLD_LOCK:
            response = self.moto(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                if hasattr(response, "close"):
                    response.close()

    def control(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ["PATH_INFO"].rstrip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        route = self.routes.get((method, path))
        if route is None:
            known = any(p == path for _, p in self.routes)
            return _json(start_response, "405 Method Not Allowed" if known else "404 Not Found",
                         {"error": f"no route {method} {path}"})
        body = None
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError as err:
                return _json(start_response, "400 Bad Request", {"error": f"invalid JSON: {err}"})
        try:
            with WORLD_LOCK:
                status, payload = route(body)
        except (ConfigError, RouteError, world.InsertError) as err:
            return _json(start_response, "400 Bad Request", {"error": str(err)})
        except ServiceException as err:  # moto refused what the route asked of it
            return _json(start_response, "400 Bad Request", {"error": f"{err.code}: {err.message}"})
        return _json(start_response, status, payload)

    @staticmethod
    def _reset_requests(_: Any) -> tuple[str, Any]:
        REQUESTS.reset()
        return "200 OK", REQUESTS.snapshot()

    @staticmethod
    def _insert_snapshots(body: Any) -> tuple[str, Any]:
        """One snapshot object -> {"arn"}; a list -> {"arns"}, all or none."""
        if not isinstance(body, list):
            return "200 OK", {"arn": _insert_snapshot(body)}
        arns: list[str] = []
        try:
            for spec in body:
                arns.append(_insert_snapshot(spec))
        except (world.InsertError, ServiceException):
            ours = {"redshift": redshift_world.is_redshift_arn, "elasticache": elasticache_world.is_elasticache_arn}
            world.remove_snapshots([arn for arn in arns if not any(test(arn) for test in ours.values())])
            redshift_world.remove_snapshots([arn for arn in arns if redshift_world.is_redshift_arn(arn)])
            elasticache_world.remove_snapshots([arn for arn in arns if elasticache_world.is_elasticache_arn(arn)])
            raise
        return "200 OK", {"arns": arns}


def _insert_snapshot(spec: Any) -> str:
    """RDS snapshots by default, Redshift ones with "kind": "redshift", ElastiCache
    ones (of a replication group or a serverless cache) with "kind": "elasticache"."""
    if elasticache_world.is_elasticache_spec(spec):
        return elasticache_world.insert_snapshot(spec)
    if redshift_world.is_redshift_spec(spec):
        return redshift_world.insert_snapshot(spec)
    return world.insert_snapshot(spec)


def _create_cluster(spec: Any) -> str:
    """An Aurora cluster by default, a Redshift one with "kind": "redshift", an
    ElastiCache replication group or serverless cache with "kind": "elasticache"."""
    if elasticache_world.is_elasticache_spec(spec):
        return elasticache_world.create_cache(spec)
    if redshift_world.is_redshift_spec(spec):
        return redshift_world.create_cluster(spec)
    return world.create_cluster(spec)


# --- files ------------------------------------------------------------------

def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def write_files(state_file: Path, endpoint: str, seeded: dict[str, Any]) -> list[Path]:
    """The AWS shared config and credentials files, then the state file last,
    since its appearance tells the caller that everything is in place."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    config_file = state_file.with_name(f"{state_file.stem}.aws-config")
    credentials_file = state_file.with_name(f"{state_file.stem}.aws-credentials")
    config_text = "".join(
        f"[profile {PROFILES[role]}]\nregion = {REGIONS[0]}\nendpoint_url = {endpoint}\n\n" for role in PROFILES
    )
    credentials_text = "".join(
        f"[{PROFILES[role]}]\naws_access_key_id = {seeded['accounts'][role]['access_key_id']}\n"
        f"aws_secret_access_key = {seeded['accounts'][role]['secret_access_key']}\n\n"
        for role in PROFILES
    )
    _write_atomically(config_file, config_text)
    _write_atomically(credentials_file, credentials_text, 0o600)
    state = {
        "endpoint": endpoint,
        "pid": os.getpid(),
        **seeded,
        "aws_config_file": str(config_file.resolve()),
        "aws_credentials_file": str(credentials_file.resolve()),
    }
    _write_atomically(state_file, json.dumps(state, indent=2) + "\n")
    return [state_file, config_file, credentials_file]


# --- lifelines --------------------------------------------------------------

def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A dead child that its parent has not reaped yet still answers kill(0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _watch_stdin(stop: threading.Event) -> None:
    while sys.stdin.buffer.read(65536):
        pass
    stop.set()


def serve(state_file: Path, port: int, seed: str, watch_pid: int | None, stdin_lifeline: bool, verbose: bool) -> int:
    started = time.monotonic()
    if not verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # The interpreter logs every failing state (a caught Task error included)
        # with a dump of its syntax tree; the execution history says the same.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    kms_keys.install()
    rds_ext.install()
    redshift_ext.install()
    elasticache_ext.install()
    s3_ext.install()
    sfn_ext.install()
    seeded = world.seed(seed)
    app = EmulatorApp()
    server = make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)
    server.daemon_threads = True
    endpoint = f"http://{HOST}:{server.server_port}"
    sfn_ext.set_endpoint(endpoint)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    files = write_files(state_file, endpoint, seeded)
    print(f"ready {endpoint}", flush=True)
    if verbose:
        print(f"started in {time.monotonic() - started:.2f}s (after imports)", file=sys.stderr)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if stdin_lifeline:
        threading.Thread(target=_watch_stdin, args=(stop,), name="stdin", daemon=True).start()
    while not stop.wait(0.5):
        if watch_pid is not None and not pid_alive(watch_pid):
            break
    server.shutdown()
    server.server_close()
    for path in files:
        path.unlink(missing_ok=True)
    return 0
