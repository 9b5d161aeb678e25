// Shared by the tests: synthesize the app for a config with dummy Lambda binaries (the tests
// check templates, not binaries) and the `snapcourier` binary the Makefile builds.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { buildStacks, type Built } from "../lib/app";
import type { Inputs } from "../lib/config";

export const ROOT = resolve(__dirname, "..", "..");
export const EXAMPLE = join(ROOT, "examples", "snapcourier.yaml");
export const CLI = process.env.SNAPCOURIER_BIN ?? join(ROOT, "target", "debug", "snapcourier");
export const STEPS = ["take", "share", "copy_in_destination", "cross_region_copy", "delete", "drill"];

let lambdaDir: string | undefined;
const scratch: string[] = [];
process.on("exit", () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory removed when the test process exits. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** A directory with <step>/bootstrap for every step (dummy files). */
export function dummyLambdas(): string {
  if (lambdaDir) return lambdaDir;
  const dir = scratchDir("snapcourier-lambdas-");
  for (const step of STEPS) {
    mkdirSync(join(dir, step));
    writeFileSync(join(dir, step, "bootstrap"), "#!/bin/sh\n# test stand-in\n");
  }
  lambdaDir = dir;
  return dir;
}

export interface Synth {
  built: Built;
  source: Template;
  destinations: Template[];
}

export function synth(config = EXAMPLE): Synth {
  const app = new App({ outdir: scratchDir("snapcourier-cdkout-") });
  const built = buildStacks(app, { config, lambdaDir: dummyLambdas(), snapcourierBin: CLI });
  return {
    built,
    source: Template.fromStack(built.source),
    destinations: built.destinations.map((d) => Template.fromStack(d)),
  };
}

/** The example with every destination key omitted: the stacks create them. */
export function keylessConfig(): string {
  const text = readFileSync(EXAMPLE, "utf8")
    .split("\n")
    .filter((line) => !/^\s*(copy_in_kms_key|kms_key):/.test(line))
    .join("\n");
  const path = join(scratchDir("snapcourier-nokeys-"), "nokeys.yaml");
  writeFileSync(path, text);
  return path;
}

/** The example without its drills section: no drill resources at all. */
export function noDrillsConfig(): string {
  const text = readFileSync(EXAMPLE, "utf8");
  const start = text.indexOf("\ndrills:");
  if (start < 0) throw new Error(`${EXAMPLE} has no drills section`);
  // The section runs to the next top-level key (or the end), its comments before it included.
  const rest = text.slice(start + 1);
  const next = rest.search(/\n[a-z_]+:/);
  const kept = text.slice(0, start) + (next < 0 ? "\n" : rest.slice(next));
  const path = join(scratchDir("snapcourier-nodrills-"), "nodrills.yaml");
  writeFileSync(path, kept);
  return path;
}

/** What `snapcourier inputs` prints for a config: the runs the schedules must carry. */
export function cliInputs(config = EXAMPLE): Inputs {
  return JSON.parse(execFileSync(CLI, ["inputs", "-c", config], { encoding: "utf8" })) as Inputs;
}

export type Resource = { Type: string; Properties: Record<string, unknown> };

export function resources(t: Template, type: string): [string, Resource][] {
  return Object.entries(t.findResources(type)) as [string, Resource][];
}

export interface PolicyStatementJson {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** Every statement of every AWS::IAM::Policy, with the logical id of its policy. */
export function statements(t: Template): { policy: string; roles: unknown; s: PolicyStatementJson }[] {
  const out: { policy: string; roles: unknown; s: PolicyStatementJson }[] = [];
  for (const [id, r] of resources(t, "AWS::IAM::Policy")) {
    const doc = r.Properties.PolicyDocument as { Statement: PolicyStatementJson[] };
    for (const s of doc.Statement) out.push({ policy: id, roles: r.Properties.Roles, s });
  }
  return out;
}

export const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

// An IAM evaluator for the synthesized role policies: is one call allowed to a role, under the
// request context AWS sets for it? (test/kms.test.ts: every KMS call; test/drill.test.ts: what
// the drill may and may not delete; test/elasticache.test.ts: the buckets' objects.) Only the
// condition operators this app uses; any other fails closed, as does a condition key the
// context lacks.

export type Context = Record<string, string | string[]>;

export interface Call {
  /** The role's logical id prefix (`DrillRole`, `CopyInDestinationRole`). */
  role: string;
  action: string;
  /** The resource the call acts on (a key's ARN for KMS calls). */
  key: string;
  context: Context;
  why: string;
}

/** A policy value as text, with the partition resolved (`aws` for these regions). */
export function str(v: unknown): string {
  if (typeof v === "string") return v;
  const o = v as Record<string, unknown> | undefined;
  if (o && "Fn::Join" in o) {
    const [sep, parts] = o["Fn::Join"] as [string, unknown[]];
    return parts.map(str).join(sep);
  }
  if (o?.Ref === "AWS::Partition") return "aws";
  // Another resource's attribute: no literal ARN of this test can match it.
  return `<unresolved ${JSON.stringify(v)}>`;
}

export const glob = (pattern: string, value: string): boolean =>
  new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.?+^$()[\]{}|\\/]/g, "\\$&")).join(".*")}$`).test(value);

/** IAM's condition operators this app uses; any other fails closed. */
export function conditionsHold(conditions: Record<string, Record<string, unknown>> | undefined, ctx: Context): boolean {
  for (const [op, pairs] of Object.entries(conditions ?? {})) {
    for (const [key, value] of Object.entries(pairs)) {
      const want = list(value as unknown).map(str);
      const have = ctx[key];
      if (op === "StringEquals" || op === "Bool") {
        if (typeof have !== "string" || !want.includes(have)) return false;
      } else if (op === "StringLike") {
        if (typeof have !== "string" || !want.some((w) => glob(w, have))) return false;
      } else if (op === "ForAnyValue:StringEquals") {
        if (!list(have ?? []).some((h) => want.includes(h))) return false;
      } else {
        return false;
      }
    }
  }
  return true;
}

/** Whether some Allow statement of the role's policies allows the call (no Deny is used). */
export function allowed(t: Template, call: Call): boolean {
  return statements(t).some(
    ({ roles, s }) =>
      JSON.stringify(roles).includes(`"${call.role}`) &&
      s.Effect === "Allow" &&
      list(s.Action).some((a) => glob(a, call.action)) &&
      list(s.Resource as unknown).some((r) => glob(str(r), call.key)) &&
      conditionsHold(s.Condition, call.context),
  );
}
