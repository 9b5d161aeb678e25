// The engine table's IAM actions (crates/core/src/engine.rs, `snapcourier inputs`: engines[].iam)
// against the roles the stacks build: every step's role grants exactly the table's actions of
// the engines' services (rds, redshift, elasticache, s3) for the engines it serves, no fewer
// (a call the code makes is granted) and no more (synth refuses a role granting another).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Template } from "aws-cdk-lib/assertions";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { parse } from "yaml";
import { ENGINE_SERVICES, type EngineFacts } from "../lib/config";
import { checkEngineActions, type Step } from "../lib/permissions";
import { cliInputs, EXAMPLE, list, scratchDir, statements, STEPS, synth } from "./helpers";

/** The example with every optional grant on: Redshift's copy of automated snapshots, an
 * opt-in tag on the caches (their tags are read at take), drills (in the example). */
function everything(): string {
  const config = parse(readFileSync(EXAMPLE, "utf8"));
  for (const s of config.schedules) {
    if (s.engine === "redshift") s.redshift = { copy_automated: true };
    if (s.engine === "elasticache") s.opt_in_tag = { key: "backup", value: "true" };
  }
  const path = join(scratchDir("snapcourier-everything-"), "everything.json");
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const ROLE_OF: Record<string, Step> = {
  TakeRole: "take",
  ShareRole: "share",
  CopyInDestinationRole: "copy_in_destination",
  CrossRegionCopyRole: "cross_region_copy",
  DeleteRole: "delete",
  DrillRole: "drill",
};

describe("the engine table's IAM actions", () => {
  const table: EngineFacts[] = cliInputs().engines;
  const built = synth(everything());
  const templates = [built.source, ...built.destinations, ...built.built.regionStacks.map((r) => Template.fromStack(r))];
  const service = new RegExp(`^(${ENGINE_SERVICES.join("|")}):`);

  it("are granted, each step's exactly, for the example's four engines with every option on", () => {
    const granted: Record<string, Set<string>> = {};
    for (const t of templates) {
      for (const { roles, s } of statements(t)) {
        const role = Object.keys(ROLE_OF).find((r) => JSON.stringify(roles).includes(`"${r}`));
        if (!role) continue;
        const step = ROLE_OF[role]!;
        granted[step] ??= new Set();
        for (const a of list(s.Action as string | string[])) if (service.test(a)) granted[step].add(a);
      }
    }
    for (const step of STEPS as Step[]) {
      const wanted = [...new Set(table.flatMap((e) => e.iam[step]))].sort();
      assert.deepEqual([...(granted[step] ?? [])].sort(), wanted, step);
    }
  });

  it("stop synth when a role would grant another action of those services, naming it and where to add it", () => {
    const engines = new Set(table.map((e) => e.engine));
    const extra = new PolicyStatement({ sid: "Stray", actions: ["rds:DeleteDBCluster", "kms:Decrypt"], resources: ["*"] });
    assert.throws(
      () => checkEngineActions("delete", engines, table, [extra]),
      /the delete role would grant rds:DeleteDBCluster \(Stray\).*crates\/core\/src\/engine\.rs/,
    );
    // Not another service's action, and not an action the table lists for the step.
    checkEngineActions("delete", engines, table, [
      new PolicyStatement({ sid: "Fine", actions: ["kms:Decrypt", "rds:DeleteDBSnapshot"], resources: ["*"] }),
    ]);
    // An engine the role does not serve lends it nothing.
    assert.throws(
      () =>
        checkEngineActions("drill", new Set(["rds"] as const), table, [
          new PolicyStatement({ sid: "Cache", actions: ["elasticache:CreateReplicationGroup"], resources: ["*"] }),
        ]),
      /elasticache:CreateReplicationGroup/,
    );
  });
});
