#!/usr/bin/env bash
# The main job against the embedded emulator: start a two-account, two-region AWS world,
# run the source side then the destination side of examples/snapcourier.yaml, show what
# exists where, and stop the emulator (it also stops by itself if this script dies).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
bin="$root/target/debug/snapcourier"
config="$root/examples/snapcourier.yaml"
state_dir=$(mktemp -d)
state="$state_dir/state.json"

PYTHONPATH="$root/tests/emulator" "$python" -m snapcourier_emulator serve \
  --port 0 --seed demo --state-file "$state" --watch-pid $$ >/dev/null &
emulator=$!
trap 'kill $emulator 2>/dev/null || true; wait $emulator 2>/dev/null || true; rm -rf "$state_dir"' EXIT

for _ in $(seq 1 300); do
  [ -s "$state" ] && break
  kill -0 $emulator 2>/dev/null || { echo "the emulator failed to start" >&2; exit 1; }
  sleep 0.2
done
[ -s "$state" ] || { echo "the emulator did not start within 60 s" >&2; exit 1; }

field() { "$python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$state" "$1"; }
endpoint=$(field endpoint)
export AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL="$endpoint"
AWS_CONFIG_FILE=$(field aws_config_file)
AWS_SHARED_CREDENTIALS_FILE=$(field aws_credentials_file)

# Snapshots and copies take two looks to become available, as on AWS they take minutes.
"$python" - "$endpoint" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/snapcourier/config", data=json.dumps({"creating_reads": 2, "restore_reads": 2}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(req).read()
PY

echo "emulator at $endpoint: source 111111111111, destination 222222222222, us-east-1 and eu-west-1"
echo
echo "== snapcourier validate"
"$bin" validate -c "$config"
echo
echo "== snapcourier plan: what the source run will do (nothing is changed)"
"$bin" plan --side source -c "$config" --profile snapcourier-source --schedule aurora-daily
echo
echo "== source account 111111111111: take, share, expire"
"$bin" run --side source -c "$config" --profile snapcourier-source
echo
echo "== destination account 222222222222: copy in, copy to eu-west-1, clean up, expire"
"$bin" run --side destination -c "$config" --profile snapcourier-destination
echo
echo "== an on-demand snapshot before a deploy, kept 2 days on both sides: shared and copied"
echo "   into every destination region at once (the schedule's destination run, made now)"
"$bin" snapshot-now -c "$config" --profile snapcourier-source --schedule aurora-daily \
  --database orders-db --label "before deploy 42" --keep 2d --wait \
  --destination-profile snapcourier-destination
echo
echo "== a restore drill in the vault region: the newest copy of a database of each engine"
echo "   restored (a cache: seeded from its vault export), timed until available, deleted, and recorded"
"$bin" drill -c "$config" --profile snapcourier-destination --region eu-west-1 \
  --database orders-db --database billing-pg --database warehouse-main --database carts-valkey
echo
echo "== coverage: every covered database, its newest snapshot and copies, against its RPO"
"$bin" report --coverage -c "$config" --profile snapcourier-source \
  --destination-profile snapcourier-destination || echo "(not every database is ok: exit 1)"
echo
echo "== what snapcourier owns now"
"$bin" report --side source -c "$config" --profile snapcourier-source
"$bin" report --side destination -c "$config" --profile snapcourier-destination
echo
echo "== a second run right away creates, copies and deletes nothing"
"$bin" run --side source -c "$config" --profile snapcourier-source | grep -E "run of schedule|AWS calls"
"$bin" run --side destination -c "$config" --profile snapcourier-destination | grep -E "run of schedule|AWS calls"
