// How the client's state is kept: one JSON document (every channel, its
// session key seed and amounts) behind a pluggable store. The file store
// writes it atomically and durably: a temp file in the same directory
// (mode 0600), fsync, rename over the target, fsync of the directory.
import { constants as fsConstants, promises as fs } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

import type { SignedVoucherJson } from "./voucher.js";

/** Version of the state document. */
export const STATE_VERSION = 1;
/** Largest state file read back. */
export const MAX_STATE_FILE_BYTES = 8 * 1024 * 1024;

/** Where a channel is in its life, as far as this client knows. */
export type Phase = "opening" | "open" | "closing" | "closed";

/** A transaction sent (or about to be) whose landing is not known yet. */
export interface PendingTransaction {
  kind: "open" | "topUp";
  /** What it adds to the deposit, decimal. */
  amount: string;
  signature: string;
  /** It can never land after this block height (decimal). */
  lastValidBlockHeight: string;
}

/** One channel as persisted (amounts are decimal strings). */
export interface ChannelRecord {
  /** The channel PDA. */
  address: string;
  payee: string;
  mint: string;
  programId: string;
  tokenProgram: string;
  /** CAIP-2 network. */
  network: string;
  /** The session key's public key (the channel's `authorized_signer`). */
  signer: string;
  /** The session key's 32-byte seed, base58 (secret). */
  sessionKey: string;
  salt: string;
  openSlot: string;
  /** Grace period, seconds. */
  gracePeriod: number;
  /** Escrowed: deposit and confirmed top-ups. */
  deposit: string;
  /** Settled on chain, as last read. */
  settled: string;
  /** Highest cumulative amount the server is known to have accepted. */
  accepted: string;
  /** Highest cumulative amount ever signed. */
  signed: string;
  /** The last voucher signed (re-sent as is when due again). */
  lastVoucher?: SignedVoucherJson;
  /** `lastVoucher` is owed to the server as is (unconfirmed, a credit). */
  resend: boolean;
  phase: Phase;
  /** An `open` or `top_up` whose landing is not known. */
  pending?: PendingTransaction;
}

/** The whole state. */
export interface StateDocument {
  version: typeof STATE_VERSION;
  /** The payer whose channels these are. */
  payer: string;
  channels: ChannelRecord[];
}

/** Keeps the state document. `save` must be durable when it resolves. */
export interface StateStore {
  /** The document, or `undefined` when there is none yet. */
  load(): Promise<StateDocument | undefined>;
  /** Replaces the document; durable once the promise resolves. */
  save(state: StateDocument): Promise<void>;
}

/** Why the state cannot be used. */
export class CorruptStateError extends Error {
  override readonly name = "CorruptStateError";
}

/** Checks the shape of a document read back (not the meaning of its fields). */
export function checkStateDocument(value: unknown, where: string): StateDocument {
  const fail = (why: string): never => {
    throw new CorruptStateError(`${where}: ${why}`);
  };
  if (typeof value !== "object" || value === null) {
    return fail("not a JSON object");
  }
  const doc = value as Partial<StateDocument>;
  if (doc.version !== STATE_VERSION) {
    return fail(`version ${String(doc.version)}, expected ${STATE_VERSION}`);
  }
  if (typeof doc.payer !== "string" || !Array.isArray(doc.channels)) {
    return fail("no payer or channels");
  }
  const strings = ["address", "payee", "mint", "programId", "tokenProgram", "network", "signer", "sessionKey", "salt", "openSlot", "deposit", "settled", "accepted", "signed"] as const;
  for (const c of doc.channels as unknown[]) {
    if (typeof c !== "object" || c === null) {
      return fail("a channel is not an object");
    }
    const r = c as Record<string, unknown>;
    for (const k of strings) {
      if (typeof r[k] !== "string") {
        return fail(`a channel has no ${k}`);
      }
    }
    if (typeof r.gracePeriod !== "number" || typeof r.resend !== "boolean" || !["opening", "open", "closing", "closed"].includes(r.phase as string)) {
      return fail(`channel ${String(r.address)} is malformed`);
    }
  }
  return doc as StateDocument;
}

/**
 * Writes `bytes` to `path` atomically and durably: a temp file next to it
 * (created with `mode`), fsync, rename over the target, fsync of the directory.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString("hex")}.tmp`);
  let renamed = false;
  try {
    const file = await fs.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await fs.rename(tmp, path);
    renamed = true;
    const d = await fs.open(dir, fsConstants.O_RDONLY);
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } finally {
    if (!renamed) {
      await fs.rm(tmp, { force: true });
    }
  }
}

/** The state in one JSON file, written atomically and durably (see [`writeFileAtomic`]). */
export class FileStateStore implements StateStore {
  constructor(readonly path: string) {}

  async load(): Promise<StateDocument | undefined> {
    let file;
    try {
      file = await fs.open(this.path, fsConstants.O_RDONLY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        return undefined;
      }
      throw e;
    }
    let text: string;
    try {
      const { size } = await file.stat();
      if (size > MAX_STATE_FILE_BYTES) {
        throw new CorruptStateError(`${this.path}: larger than ${MAX_STATE_FILE_BYTES} bytes`);
      }
      text = await file.readFile("utf8");
    } finally {
      await file.close();
    }
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch (e) {
      throw new CorruptStateError(`${this.path}: not JSON (${(e as Error).message})`);
    }
    return checkStateDocument(value, this.path);
  }

  async save(state: StateDocument): Promise<void> {
    await fs.mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, new TextEncoder().encode(JSON.stringify(state, null, 1)));
  }
}

/**
 * The state in memory only: lost with the process. For tests, or for a
 * caller that persists the document itself through another store.
 */
export class MemoryStateStore implements StateStore {
  private doc: string | undefined;
  /** How many saves happened. */
  saves = 0;

  async load(): Promise<StateDocument | undefined> {
    return this.doc === undefined ? undefined : checkStateDocument(JSON.parse(this.doc) as unknown, "memory");
  }

  async save(state: StateDocument): Promise<void> {
    this.doc = JSON.stringify(state);
    this.saves += 1;
  }
}

/**
 * Serialises saves of a document that changes while it is written: each
 * `persist()` resolves once a save that started after the call has
 * completed, and concurrent callers share saves (at most one running, one
 * queued).
 */
export class Persister {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(
    private readonly store: StateStore,
    private readonly snapshot: () => StateDocument,
  ) {}

  /** Durable once resolved: every change made before the call is saved. */
  persist(): Promise<void> {
    if (this.queued !== undefined) {
      return this.queued;
    }
    if (this.running === undefined) {
      return this.start();
    }
    const after = this.running.catch(() => undefined);
    this.queued = after.then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<void> {
    const doc = this.snapshot();
    const run = this.store.save(doc).finally(() => {
      if (this.running === run) {
        this.running = undefined;
      }
    });
    this.running = run;
    return run;
  }
}
