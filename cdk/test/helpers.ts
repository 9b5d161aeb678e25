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
export const STEPS = ["take", "share", "copy_in_destination", "cross_region_copy", "delete"];

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
