// The synthesized stacks: functions, state machine, schedules, topic, alarm. (The destination's
// restore drill, which the example config has: test/drill.test.ts.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Match } from "aws-cdk-lib/assertions";
import { placeholders, STATEMACHINE_DIR } from "../lib/stacks";
import { cliInputs, list, resources, statements, synth } from "./helpers";

const s = synth();
const inputs = cliInputs();

const sides = [
  { name: "source", t: s.source, steps: ["take", "share", "delete"], runs: inputs.source, drill: undefined },
  {
    name: "destination",
    t: s.destinations[0]!,
    // The drill step too: the example config has drills.
    steps: ["copy-in-destination", "cross-region-copy", "delete", "drill"],
    runs: inputs.destinations[0]!.runs,
    drill: inputs.destinations[0]!.drill,
  },
];

describe("stacks", () => {
  it("one source stack in the source account and region, one destination stack per account", () => {
    assert.equal(s.built.source.account, "111111111111");
    assert.equal(s.built.source.region, "us-east-1");
    assert.deepEqual(
      s.built.destinations.map((d) => [d.stackName, d.account, d.region]),
      [["snapcourier-demo-destination-222222222222", "222222222222", "us-east-1"]],
    );
  });

  for (const side of sides) {
    describe(side.name, () => {
      it("has exactly its step functions: provided.al2023 arm64, JSON logs, own log group and role", () => {
        const fns = resources(side.t, "AWS::Lambda::Function");
        assert.deepEqual(
          fns.map(([, r]) => r.Properties.FunctionName).sort(),
          side.steps.map((st) => `snapcourier-demo-${side.name}-${st}`).sort(),
        );
        const roles = new Set<string>();
        for (const [, fn] of fns) {
          const p = fn.Properties as Record<string, any>;
          assert.equal(p.Runtime, "provided.al2023");
          assert.deepEqual(p.Architectures, ["arm64"]);
          assert.equal(p.Handler, "bootstrap");
          assert.equal(p.LoggingConfig.LogFormat, "JSON");
          roles.add(JSON.stringify(p.Role));
          assert.equal(p.Environment.Variables.SNAPCOURIER_MAX_ATTEMPTS, "5");
          assert.equal(p.Environment.Variables.SNAPCOURIER_DEPLOYED_RUNS, `/snapcourier/demo/${side.name}/runs/`);
        }
        assert.equal(roles.size, fns.length, "each function has its own role");
        for (const st of side.steps) {
          side.t.hasResourceProperties("AWS::Logs::LogGroup", {
            LogGroupName: `/aws/lambda/snapcourier-demo-${side.name}-${st}`,
            RetentionInDays: 365,
          });
        }
      });

      it("deploys each schedule's run, exactly its schedule's input, as the only run its functions accept", () => {
        const parameters = resources(side.t, "AWS::SSM::Parameter");
        // The drill's run is one more (test/drill.test.ts).
        assert.equal(parameters.length, side.runs.length + (side.drill ? 1 : 0));
        for (const run of side.runs) {
          const found = parameters.find(([, p]) => p.Properties.Name === `/snapcourier/demo/${side.name}/runs/${run.schedule}`);
          assert.ok(found, run.schedule);
          assert.equal(found[1].Properties.Type, "String");
          assert.equal(found[1].Properties.Tier, "Standard");
          assert.deepEqual(JSON.parse(found[1].Properties.Value as string), run.input);
          // The schedule passes the same run.
          const [, schedule] = resources(side.t, "AWS::Scheduler::Schedule").find(
            ([, r]) => (r.Properties.Description as string).endsWith(`schedule ${run.schedule}`),
          )!;
          assert.deepEqual(JSON.parse((schedule.Properties.Target as { Input: string }).Input), run.input);
        }
        // Each function may read its side's runs and no other parameter (the drill: its own run,
        // and its records; test/drill.test.ts).
        const reads = statements(side.t).filter(
          ({ roles, s: st }) => list(st.Action).some((a) => a.startsWith("ssm:")) && !JSON.stringify(roles).includes('"DrillRole'),
        );
        assert.equal(reads.length, side.steps.filter((st) => st !== "drill").length);
        for (const { s: st } of reads) {
          assert.deepEqual(list(st.Action), ["ssm:GetParameter"]);
          const named = list(st.Resource).map((r) => JSON.stringify(r));
          assert.equal(named.length, side.runs.length);
          for (const run of side.runs) {
            assert.ok(named.some((r) => r.includes(`:parameter/snapcourier/demo/${side.name}/runs/${run.schedule}`)), `${run.schedule}: ${named}`);
          }
        }
      });

      it("runs the ASL file as reviewed, with exactly its placeholders substituted and a timeout", () => {
        // The side's state machine (the destination's drill has its own: test/drill.test.ts).
        const [, sm] = resources(side.t, "AWS::StepFunctions::StateMachine").find(
          ([, r]) => r.Properties.StateMachineName === `snapcourier-demo-${side.name}`,
        ) as [string, any];
        const asl = readFileSync(join(STATEMACHINE_DIR, `${side.name}.asl.json`), "utf8");
        // The file's states as they are, plus the execution timeout: the longest interval of
        // the side's schedules (all four are daily in the example).
        const deployed = JSON.parse(sm.Properties.DefinitionString);
        assert.deepEqual(deployed, { ...JSON.parse(asl), TimeoutSeconds: 86_400 });
        assert.equal(
          deployed.TimeoutSeconds,
          Math.max(...side.runs.map((r) => r.execution_timeout_seconds)),
        );
        assert.deepEqual(Object.keys(sm.Properties.DefinitionSubstitutions).sort(), placeholders(asl));
        assert.equal(sm.Properties.StateMachineName, `snapcourier-demo-${side.name}`);
        assert.deepEqual(sm.Properties.TracingConfiguration, { Enabled: true });
        assert.equal(sm.Properties.LoggingConfiguration.Level, "ALL");
        assert.equal(sm.Properties.LoggingConfiguration.IncludeExecutionData, false);
        for (const [name, value] of Object.entries(sm.Properties.DefinitionSubstitutions)) {
          const target = name === "FailureTopicArn" ? "AWS::SNS::Topic" : "AWS::Lambda::Function";
          const ref = (value as any).Ref ?? (value as any)["Fn::GetAtt"]?.[0];
          assert.equal(side.t.toJSON().Resources[ref].Type, target, name);
        }
      });

      it("schedules every config schedule with exactly the input `snapcourier run` builds", () => {
        const schedules = resources(side.t, "AWS::Scheduler::Schedule");
        // And the drill's schedule on the destination (test/drill.test.ts).
        assert.equal(schedules.length, side.runs.length + (side.drill ? 1 : 0));
        for (const run of side.runs) {
          const found = schedules.filter(([, r]) => {
            const input = JSON.parse((r.Properties.Target as any).Input);
            return input.schedule?.name === run.schedule;
          });
          assert.equal(found.length, 1, run.schedule);
          const p = found[0]![1].Properties as any;
          assert.deepEqual(JSON.parse(p.Target.Input), run.input);
          assert.equal(p.ScheduleExpression, run.expression);
          assert.equal(p.ScheduleExpressionTimezone, "UTC");
          assert.equal(p.State, "ENABLED");
        }
        assert.equal(side.runs.length, 4);
      });

      it("schedules whose start fails land in an encrypted, SSL-only dead-letter queue that alarms", () => {
        const queues = resources(side.t, "AWS::SQS::Queue");
        assert.equal(queues.length, 1);
        const [queueId, queue] = queues[0]!;
        const q = queue.Properties as any;
        assert.equal(q.QueueName, `snapcourier-demo-${side.name}-schedule-dead-letters`);
        const keyId = resources(side.t, "AWS::KMS::Key")
          .map(([id]) => id)
          .find((id) => id.startsWith("TopicKey"));
        assert.deepEqual(q.KmsMasterKeyId, { "Fn::GetAtt": [keyId, "Arn"] });
        assert.equal(q.MessageRetentionPeriod, 14 * 86400);
        side.t.hasResourceProperties("AWS::SQS::QueuePolicy", {
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
            ]),
          },
        });
        // Every schedule sends what it cannot deliver there...
        for (const [, schedule] of resources(side.t, "AWS::Scheduler::Schedule")) {
          assert.deepEqual((schedule.Properties as any).Target.DeadLetterConfig, {
            Arn: { "Fn::GetAtt": [queueId, "Arn"] },
          });
        }
        // ...with its role, which may send to that queue only...
        side.t.hasResourceProperties("AWS::IAM::Policy", {
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Sid: "SendUndeliveredStarts", Action: "sqs:SendMessage", Resource: { "Fn::GetAtt": [queueId, "Arn"] } }),
            ]),
          },
          Roles: [{ Ref: Match.stringLikeRegexp("^SchedulerRole") }],
        });
        // ...and one message there raises an alarm on the failure topic.
        side.t.hasResourceProperties("AWS::CloudWatch::Alarm", {
          AlarmName: `snapcourier-demo-${side.name}-schedule-starts-undelivered`,
          MetricName: "ApproximateNumberOfMessagesVisible",
          Namespace: "AWS/SQS",
          Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queueId, "QueueName"] } }],
          Threshold: 1,
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
          AlarmActions: [{ Ref: Match.stringLikeRegexp("^FailureTopic") }],
        });
      });

      it("sends failure reports to an SNS topic encrypted with a rotated customer managed key, SSL only", () => {
        side.t.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
        side.t.hasResourceProperties("AWS::SNS::Topic", {
          KmsMasterKeyId: { "Fn::GetAtt": [Match.stringLikeRegexp("^TopicKey"), "Arn"] },
        });
        side.t.hasResourceProperties("AWS::SNS::TopicPolicy", {
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
            ]),
          },
        });
      });

      it("alarms to the topic when an execution fails, times out or is aborted", () => {
        for (const metric of ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]) {
          side.t.hasResourceProperties("AWS::CloudWatch::Alarm", {
            MetricName: metric,
            Namespace: "AWS/States",
            Threshold: 1,
            ComparisonOperator: "GreaterThanOrEqualToThreshold",
            AlarmActions: [{ Ref: Match.stringLikeRegexp("^FailureTopic") }],
          });
        }
      });
    });
  }
});
