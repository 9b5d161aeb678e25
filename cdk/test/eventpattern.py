"""Evaluate EventBridge patterns with moto's matcher (the emulator's EventBridge), for the
vault tests: reads {"pattern": ..., "events": [...]} on stdin, prints one boolean per event."""

import json
import sys

from moto.events.models import EventPattern

request = json.load(sys.stdin)
pattern = EventPattern.load(json.dumps(request["pattern"]))
print(json.dumps([pattern.matches_event(event) for event in request["events"]]))
