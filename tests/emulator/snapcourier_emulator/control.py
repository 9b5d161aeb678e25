"""Runtime knobs set through /snapcourier/config, and the request log.

Everything here is shared by the request threads of the server and guarded by
WORLD_LOCK, which also serialises RDS requests and control routes (see
server.py for why).
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from typing import Any, ClassVar

WORLD_LOCK = threading.RLock()


class ConfigError(ValueError):
    """A /snapcourier/config update that is not valid; nothing was applied."""


class Config:
    """creating_reads, stuck, restore_reads, restore_failures, the throttling and latency
    knobs and deny rules (see README.md)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "creating_reads": 0,
        "stuck": [],
        # Describe responses a DB cluster, DB instance or Redshift cluster made by a restore
        # (or a CreateDBInstance into a cluster) shows "creating" in before it is done.
        "restore_reads": 0,
        # Regexes on the restored resource's identifier: such a restore fails once its
        # creating reads are over (RDS "failed", Redshift "incompatible-restore").
        "restore_failures": [],
        "throttle_rate": 0.0,
        "throttle_seed": 0,
        "throttle_services": ["rds"],
        # Milliseconds each request to these services waits before it is handled, as a
        # real endpoint's round trip would (0: none).
        "latency_ms": 0,
        "latency_services": ["rds", "redshift", "kms"],
        # Explicit denies, as an IAM policy with a resource pattern would give:
        # [{"account": "111111111111", "action": "rds:ModifyDBClusterSnapshotAttribute",
        #   "resource": "<regex on the request's resource identifier>"}]
        "deny": [],
        # RDS's manual snapshot quotas per account and region (DescribeAccountAttributes).
        # Creating or copying a snapshot beyond one is SnapshotQuotaExceeded. AWS's default is
        # 100 of each; the emulator's is high so that worlds of thousands of snapshots work,
        # and a test of the quota sets it low.
        "manual_snapshot_quotas": {"ManualClusterSnapshots": 100000, "ManualSnapshots": 100000},
    }
    # Throttling these would break the world's own bookkeeping (credentials
    # are resolved through IAM) and they are not what the product retries.
    NEVER_THROTTLED = frozenset({"iam", "sts"})

    def __init__(self) -> None:
        self._values = dict(self.DEFAULTS)
        self._stuck: list[re.Pattern[str]] = []
        self._restore_failures: list[re.Pattern[str]] = []
        self._rng = random.Random(0)

    def as_dict(self) -> dict[str, Any]:
        with WORLD_LOCK:
            return {key: list(v) if isinstance(v, list) else v for key, v in self._values.items()}

    def update(self, changes: Any) -> dict[str, Any]:
        """Merge changes after validating all of them; re-seed the throttling
        generator whenever a throttle_* key is given, so that a test which sets
        a seed gets the same sequence of decisions every time."""
        if not isinstance(changes, dict):
            raise ConfigError("body must be a JSON object")
        unknown = sorted(set(changes) - set(self.DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown keys: {unknown}")
        merged = dict(self._values)
        merged.update(changes)
        stuck, restore_failures = self._validate(merged)
        with WORLD_LOCK:
            self._values = merged
            self._stuck = stuck
            self._restore_failures = restore_failures
            if any(key.startswith("throttle_") for key in changes):
                self._rng = random.Random(merged["throttle_seed"])
        return self.as_dict()

    @staticmethod
    def _validate(values: dict[str, Any]) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
        """Checks every knob; returns the compiled stuck and restore_failures patterns."""
        for name in ("creating_reads", "restore_reads"):
            reads = values[name]
            if not isinstance(reads, int) or isinstance(reads, bool) or reads < 0:
                raise ConfigError(f"{name} must be an integer >= 0")
        rate = values["throttle_rate"]
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
            raise ConfigError("throttle_rate must be a number in [0, 1]")
        seed = values["throttle_seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError("throttle_seed must be an integer")
        services = values["throttle_services"]
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise ConfigError("throttle_services must be a list of service names")
        latency = values["latency_ms"]
        if not isinstance(latency, int) or isinstance(latency, bool) or not 0 <= latency <= 5000:
            raise ConfigError("latency_ms must be an integer from 0 to 5000")
        latency_services = values["latency_services"]
        if not isinstance(latency_services, list) or not all(isinstance(x, str) for x in latency_services):
            raise ConfigError("latency_services must be a list of service names")
        deny = values["deny"]
        if not isinstance(deny, list) or not all(
            isinstance(d, dict) and set(d) == {"account", "action", "resource"} and all(isinstance(v, str) for v in d.values())
            for d in deny
        ):
            raise ConfigError('deny must be a list of {"account", "action", "resource"} strings')
        for rule in deny:
            try:
                re.compile(rule["resource"])
            except re.error as err:
                raise ConfigError(f"invalid regex in deny: {err}") from err
        quotas = values["manual_snapshot_quotas"]
        if not isinstance(quotas, dict) or set(quotas) != {"ManualClusterSnapshots", "ManualSnapshots"} or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in quotas.values()
        ):
            raise ConfigError("manual_snapshot_quotas must be {ManualClusterSnapshots, ManualSnapshots}: integers >= 0")
        return Config._patterns(values, "stuck"), Config._patterns(values, "restore_failures")

    @staticmethod
    def _patterns(values: dict[str, Any], name: str) -> list[re.Pattern[str]]:
        patterns = values[name]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"{name} must be a list of regular expressions")
        try:
            return [re.compile(p) for p in patterns]
        except re.error as err:
            raise ConfigError(f"invalid regex in {name}: {err}") from err

    @property
    def creating_reads(self) -> int:
        return self._values["creating_reads"]

    @property
    def restore_reads(self) -> int:
        return self._values["restore_reads"]

    def latency_seconds(self, service: str) -> float:
        with WORLD_LOCK:
            ms = self._values["latency_ms"]
            return ms / 1000.0 if ms and service in self._values["latency_services"] else 0.0

    def manual_snapshot_quota(self, name: str) -> int:
        with WORLD_LOCK:
            return int(self._values["manual_snapshot_quotas"][name])

    def is_stuck(self, ident: str) -> bool:
        """Whether a snapshot or restored resource with this id stays creating."""
        return any(p.search(ident) for p in self._stuck)

    def restore_fails(self, ident: str) -> bool:
        """Whether a restore that makes a resource with this id is to fail."""
        return any(p.search(ident) for p in self._restore_failures)

    def denies(self, account: str, action: str, resource: str | None) -> bool:
        """Whether an explicit deny rule matches this call."""
        if resource is None:
            return False
        with WORLD_LOCK:
            rules = list(self._values["deny"])
        return any(
            r["account"] == account and r["action"] == action and re.search(r["resource"], resource)
            for r in rules
        )

    def should_throttle(self, service: str) -> bool:
        """One draw per request to a throttled service, in arrival order."""
        if service in self.NEVER_THROTTLED or service not in self._values["throttle_services"]:
            return False
        with WORLD_LOCK:
            rate = self._values["throttle_rate"]
            return rate > 0 and self._rng.random() < rate


class RequestLog:
    """Counts of AWS requests as they arrive, throttled ones included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._by_action: Counter[str] = Counter()
            self._by_account: dict[str, Counter[str]] = {}
            self._throttled: Counter[str] = Counter()
            self._copy_peak: dict[str, int] = {}
            self._copies_refused: Counter[str] = Counter()
            self._in_flight: Counter[str] = Counter()
            self._peak_in_flight: dict[str, int] = {}

    def enter(self, service: str) -> None:
        """A request to `service` is being handled (for the peak of concurrent requests)."""
        with self._lock:
            self._in_flight[service] += 1
            self._peak_in_flight[service] = max(self._peak_in_flight.get(service, 0), self._in_flight[service])

    def leave(self, service: str) -> None:
        with self._lock:
            self._in_flight[service] -= 1

    def copy_started(self, where: str, in_flight: int) -> None:
        """A copy started with `in_flight` copies (itself included) in flight at `where`
        (account/region/kind): the peak shows whether the product kept within AWS's limit."""
        with self._lock:
            self._copy_peak[where] = max(self._copy_peak.get(where, 0), in_flight)

    def copy_refused(self, where: str) -> None:
        with self._lock:
            self._copies_refused[where] += 1

    def record(self, account: str, key: str, throttled: bool) -> None:
        with self._lock:
            self._by_action[key] += 1
            self._by_account.setdefault(account, Counter())[key] += 1
            if throttled:
                self._throttled[key] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._by_action.values()),
                "by_action": dict(self._by_action),
                "by_account": {
                    account: {"total": sum(c.values()), "by_action": dict(c)}
                    for account, c in self._by_account.items()
                },
                "throttled": {
                    "total": sum(self._throttled.values()),
                    "by_action": dict(self._throttled),
                },
                "peak_concurrent": dict(self._peak_in_flight),
                "copies": {
                    "peak_in_flight": dict(self._copy_peak),
                    "refused": dict(self._copies_refused),
                },
            }


CONFIG = Config()
REQUESTS = RequestLog()
