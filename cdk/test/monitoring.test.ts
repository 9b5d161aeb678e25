// Monitoring: the RPO heartbeat alarm per schedule (RecoveryPointAge, written by the functions
// as EMF; missing data is breaching), and the dashboard.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { App } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import { buildStacks } from "../lib/app";
import { CLI, EXAMPLE, cliInputs, dummyLambdas, resources, scratchDir, synth } from "./helpers";

const s = synth();
const inputs = cliInputs();

const sides = [
  { name: "source", t: s.source, runs: inputs.source },
  { name: "destination", t: s.destinations[0]!, runs: inputs.destinations[0]!.runs },
];

/** The alarms on `metric`: exactly one per run's schedule, in the runs' order. */
function scheduleAlarms<R extends { schedule: string }>(t: Template, metric: string, runs: R[]): [R, any][] {
  const alarms = resources(t, "AWS::CloudWatch::Alarm").filter(([, r]) => r.Properties.MetricName === metric);
  assert.equal(alarms.length, runs.length, metric);
  return runs.map((run) => {
    const found = alarms.filter(([, r]) =>
      (r.Properties.Dimensions as { Name: string; Value: string }[]).some(
        (d) => d.Name === "Schedule" && d.Value === run.schedule,
      ),
    );
    assert.equal(found.length, 1, `${metric} ${run.schedule}`);
    return [run, found[0]![1].Properties];
  });
}

describe("monitoring", () => {
  for (const side of sides) {
    describe(side.name, () => {
      it("alarms per schedule when some database has no recovery point protected within two intervals", () => {
        for (const [run, p] of scheduleAlarms(side.t, "UnprotectedDatabases", side.runs)) {
          assert.equal(p.Namespace, "snapcourier");
          assert.equal(p.Threshold, 0);
          assert.equal(p.ComparisonOperator, "GreaterThanThreshold");
          assert.equal(p.TreatMissingData, "ignore");
          assert.equal(p.Period, run.heartbeat.period_seconds);
          assert.equal(p.AlarmActions.length, 1);
          assert.equal(p.OKActions.length, 1);
        }
      });

      it("alarms per schedule when no recovery point is protected within two intervals, or none is reported", () => {
        for (const [run, p] of scheduleAlarms(side.t, "RecoveryPointAge", side.runs)) {
          assert.equal(p.Namespace, "snapcourier");
          assert.deepEqual(
            [...p.Dimensions].sort((a: any, b: any) => a.Name.localeCompare(b.Name)),
            [
              { Name: "Deployment", Value: "demo" },
              { Name: "Schedule", Value: run.schedule },
              { Name: "Side", Value: side.name },
            ],
          );
          assert.equal(p.Statistic, "Maximum");
          assert.equal(p.Period, run.heartbeat.period_seconds);
          assert.equal(p.EvaluationPeriods, run.heartbeat.evaluation_periods);
          assert.equal(p.DatapointsToAlarm, run.heartbeat.evaluation_periods);
          assert.equal(p.Threshold, run.heartbeat.threshold_seconds);
          assert.equal(p.ComparisonOperator, "GreaterThanThreshold");
          assert.equal(p.TreatMissingData, "breaching");
          assert.equal(p.AlarmActions.length, 1);
          assert.match(p.AlarmActions[0].Ref, /^FailureTopic/);
          assert.deepEqual(p.OKActions, p.AlarmActions);
        }
        // The example's daily schedules: a two-day window of daily periods, all breaching.
        const daily = side.runs.find((r) => r.schedule === "aurora-daily")!;
        assert.deepEqual(daily.heartbeat, {
          period_seconds: 86400,
          evaluation_periods: 2,
          threshold_seconds: 172800,
          missing_data_breaching: true,
        });
      });

      it("has a dashboard with executions, failures, the recovery point age of every schedule and its alarms", () => {
        const [[, dash]] = resources(side.t, "AWS::CloudWatch::Dashboard") as [[string, any]];
        assert.equal(dash.Properties.DashboardName, `snapcourier-demo-${side.name}`);
        // The body is a Fn::Join of JSON fragments: compare without quotes and escapes.
        const body = JSON.stringify(dash.Properties.DashboardBody).replace(/[\\"]/g, "");
        for (const metric of ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "Errors"]) {
          assert.ok(body.includes(metric), metric);
        }
        for (const run of side.runs) {
          assert.ok(
            body.includes(`RecoveryPointAge,Deployment,demo,Schedule,${run.schedule},Side,${side.name}`),
            run.schedule,
          );
        }
        assert.equal(body.includes("CopiesInFlight"), side.name === "destination");
        assert.ok(body.includes("alarm"), "alarm status widget");
      });
    });
  }

  it("warns, and watches only the reported age, for a schedule too far apart for a missing-data alarm", () => {
    const dir = scratchDir("snapcourier-weekly-");
    const path = join(dir, "weekly.yaml");
    writeFileSync(path, readFileSync(EXAMPLE, "utf8").replace("interval: 24h", "interval: 7d"));
    const app = new App({ outdir: scratchDir("snapcourier-cdkout-") });
    const built = buildStacks(app, { config: path, lambdaDir: dummyLambdas(), snapcourierBin: CLI });
    const weekly = cliInputs(path).source.find((r) => r.heartbeat.missing_data_breaching === false);
    assert.ok(weekly, "the edited schedule is weekly");
    const t = Template.fromStack(built.source);
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "RecoveryPointAge",
      Dimensions: Match.arrayWith([{ Name: "Schedule", Value: weekly.schedule }]),
      TreatMissingData: "notBreaching",
      Threshold: 14 * 86400,
    });
    const warnings = Annotations.fromStack(built.source).findWarning("*", Match.stringLikeRegexp("more than 3.5 days apart"));
    assert.equal(warnings.length, 1);
  });
});
