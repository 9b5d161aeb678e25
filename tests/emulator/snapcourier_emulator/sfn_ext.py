"""Step Functions executions that run for real, in the right account.

moto 5.2.5 interprets ASL (its parser backend, ported from LocalStack) only
when `{"stepfunctions": {"execute_state_machine": true}}` is in its config;
this world turns it on. What else the patches here change, and why:

* **Service calls go to this server, in the execution's account.** The
  interpreter makes its Task calls (Lambda Invoke, SNS Publish, ...) with a
  boto3 client of its own (`boto_client_for`) pointed at
  `http://localhost:$MOTO_PORT` (5000 unless set: not this server's port)
  with access key "ak", which moto maps to its default account 123456789012,
  whatever the state machine's account. Here the client calls this server on
  127.0.0.1 and names the account in `x-moto-account-id`: the execution's
  account, or for a Task with `Credentials.RoleArn`, that role's account (AWS
  assumes the role). Going over HTTP (not in-process) means the front sees
  these calls too: Lambda routing (lambda_routes.py), counting, throttling.
* **StartExecution without a name** gets a UUID, as on AWS; moto named every
  such execution "None", so a second one with another input failed with
  ExecutionAlreadyExists.
* **DescribeExecution output** is serialised with the interpreter's own JSON
  encoder (compact, timestamps as ISO 8601); moto's `json.dumps` gave HTTP
  500 for an output holding timestamps (an aws-sdk Task result, say), and
  a string output came back unquoted.

Executions are per account and region already: each account's backend holds
its own state machines, and an execution ARN is looked up only among the
caller's.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.config import default_user_config
from moto.core.responses import ActionResult

# Importing the parser backend imports every interpreter module that binds
# boto_client_for by name (checked in install()).
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.responses import StepFunctionResponse

_endpoint: str | None = None
_clients: dict[tuple[str, str, str], BaseClient] = {}
_clients_lock = threading.Lock()


def set_endpoint(endpoint: str) -> None:
    """Where the interpreter's service calls go: this server, once it has a port."""
    global _endpoint
    _endpoint = endpoint


@dataclass
class AccountStateCredentials(StateCredentials):
    """The credentials a Task's service calls use, with the account they are in."""

    account: str | None = None


def _account_of_arn(arn: Any) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


_original_eval_state_credentials = StateTask._eval_state_credentials


def _eval_state_credentials(self: StateTask, env: Any) -> StateCredentials:
    credentials = _original_eval_state_credentials(self, env)
    execution_account = env.aws_execution_details.account
    account = (_account_of_arn(credentials.role_arn) or execution_account) if self.credentials else execution_account
    return AccountStateCredentials(role_arn=credentials.role_arn, account=account)


def boto_client_for(region: str, service: str, state_credentials: Any = None) -> BaseClient:
    """moto's boto_client_for, calling this server in the caller's account.
    Some callers (Map's S3 item reader and result writer) build plain
    StateCredentials with the execution role: its ARN gives the account."""
    if _endpoint is None:
        raise RuntimeError("snapcourier emulator: Step Functions service call before the server has a port")
    account = (getattr(state_credentials, "account", None)
               or _account_of_arn(getattr(state_credentials, "role_arn", None))
               or DEFAULT_ACCOUNT_ID)
    key = (service, region, account)
    with _clients_lock:  # boto3 clients are thread-safe; creating them is not
        client = _clients.get(key)
        if client is None:
            client = boto3.session.Session().client(
                service,
                region_name=region,
                endpoint_url=_endpoint,
                aws_access_key_id="snapcourier-states",
                aws_secret_access_key="snapcourier-states",
                # As moto configures it: one attempt (Retry belongs to the ASL), no timeout
                # that a long Lambda function could reach.
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                ),
            )
            client.meta.events.register(
                "before-sign", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
            _clients[key] = client
    return client


_original_start_execution = parser_models.StepFunctionsParserBackend.start_execution


def _start_execution(self: Any, state_machine_arn: str, name: str | None = None,
                     execution_input: str | None = None, trace_header: str | None = None) -> Any:
    return _original_start_execution(self, state_machine_arn, name or str(uuid.uuid4()), execution_input,
                                     trace_header)


def _describe_execution(self: StepFunctionResponse) -> ActionResult:
    """StepFunctionResponse.describe_execution with the output serialised as
    the interpreter serialises data (see the module doc)."""
    arn = self._get_param("executionArn")
    execution = self.stepfunction_backend.describe_execution(arn)
    response: dict[str, Any] = {
        "executionArn": arn,
        "input": execution.execution_input,
        "name": execution.name,
        "startDate": execution.start_date,
        "stateMachineArn": execution.state_machine_arn,
        "status": execution.status,
    }
    if execution.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.ABORTED, ExecutionStatus.FAILED,
                            ExecutionStatus.TIMED_OUT):
        response["stopDate"] = execution.stop_date
    if execution.status == ExecutionStatus.SUCCEEDED:
        output = execution.output
        if isinstance(execution, parser_models.Execution):  # the output is data
            response["output"] = to_json_str(output, separators=(",", ":"))
        elif output is not None:  # moto's canned executions (execution turned off) keep text
            response["output"] = output if isinstance(output, str) else json.dumps(output)
        response["outputDetails"] = execution.output_details
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    return ActionResult(response)


def install() -> None:
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    StateTask._eval_state_credentials = _eval_state_credentials
    parser_models.StepFunctionsParserBackend.start_execution = _start_execution
    StepFunctionResponse.describe_execution = _describe_execution

    # Interpreter modules bound moto's boto_client_for by name when imported:
    # replace it in each, and in its own module for any imported later.
    original = boto_client_module.boto_client_for
    replaced = []
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for
            replaced.append(name)
    # Guards against a moto upgrade moving things: the two users we rely on.
    for needed in ("state_task.lambda_eval_utils", "service.state_task_service_sns"):
        if not any(name.endswith(needed) for name in replaced):
            raise RuntimeError(f"snapcourier emulator: moto's {needed} does not use boto_client_for any more")

