// The deployment config: parsed (YAML or JSON), checked against the JSON Schema that
// `snapcourier schema` prints (config.schema.json, a checked-in copy a cargo test keeps
// identical), then handed to `snapcourier inputs`, which applies every rule of the CLI and
// prints the state machine input of each scheduled run. The stacks never re-implement the
// config's defaults or rules.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Ajv2020, { type ErrorObject } from "ajv/dist/2020";
import { parse as parseYaml } from "yaml";

/** A config that cannot be deployed; the message names each bad field like the CLI does. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The engines a schedule names (crates/core/src/engine.rs `Engine`). */
export type Engine = "aurora" | "rds" | "redshift" | "elasticache";

/** How an engine's snapshots reach the destination accounts (crates/core/src/engine.rs
 * `Transport`): shared and copied by each destination, access authorized per account, or
 * exported to the source stack's bucket and copied into the destinations' vault buckets. */
export type Transport = "snapshot-share" | "account-authorization" | "s3-export";

/** S3 Object Lock mode of the vault buckets (the API's spelling). */
export type ObjectLockMode = "GOVERNANCE" | "COMPLIANCE";

/** One scheduled run as `snapcourier inputs` prints it. */
export interface ScheduledInput {
  schedule: string;
  /** EventBridge expression: the schedule's cron, else rate(<interval>). */
  expression: string;
  /** The RecoveryPointAge alarm's window, computed by the CLI from the schedule's interval. */
  heartbeat: AlarmWindow;
  /** The longest an execution of this schedule may run (its interval; computed by the CLI). */
  execution_timeout_seconds: number;
  /** The state machine input, exactly what `snapcourier run` builds. */
  input: Record<string, unknown>;
}

/** How to alarm on one schedule's heartbeat (crates/core/src/heartbeat.rs, AlarmWindow). */
export interface AlarmWindow {
  period_seconds: number;
  /** All of these periods must breach. */
  evaluation_periods: number;
  threshold_seconds: number;
  /** False when two intervals exceed the 7 days CloudWatch evaluates. */
  missing_data_breaching: boolean;
}

/** The vault's exceptions, defaults applied by the CLI (crates/core/src/config.rs, Vault). */
export interface VaultInputs {
  break_glass_role?: string;
  deploy_roles: string[];
}

/** Where restored databases go in one region (crates/core/src/drill.rs, DrillNetwork). */
export interface DrillNetwork {
  db_subnet_group?: string | null;
  redshift_subnet_group?: string | null;
  security_groups?: string[];
}

/** The config's drill section (crates/core/src/drill.rs, Drills); durations as the CLI
 * prints them in a run (`168h`), or as written in the config (`7d`). */
export interface Drills {
  every: string;
  /** That many databases per region, or these database ids. */
  databases: number | string[];
  regions?: string[];
  timeout?: string;
  aurora_instance_class?: string;
  rds_instance_class?: string;
  networks?: Record<string, DrillNetwork>;
  /** ARN of the Lambda function that judges each restored database. */
  validation_function?: string | null;
}

/** The drill state machine's input, exactly what `snapcourier drill` builds (DrillRun). */
export interface DrillRun {
  version: number;
  namespace: string;
  source: { account: string; region: string; redshift_copy_kms_key?: string | null };
  destination_account: string;
  /** The destination regions the drill restores in. */
  regions: string[];
  schedules: { name: string; engine: Engine }[];
  drills: Drills;
}

/** A destination's restore drill as `snapcourier inputs` prints it (ScheduledDrill). */
export interface ScheduledDrill {
  /** Its deployed run's name among the destination's runs (`_drills`). */
  name: string;
  /** EventBridge expression of the check whether a drill is due (daily, or more often). */
  expression: string;
  /** The drill interval (`every`): the DrillAge alarm fires past two of them. */
  every_seconds: number;
  /** The drill state machine's TimeoutSeconds (the restore timeout plus an hour). */
  execution_timeout_seconds: number;
  input: DrillRun;
}

export interface DestinationInputs {
  account: string;
  /** Every region this destination writes to: the source region first, then its own. */
  regions: string[];
  /** Regions whose KMS key this destination's stacks create. */
  stack_key_regions: string[];
  runs: ScheduledInput[];
  /** ElastiCache: the vault bucket of each destination region (empty without an
   * ElastiCache schedule). */
  vaults: VaultBucket[];
  /** Absent when the config has no drills or this destination keeps no copies where they run. */
  drill?: ScheduledDrill;
}

/** ElastiCache: the source stack's export bucket (crates/cli/src/inputs.rs `ExportBucket`).
 * ElastiCache writes each snapshot's `.rdb` objects to it; the `readers` (the destination
 * accounts) list it and read the objects under `key_prefix`. */
export interface ExportBucket {
  bucket: string;
  region: string;
  /** `sc-<namespace>-`: the objects snapcourier writes and expires. */
  key_prefix: string;
  readers: string[];
}

/** ElastiCache: one vault bucket of a destination account (crates/cli/src/inputs.rs
 * `VaultBucket`): versioned, Object Lock `object_lock` with a default retention of
 * `lock_days`, encrypted with `kms_key` (a key ARN, or the alias ARN of the key the stacks
 * create in that region). */
export interface VaultBucket {
  region: string;
  bucket: string;
  kms_key: string | null;
  object_lock: ObjectLockMode;
  lock_days: number;
  /** `sc-<namespace>-`: the objects snapcourier copies in and expires. */
  key_prefix: string;
}

/** One row of the engine table (crates/core/src/engine.rs `EngineFacts`). */
export interface EngineFacts {
  engine: Engine;
  name: string;
  resource_kind: string;
  copies_into_destination: boolean;
  aws_copy_limit: number | null;
  copy_concurrency_setting: string | null;
  manual_snapshot_quota: string | null;
  on_demand_snapshots: boolean;
  /** How its snapshots leave the source account. */
  transport: Transport;
  /** The IAM actions of its services each step needs (`ENGINE_SERVICES`): a step's role may
   * grant no other action of these services (permissions.ts, `checkEngineActions`). */
  iam: StepActions;
}

/** IAM actions by Lambda step, and those only the CLI uses. */
export interface StepActions {
  take: string[];
  share: string[];
  copy_in_destination: string[];
  cross_region_copy: string[];
  delete: string[];
  drill: string[];
  cli: string[];
}

/** The services whose actions the engine table holds (crates/core/src/engine.rs). */
export const ENGINE_SERVICES = ["rds", "redshift", "elasticache", "s3"];

export interface Inputs {
  namespace: string;
  /** The AWS partition of the deployment's ARNs. */
  partition: string;
  /** Regions the source account writes to: its own, and Redshift's copy region. */
  source_regions: string[];
  /** The engine table, so the stacks restate no engine fact. */
  engines: EngineFacts[];
  vault: VaultInputs;
  /** SSM parameter path of each side's deployed runs (one parameter per schedule). */
  deployed_runs: { source: string; destination: string };
  source: ScheduledInput[];
  /** Per destination account: its runs, the regions whose KMS key its stack creates, its
   * vault buckets, its drill. */
  destinations: DestinationInputs[];
  /** ElastiCache: the source stack's export bucket (absent without an ElastiCache schedule). */
  export_bucket?: ExportBucket;
}

/** The parts of the config the stacks read directly (the rest goes through `inputs`). */
export interface Config {
  namespace: string;
  source: { account: string; region: string; redshift_copy_kms_key?: string | null };
  destinations: {
    account: string;
    copy_in_kms_key?: string | null;
    regions: { region: string; kms_key?: string | null }[];
    /** ElastiCache: the Object Lock mode of the vault buckets (read through `inputs`). */
    object_lock?: "governance" | "compliance";
  }[];
  schedules: { name: string; engine: Engine }[];
  settings?: { max_attempts?: number };
  /** Read through `snapcourier inputs` (each destination's `drill`), like the schedules. */
  drills?: Drills | null;
}

/** The AWS partition of a region (the CLI's rule, crates/core/src/config.rs `partition`). */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

export interface Loaded {
  path: string;
  config: Config;
  inputs: Inputs;
}

export const SCHEMA_PATH = join(__dirname, "..", "config.schema.json");

/** `/schedules/1/interval` -> `schedules[1].interval`, the CLI's field paths. */
export function fieldPath(instancePath: string): string {
  let out = "";
  for (const raw of instancePath.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(part) ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out;
}

function describe(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  if (e.keyword === "additionalProperties") {
    const field = fieldPath(`${e.instancePath}/${String(params.additionalProperty)}`);
    return `${field}: unknown field \`${String(params.additionalProperty)}\``;
  }
  if (e.keyword === "required") {
    const field = fieldPath(`${e.instancePath}/${String(params.missingProperty)}`);
    return `${field}: missing field \`${String(params.missingProperty)}\``;
  }
  return `${fieldPath(e.instancePath) || "(top level)"}: ${e.message ?? e.keyword}`;
}

/** Every schema problem of a parsed config, one `field: rule` line each (empty: valid). */
export function schemaProblems(document: unknown): string[] {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as Record<string, unknown>;
  // strict: false because schemars emits annotations (format: uint32, ...) ajv does not know.
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  const validate = ajv.compile(schema);
  if (validate(document)) return [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    // A oneOf/anyOf branch failing repeats its parent's problem; keep the specific ones.
    if (e.keyword === "oneOf" || e.keyword === "anyOf" || e.keyword === "if") continue;
    seen.add(describe(e));
  }
  return [...seen];
}

function parseDocument(path: string, text: string): unknown {
  try {
    return path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`invalid configuration ${path}: ${(err as Error).message}`);
  }
}

/**
 * Read and check a config file; `cli` is the `snapcourier` binary that prints the inputs.
 * Throws ConfigError naming each bad field (`schedules[0].interval: ...`), as the CLI does.
 */
export function loadConfig(path: string, cli: string): Loaded {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${abs}: ${(err as Error).message}`);
  }
  const document = parseDocument(abs, text);
  const problems = schemaProblems(document);
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration ${abs}: ${problems.join("; ")}`);
  }
  if (!existsSync(cli)) {
    throw new ConfigError(
      `the snapcourier binary ${cli} is missing: build it with \`cargo build -p snapcourier-cli\` or pass -c snapcourierBin=PATH`,
    );
  }
  let printed: string;
  try {
    printed = execFileSync(cli, ["inputs", "-c", abs], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SNAPCOURIER_LOG: "error" },
    });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? "").trim();
    throw new ConfigError(
      `${abs}: ${stderr.replace(/^error \[ConfigInvalid\]: /, "") || (err as Error).message}`,
    );
  }
  const config = document as Config;
  const inputs = JSON.parse(printed) as Inputs;
  // The stacks build ARNs with partitionOf; the CLI's rule is the reference.
  if (partitionOf(config.source.region) !== inputs.partition) {
    throw new ConfigError(
      `partition of ${config.source.region}: the CDK says ${partitionOf(config.source.region)}, snapcourier ${inputs.partition}; build both from one checkout`,
    );
  }
  return { path: abs, config, inputs };
}
