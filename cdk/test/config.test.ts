// The config is checked at synth: against the JSON Schema `snapcourier schema` prints, then by
// `snapcourier inputs` with every CLI rule. A bad config fails naming the field.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { ConfigError, fieldPath, loadConfig, schemaProblems } from "../lib/config";
import { CLI, EXAMPLE, dummyLambdas, scratchDir } from "./helpers";

function badConfig(edit: (text: string) => string, ext = "yaml"): string {
  const dir = scratchDir("snapcourier-config-");
  const path = join(dir, `bad.${ext}`);
  writeFileSync(path, edit(readFileSync(EXAMPLE, "utf8")));
  return path;
}

describe("config validation", () => {
  it("turns ajv instance paths into the CLI's field paths", () => {
    assert.equal(fieldPath("/schedules/1/interval"), "schedules[1].interval");
    assert.equal(fieldPath("/destinations/0/regions/2/kms_key"), "destinations[0].regions[2].kms_key");
    assert.equal(fieldPath(""), "");
  });

  it("accepts the example against the schema", () => {
    assert.deepEqual(schemaProblems(parse(readFileSync(EXAMPLE, "utf8"))), []);
  });

  it("names the field of a schema violation (wrong type)", () => {
    const path = badConfig((t) => t.replace("keep_last: 7", "keep_last: seven"));
    assert.throws(() => loadConfig(path, CLI), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /destinations\[0\]\.retention\.keep_last: must be integer/);
      return true;
    });
  });

  it("names an unknown field and a missing one", () => {
    const path = badConfig((t) => t.replace("    engine: aurora", "    engin: aurora"));
    assert.throws(() => loadConfig(path, CLI), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /schedules\[0\]\.engin: unknown field `engin`/);
      assert.match(e.message, /schedules\[0\]\.engine: missing field `engine`/);
      return true;
    });
  });

  it("fails on a rule the schema cannot state with the CLI's own message", () => {
    const path = badConfig((t) => t.replace("interval: 24h", "interval: 15m"));
    assert.throws(() => loadConfig(path, CLI), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /schedules\[0\]\.interval: must be at least 1h \(got 15m\)/);
      return true;
    });
  });

  it("reads a JSON config too", () => {
    const path = badConfig((t) => JSON.stringify(parse(t)), "json");
    const loaded = loadConfig(path, CLI);
    assert.equal(loaded.config.namespace, "demo");
    assert.equal(loaded.inputs.source.length, 4);
  });

  it("makes `cdk synth` (bin/app.ts) exit 2 naming the field", () => {
    const path = badConfig((t) => t.replace("namespace: demo", "namespace: 42"));
    const out = spawnSync(process.execPath, ["--import", "tsx", "bin/app.ts"], {
      cwd: join(__dirname, ".."),
      encoding: "utf8",
      env: { ...process.env, SNAPCOURIER_CONFIG: path, SNAPCOURIER_LAMBDA_DIR: dummyLambdas(), SNAPCOURIER_BIN: CLI },
    });
    assert.equal(out.status, 2, out.stderr);
    assert.match(out.stderr, /error \[ConfigInvalid\]: invalid configuration .*bad\.yaml: namespace: must be string/);
  });
});
