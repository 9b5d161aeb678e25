// cdk-nag AwsSolutions: no unacknowledged finding, and every acknowledgement explains itself.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { keylessConfig, synth } from "./helpers";

const s = synth();
// The example with every destination key left to the stacks (key stacks, alias conditions).
const keyless = synth(keylessConfig());

describe("cdk-nag AwsSolutions", () => {
  for (const stack of [
    s.built.source,
    ...s.built.destinations,
    ...keyless.built.destinations,
    ...s.built.regionStacks,
    ...keyless.built.regionStacks,
  ]) {
    it(`${stack.stackName}: zero unacknowledged findings`, () => {
      const report = new AwsSolutionsChecks().validateScope(stack);
      assert.deepEqual(
        report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(", ")}`),
        [],
      );
    });

    it(`${stack.stackName}: every acknowledgement has a reason a reviewer can check`, () => {
      let count = 0;
      for (const c of stack.node.findAll()) {
        for (const m of c.node.metadata) {
          if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
          for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
            count += 1;
            if (id.endsWith("AwsSolutions-SQS3")) {
              // A queue without a DLQ of its own: only the schedules' dead-letter queue.
              assert.match(c.node.path, /\/ScheduleDeadLetters\/Resource$/);
            } else if (id.endsWith("AwsSolutions-S1")) {
              // No server access logs: only ElastiCache's export and vault buckets.
              assert.match(c.node.path, /\/(ExportBucket|VaultBucket-[a-z0-9-]+)\/Resource$/);
            } else {
              assert.match(id, /AwsSolutions-IAM5\[/, "only IAM5 wildcard-resource findings are accepted");
            }
            assert.ok(String(reason).length >= 100, `${id}: reason too short`);
          }
        }
      }
      // A key stack holds a key and its alias: nothing to accept there.
      assert.ok(count > 0 || stack.stackName.includes("-keys-"));
    });
  }
});
