// SourceStack (source account, source region) and DestinationStack (one per destination
// account, in the source region where its state machine runs). Both: the Lambda steps from
// prebuilt binaries, the state machine from the ASL file, one EventBridge Scheduler schedule
// per config schedule with the exact `snapcourier run` input, an encrypted SNS topic for
// failure reports and alarms, and the ExecutionsFailed alarm.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Duration, RemovalPolicy, Stack, type StackProps, Tags } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import {
  Architecture,
  ApplicationLogLevel,
  Code,
  Function as LambdaFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { CfnSchedule } from "aws-cdk-lib/aws-scheduler";
import { Topic } from "aws-cdk-lib/aws-sns";
import { DefinitionBody, LogLevel, StateMachine } from "aws-cdk-lib/aws-stepfunctions";
import type { Construct } from "constructs";
import type { Config, ScheduledInput } from "./config";
import { type Engine, type Scope, type Step, NAMESPACE_TAG, statementsFor } from "./permissions";

export const STATEMACHINE_DIR = join(__dirname, "..", "..", "statemachine");

/** The ASL placeholder each step's function ARN fills. */
export const PLACEHOLDERS: Record<Step, string> = {
  take: "TakeFunctionArn",
  share: "ShareFunctionArn",
  copy_in_destination: "CopyInDestinationFunctionArn",
  cross_region_copy: "CrossRegionCopyFunctionArn",
  delete: "DeleteFunctionArn",
};
export const TOPIC_PLACEHOLDER = "FailureTopicArn";

/** Every `${Name}` an ASL file uses, sorted. */
export function placeholders(asl: string): string[] {
  return [...new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1] ?? ""))].sort();
}

export interface SnapcourierStackProps extends StackProps {
  config: Config;
  /** Directory holding one subdirectory per step, each with its `bootstrap` binary. */
  lambdaDir: string;
  /** The scheduled runs of this stack (`snapcourier inputs`). */
  runs: ScheduledInput[];
}

type Side = "source" | "destination";

abstract class SnapcourierStack extends Stack {
  readonly topic: Topic;
  readonly stateMachine: StateMachine;
  readonly functions: Partial<Record<Step, LambdaFunction>> = {};

  protected constructor(
    scope: Construct,
    id: string,
    side: Side,
    steps: Step[],
    permissions: Scope,
    props: SnapcourierStackProps,
  ) {
    super(scope, id, props);
    const ns = props.config.namespace;
    Tags.of(this).add(NAMESPACE_TAG, ns);
    const stateMachineName = permissions.stateMachineName;

    // Failure reports and alarms: a customer managed key, rotated, usable by CloudWatch alarms.
    const key = new Key(this, "TopicKey", {
      description: `snapcourier ${ns} ${side}: encrypts the failure topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsPublishToTheTopic",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
    );
    this.topic = new Topic(this, "FailureTopic", {
      displayName: `snapcourier ${ns} ${side} failures`,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsOfThisAccount",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { "aws:SourceAccount": this.account },
          ArnLike: { "aws:SourceArn": `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*` },
        },
      }),
    );

    for (const step of steps) {
      this.functions[step] = this.stepFunction(step, side, permissions, props);
    }

    // The state machine, from the ASL file as reviewed, with exactly its placeholders mapped.
    const aslPath = join(STATEMACHINE_DIR, `${side}.asl.json`);
    const asl = readFileSync(aslPath, "utf8");
    const substitutions: Record<string, string> = { [TOPIC_PLACEHOLDER]: this.topic.topicArn };
    for (const step of steps) {
      const fn = this.functions[step];
      if (fn) substitutions[PLACEHOLDERS[step]] = fn.functionArn;
    }
    const used = placeholders(asl);
    const unmapped = used.filter((p) => !(p in substitutions));
    const unused = Object.keys(substitutions).filter((p) => !used.includes(p));
    if (unmapped.length > 0 || unused.length > 0) {
      throw new Error(
        `${aslPath}: placeholders ${JSON.stringify(used)} do not match the stack's substitutions ${JSON.stringify(Object.keys(substitutions).sort())} (unmapped: ${unmapped.join(", ") || "none"}; unused: ${unused.join(", ") || "none"})`,
      );
    }
    const logGroup = new LogGroup(this, "StateMachineLogs", {
      logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new StateMachine(this, "StateMachine", {
      stateMachineName,
      definitionBody: DefinitionBody.fromString(asl),
      definitionSubstitutions: substitutions,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    for (const fn of Object.values(this.functions)) fn.grantInvoke(this.stateMachine);
    // Publishing failure reports (explicit: grantPublish would add kms:GenerateDataKey*).
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: "PublishFailureReports",
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: "EncryptFailureReportsViaSns",
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [key.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `sns.${this.region}.amazonaws.com` } },
      }),
    );

    // One schedule per config schedule, whose input is what `snapcourier run` builds.
    const schedulerRole = new Role(this, "SchedulerRole", {
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
      description: `snapcourier ${ns} ${side}: EventBridge Scheduler starts the state machine`,
    });
    this.stateMachine.grantStartExecution(schedulerRole);
    for (const run of props.runs) {
      new CfnSchedule(this, `Schedule-${run.schedule}`, {
        description: `snapcourier ${ns} ${side}: schedule ${run.schedule}`,
        scheduleExpression: run.expression,
        scheduleExpressionTimezone: "UTC",
        flexibleTimeWindow: { mode: "OFF" },
        state: "ENABLED",
        target: {
          arn: this.stateMachine.stateMachineArn,
          roleArn: schedulerRole.roleArn,
          input: JSON.stringify(run.input),
          retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
        },
      });
    }

    new Alarm(this, "ExecutionsFailed", {
      alarmName: `snapcourier-${ns}-${side}-executions-failed`,
      alarmDescription: `A snapcourier ${side} execution failed; the failure topic carries the report naming each resource.`,
      metric: this.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: "Sum" }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(new SnsAction(this.topic));
  }

  private stepFunction(step: Step, side: Side, scope: Scope, props: SnapcourierStackProps): LambdaFunction {
    const ns = props.config.namespace;
    const dir = join(props.lambdaDir, step);
    if (!existsSync(join(dir, "bootstrap"))) {
      throw new Error(
        `no Lambda binary at ${join(dir, "bootstrap")}: build them with \`cargo lambda build --release --arm64\` or pass -c lambdaDir=DIR`,
      );
    }
    const id = step
      .split("_")
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join("");
    const name = `snapcourier-${ns}-${side}-${step.replace(/_/g, "-")}`;
    const logGroup = new LogGroup(this, `${id}Logs`, {
      logGroupName: `/aws/lambda/${name}`,
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new Role(this, `${id}Role`, {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `snapcourier ${ns} ${side}: the ${step} step`,
    });
    for (const s of statementsFor(step, scope)) role.addToPrincipalPolicy(s);
    const fn = new LambdaFunction(this, id, {
      functionName: name,
      description: `snapcourier ${ns} ${side}: ${step}`,
      runtime: Runtime.PROVIDED_AL2023,
      architecture: Architecture.ARM_64,
      handler: "bootstrap",
      code: Code.fromAsset(dir),
      memorySize: 256,
      timeout: Duration.minutes(5),
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
      environment: {
        SNAPCOURIER_MAX_ATTEMPTS: String(props.config.settings?.max_attempts ?? 5),
      },
    });
    return fn;
  }
}

function engines(config: Config): Set<Engine> {
  return new Set(config.schedules.map((s) => s.engine));
}

function otherRegions(config: Config): string[] {
  const all = config.destinations.flatMap((d) => d.regions.map((r) => r.region));
  return [...new Set(all)].filter((r) => r !== config.source.region);
}

export class SourceStack extends SnapcourierStack {
  constructor(scope: Construct, id: string, props: SnapcourierStackProps) {
    const c = props.config;
    const redshift = c.schedules.filter((s) => s.engine === "redshift");
    const permissions: Scope = {
      namespace: c.namespace,
      engines: engines(c),
      account: c.source.account,
      regions: [c.source.region],
      sourceAccount: c.source.account,
      sourceRegion: c.source.region,
      redshiftCopyRegions: redshift.length > 0 ? otherRegions(c) : [],
      redshiftCopyKey: c.source.redshift_copy_kms_key ?? undefined,
      redshiftCopyAutomated: redshift.some(
        (s) => (s as { redshift?: { copy_automated?: boolean } }).redshift?.copy_automated === true,
      ),
      destinationKeys: [],
      stateMachineName: `snapcourier-${c.namespace}-source`,
    };
    super(scope, id, "source", ["take", "share", "delete"], permissions, props);
  }
}

export interface DestinationStackProps extends SnapcourierStackProps {
  account: string;
}

export class DestinationStack extends SnapcourierStack {
  constructor(scope: Construct, id: string, props: DestinationStackProps) {
    const c = props.config;
    const d = c.destinations.find((x) => x.account === props.account);
    if (!d) throw new Error(`destination account ${props.account} is not in the config`);
    const regions = [c.source.region, ...d.regions.map((r) => r.region).filter((r) => r !== c.source.region)];
    const keys = [...(d.copy_in_kms_key ? [d.copy_in_kms_key] : []), ...d.regions.map((r) => r.kms_key)];
    const permissions: Scope = {
      namespace: c.namespace,
      engines: engines(c),
      account: d.account,
      regions,
      sourceAccount: c.source.account,
      sourceRegion: c.source.region,
      redshiftCopyRegions: [],
      redshiftCopyAutomated: false,
      destinationKeys: [...new Set(keys)],
      stateMachineName: `snapcourier-${c.namespace}-destination`,
    };
    super(
      scope,
      id,
      "destination",
      ["copy_in_destination", "cross_region_copy", "delete"],
      permissions,
      props,
    );
  }
}
