"""Lambda Invoke sent to real function processes instead of moto's Lambda.

moto's Lambda runs functions in Docker, which this world does not have. Tests
run the project's Rust functions under `cargo lambda watch` instead, whose
Runtime API emulator serves every binary of a package at
`POST {url}/2015-03-31/functions/{binary}/invocations`. A route table, set
through `/snapcourier/lambda-routes`, names the functions sent there; the
server's front hands every Invoke of a routed function to `invoke()` before
moto sees it, whoever calls: an SDK, or a Step Functions Task (whose calls come
back to this server over HTTP, see sfn_ext.py).

Routes are keyed by function name (any account, any region) or by function
ARN (that account and region only; it wins over a name), so that each account
can have a `cargo lambda watch` of its own holding that account's credentials.

cargo-lambda differs from the Invoke API in ways an AWS SDK or Step Functions
would notice, and `invoke()` translates them:

* it knows binaries by name only (an ARN gives 404): the function name is
  taken out of whatever the caller gave (name, name:qualifier, partial or full
  ARN) and the route's binary is called;
* a function error is HTTP 500 with `{"errorType", "errorMessage"}` and no
  `X-Amz-Function-Error` header, which an SDK takes for a server fault and
  retries, running the function again. AWS answers 200 with
  `X-Amz-Function-Error: Unhandled` and the error document as payload; so
  does this. Step Functions then fails the Task with Error = errorType;
* an unknown binary is 404 with a body of its own: it becomes Lambda's
  ResourceNotFoundException;
* it has no function timeout, and a function process that dies (a panic with
  `panic = "abort"`) is restarted while its invocation waits forever: after
  the route's timeout (default 900 s, Lambda's maximum) the invocation fails
  as a timed-out Lambda function does, with errorType `Sandbox.Timedout`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

LOG = logging.getLogger(__name__)

# What the Invoke API's path looks like; the function part is URL-decoded first.
INVOKE_PATH_RE = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FUNCTION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:lambda:(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):function:(?P<name>[A-Za-z0-9_-]{1,64})$"
)
# What Invoke accepts as FunctionName, qualifier optional: name, 123456789012:function:name,
# or the full ARN.
TARGET_RE = re.compile(
    r"^(?:arn:aws[a-z-]*:lambda:(?P<region>[^:]+):(?P<account>\d{12}):function:"
    r"|(?P<partial_account>\d{12}):function:)?(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>[A-Za-z0-9_$-]+))?$"
)
# Lambda's own maximum. The first invocation under `cargo lambda watch` also
# waits for the binary to compile: build before, or give a route more.
DEFAULT_TIMEOUT_S = 900
LOOPBACK_NAMES = {"localhost"}

StartResponse = Callable[..., Any]


class RouteError(ValueError):
    """A /snapcourier/lambda-routes update that is not valid; nothing was applied."""


@dataclass(frozen=True)
class Route:
    host: str
    port: int
    base_path: str  # any path prefix of the route URL, without a trailing slash
    binary: str | None  # None: the binary has the function's name
    timeout_s: float


def _parse_route(key: str, value: Any) -> Route:
    if isinstance(value, str):
        value = {"url": value}
    if not (isinstance(value, dict) and set(value) <= {"url", "binary", "timeout"}
            and isinstance(value.get("url"), str)):
        raise RouteError(f'{key}: a route is a URL string, {{"url": ..., "binary": ..., "timeout": ...}} or null')
    url, binary, timeout = value["url"], value.get("binary"), value.get("timeout", DEFAULT_TIMEOUT_S)
    if binary is not None and (not isinstance(binary, str) or not NAME_RE.match(binary)):
        raise RouteError(f"{key}: binary must be a binary name")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise RouteError(f"{key}: timeout must be a number of seconds > 0")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment:
        raise RouteError(f"{key}: route URL must be http://HOST:PORT[/path], got {url!r}")
    try:
        loopback = parts.hostname in LOOPBACK_NAMES or ipaddress.ip_address(parts.hostname).is_loopback
        port = parts.port or 80
    except ValueError:
        loopback, port = False, 0
    if not loopback:
        raise RouteError(f"{key}: route URL must point at a loopback address, got {url!r}")
    return Route(parts.hostname, port, parts.path.rstrip("/"), binary, float(timeout))


class RouteTable:
    """Function name or ARN -> where its invocations go. Values are kept as
    they were given, so GET returns what was posted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._given: dict[str, Any] = {}
        self._routes: dict[str, Route] = {}

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._given)

    def update(self, changes: Any) -> dict[str, Any]:
        """Merge changes (a null value removes that route) after validating
        all of them."""
        if not isinstance(changes, dict):
            raise RouteError('body must be a JSON object {"function name or ARN": "http://127.0.0.1:PORT"}')
        parsed: dict[str, Route | None] = {}
        for key, value in changes.items():
            if not NAME_RE.match(key) and not FUNCTION_ARN_RE.match(key):
                raise RouteError(f"{key!r} is neither a function name nor a function ARN "
                                 "(arn:aws:lambda:REGION:ACCOUNT:function:NAME, no qualifier)")
            parsed[key] = None if value is None else _parse_route(key, value)
        with self._lock:
            for key, route in parsed.items():
                if route is None:
                    self._given.pop(key, None)
                    self._routes.pop(key, None)
                else:
                    self._given[key] = changes[key]
                    self._routes[key] = route
            return dict(self._given)

    def lookup(self, account: str, region: str, name: str) -> Route | None:
        with self._lock:
            return self._routes.get(f"arn:aws:lambda:{region}:{account}:function:{name}") or self._routes.get(name)


ROUTES = RouteTable()


@dataclass
class Target:
    account: str
    region: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"


def invocation_target(path: str, caller_account: str, caller_region: str) -> Target | None:
    """The function an Invoke request names (None if the path is not Invoke's
    or names nothing valid). A bare name is the caller's, in the region the
    request was signed for."""
    match = INVOKE_PATH_RE.match(path)
    if not match:
        return None
    target = TARGET_RE.match(unquote(match["function"]))
    if not target:
        return None
    account = target["account"] or target["partial_account"] or caller_account
    return Target(account, target["region"] or caller_region, target["name"])


def routed(path: str, caller_account: str, caller_region: str) -> tuple[Target, Route] | None:
    target = invocation_target(path, caller_account, caller_region)
    if target is None:
        return None
    route = ROUTES.lookup(target.account, target.region, target.name)
    return None if route is None else (target, route)


# --- the call and its answer --------------------------------------------------

def _respond(start_response: StartResponse, status: str, body: bytes, headers: dict[str, str]) -> list[bytes]:
    request_id = str(uuid.uuid4())
    start_response(status, [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
        *headers.items(),
    ])
    return [body]


def _lambda_error(start_response: StartResponse, status: str, error_type: str, message: str) -> list[bytes]:
    """An error of the Lambda service itself (not of the function), as the
    rest-json protocol carries it."""
    body = json.dumps({"Type": "User" if status.startswith("4") else "Service", "Message": message}).encode()
    return _respond(start_response, status, body, {"x-amzn-ErrorType": error_type})


def _post(route: Route, binary: str, payload: bytes) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection(route.host, route.port, timeout=route.timeout_s)
    try:
        connection.request("POST", f"{route.base_path}/2015-03-31/functions/{binary}/invocations", body=payload,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def _function_error_document(body: bytes) -> bytes:
    """What AWS puts in the payload of a failed invocation: the runtime's
    error document, or one made up for an answer that is not one."""
    try:
        document = json.loads(body)
        if isinstance(document, dict) and isinstance(document.get("errorType"), str):
            return body
    except ValueError:
        pass
    text = body.decode("utf-8", "replace").strip() or "function failed without an error document"
    return json.dumps({"errorType": "Runtime.Unknown", "errorMessage": text}).encode()


def invoke(environ: dict[str, Any], start_response: StartResponse, target: Target, route: Route) -> list[bytes]:
    """Answer an Invoke of a routed function the way AWS Lambda does."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    payload = environ["wsgi.input"].read(length) if length else b""
    if not payload.strip():
        payload = b"{}"  # AWS hands a function called without a payload an empty object
    binary = route.binary or target.name
    invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
    if invocation_type == "DryRun":
        return _respond(start_response, "204 No Content", b"", {})
    if invocation_type == "Event":
        def run() -> None:
            try:
                _post(route, binary, payload)
            except OSError as err:
                LOG.warning("async invocation of %s failed: %s", target.arn, err)
        threading.Thread(target=run, name=f"invoke-{target.name}", daemon=True).start()
        return _respond(start_response, "202 Accepted", b"", {})

    version = {"X-Amz-Executed-Version": "$LATEST"}
    try:
        status, body, headers = _post(route, binary, payload)
    except TimeoutError:
        document = {"errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {route.timeout_s:.2f} seconds"}
        return _respond(start_response, "200 OK", json.dumps(document).encode(),
                        {**version, "X-Amz-Function-Error": "Unhandled"})
    except OSError as err:  # connection refused or reset
        return _lambda_error(start_response, "500 Internal Server Error", "ServiceException",
                             f"snapcourier emulator: no answer for {target.arn} from "
                             f"http://{route.host}:{route.port}{route.base_path}: {err}")
    if status == 200 and "x-amz-function-error" not in headers:
        return _respond(start_response, "200 OK", body, version)
    if status == 404:
        return _lambda_error(start_response, "404 Not Found", "ResourceNotFoundException",
                             f"Function not found: {target.arn} (no binary {binary!r} at "
                             f"http://{route.host}:{route.port}: {body.decode('utf-8', 'replace')})")
    if status == 200 or status >= 500:
        # A function error: 200 + X-Amz-Function-Error, as AWS answers it.
        error_kind = headers.get("x-amz-function-error", "Unhandled")
        return _respond(start_response, "200 OK", _function_error_document(body),
                        {**version, "X-Amz-Function-Error": error_kind})
    return _lambda_error(start_response, "500 Internal Server Error", "ServiceException",
                         f"snapcourier emulator: {target.arn}: unexpected HTTP {status} from the function host: "
                         f"{body.decode('utf-8', 'replace')[:500]}")
