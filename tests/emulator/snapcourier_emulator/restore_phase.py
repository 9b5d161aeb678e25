"""The `creating` phase of databases made by restores, shared by RDS and Redshift.

AWS answers a restore at once with the new DB cluster, DB instance or Redshift
cluster in status `creating`; it becomes `available` when the data is in place,
or ends in a failed status (RDS `failed`, Redshift `incompatible-restore`) when
the restore cannot complete, and can then only be deleted. Here that takes
`restore_reads` describe responses that include the resource (control.Config),
never ends while its id matches a `stuck` pattern, and ends failed when its id
matched a `restore_failures` pattern at the time of the restore call.

Callers hold control.WORLD_LOCK (RDS and Redshift requests are serialised).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .control import CONFIG

CREATING = "creating"
AVAILABLE = "available"


@dataclass
class RestorePhase:
    """Kept on the resource as `sc_restore` while it is (or was) being restored."""

    ident: str
    reads_left: int
    outcome: str  # the status the resource ends in: available, or the service's failed status
    # id() of the resource: moto's shallow copies (a snapshot's copy of its cluster, a read
    # replica) carry the attribute but are not the restored resource.
    owner: int


def begin(resource: Any, ident: str, failed_status: str) -> None:
    """A resource just made by a restore: `creating` for the configured reads.
    Its fate (available or `failed_status`) is decided now, from restore_failures."""
    outcome = failed_status if CONFIG.restore_fails(ident) else AVAILABLE
    resource.sc_restore = RestorePhase(ident, CONFIG.restore_reads, outcome, id(resource))
    resource.status = CREATING


def phase(resource: Any) -> RestorePhase | None:
    """The resource's restore phase, if it was made by a restore."""
    current = getattr(resource, "sc_restore", None)
    return current if current is not None and current.owner == id(resource) else None


def observe(resource: Any) -> None:
    """A describe response is about to include this resource: count the read,
    or end the phase once the reads are used up (unless the id is stuck)."""
    current = phase(resource)
    if current is None or resource.status != CREATING or CONFIG.is_stuck(current.ident):
        return
    if current.reads_left > 0:
        current.reads_left -= 1
        return
    resource.status = current.outcome
