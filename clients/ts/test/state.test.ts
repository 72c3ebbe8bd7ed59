// State durability: the atomic file write, the file store, the persister.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import {
  CorruptStateError,
  FileStateStore,
  MemoryStateStore,
  Persister,
  STATE_VERSION,
  writeFileAtomic,
  type StateDocument,
  type StateStore,
} from "../src/state.js";
import { channelRecord } from "./fakes.js";

function dir(): string {
  return mkdtempSync(join(tmpdir(), "paychan-state-"));
}

function doc(signed: string): StateDocument {
  return {
    version: STATE_VERSION,
    payer: "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi",
    channels: [channelRecord({ address: "zpe4PjZDXxS1CBgy1zoAf6fvt4bUN6JzsPBV1AWBQq8", signed })],
  };
}

test("an atomic write replaces the file whole, mode 0600, and leaves no temp file", async () => {
  const d = dir();
  const path = join(d, "state.json");
  await writeFileAtomic(path, new TextEncoder().encode("one"));
  await writeFileAtomic(path, new TextEncoder().encode("two"));
  assert.equal(readFileSync(path, "utf8"), "two");
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(d), ["state.json"]);
});

test("a failed write leaves the previous file as it was and no temp file", async () => {
  const d = dir();
  const path = join(d, "state.json");
  await writeFileAtomic(path, new TextEncoder().encode("before"));
  // Renaming over a directory fails after the temp file was written and synced.
  const blocked = join(d, "blocked");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(blocked, "x"), { recursive: true });
  await assert.rejects(writeFileAtomic(blocked, new TextEncoder().encode("after")));
  assert.equal(readFileSync(path, "utf8"), "before");
  assert.deepEqual(readdirSync(d).sort(), ["blocked", "state.json"]);
});

test("the file store round-trips, ignores temp files a crash left, and refuses what is not its document", async () => {
  const d = dir();
  const store = new FileStateStore(join(d, "nested", "state.json"));
  assert.equal(await store.load(), undefined, "no file yet");
  await store.save(doc("5000"));
  // A crash between writing a temp file and renaming it leaves the old document in force.
  writeFileSync(join(d, "nested", ".state.json.0123456789abcdef.tmp"), "{ torn");
  assert.deepEqual(await store.load(), doc("5000"));
  await store.save(doc("6000"));
  assert.equal((await store.load())?.channels[0]?.signed, "6000");
  assert.equal(statSync(join(d, "nested")).mode & 0o777, 0o700);

  const bad = (text: string): Promise<unknown> => {
    const p = join(d, `bad-${Math.random()}.json`);
    writeFileSync(p, text);
    return new FileStateStore(p).load();
  };
  await assert.rejects(bad("{ torn"), CorruptStateError);
  await assert.rejects(bad(JSON.stringify({ ...doc("1"), version: 2 })), CorruptStateError);
  await assert.rejects(bad(JSON.stringify({ version: 1, payer: "x", channels: [{ address: "a" }] })), CorruptStateError);
  await assert.rejects(bad(JSON.stringify({ version: 1, payer: "x", channels: [{ ...doc("1").channels[0], signed: 5 }] })), CorruptStateError);
});

/** A store whose saves take a while and record what they saved. */
class SlowStore implements StateStore {
  saved: string[] = [];
  running = 0;
  maxRunning = 0;
  async load(): Promise<StateDocument | undefined> {
    return undefined;
  }
  async save(state: StateDocument): Promise<void> {
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise((r) => setTimeout(r, 20));
    this.saved.push(state.channels[0]!.signed);
    this.running -= 1;
  }
}

test("a persist resolves only once a save holding its change is done; concurrent ones share saves", async () => {
  const store = new SlowStore();
  let signed = 0;
  const p = new Persister(store, () => doc(String(signed)));
  const waits: Array<Promise<void>> = [];
  const seenAt: number[] = [];
  for (let i = 1; i <= 5; i++) {
    signed = i;
    const mine = i;
    waits.push(
      p.persist().then(() => {
        // Durable: the last completed save holds at least this change.
        seenAt.push(Number(store.saved.at(-1)) >= mine ? mine : -mine);
      }),
    );
  }
  await Promise.all(waits);
  assert.deepEqual(seenAt.sort(), [1, 2, 3, 4, 5]);
  assert.equal(store.maxRunning, 1, "one save at a time");
  assert.ok(store.saved.length <= 2, `saves are shared: ${store.saved.join(",")}`);
  assert.equal(store.saved.at(-1), "5");
});

test("a failed save fails its persist, and the next persist saves again", async () => {
  let fail = true;
  const store: StateStore = {
    load: async () => undefined,
    save: async () => {
      if (fail) {
        throw new Error("disk full");
      }
    },
  };
  const p = new Persister(store, () => doc("1"));
  await assert.rejects(p.persist(), /disk full/);
  fail = false;
  await p.persist();
});

test("the memory store keeps a copy, not the live object", async () => {
  const m = new MemoryStateStore();
  const d = doc("1");
  await m.save(d);
  d.channels[0]!.signed = "999";
  assert.equal((await m.load())?.channels[0]?.signed, "1");
  assert.equal(m.saves, 1);
});
