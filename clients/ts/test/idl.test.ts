// The program constants and instruction builders against the committed IDL
// (idl/paychan.json) and against instructions paychan-sdk built
// (test/vectors/voucher-v1.json, `instructions`).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { AccountRole, address, type Instruction, type TransactionSigner } from "@solana/kit";

import {
  CHANNEL_ACCOUNT_LEN,
  CHANNEL_DISCRIMINATOR,
  decodeChannelAccount,
  encodeOpenData,
  MAX_GRACE_PERIOD_SECS,
  MIN_GRACE_PERIOD_SECS,
  OPEN_DISCRIMINATOR,
  OPEN_SLOT_WINDOW,
  openInstruction,
  PAYCHAN_PROGRAM_ID,
  SEED_CHANNEL,
  SEED_VAULT,
  SEED_VAULT_TOKENS,
  TOP_UP_DISCRIMINATOR,
  topUpInstruction,
  addressBytes,
} from "../src/program.js";

interface IdlAccount {
  name: string;
  writable?: boolean;
  signer?: boolean;
}
interface IdlInstruction {
  name: string;
  discriminator: number[];
  accounts: IdlAccount[];
  args: Array<{ name: string; type: unknown }>;
}
interface Idl {
  address: string;
  instructions: IdlInstruction[];
  accounts: Array<{ name: string; discriminator: number[] }>;
  types: Array<{ name: string; type: { kind: string; fields: Array<{ name: string; type: unknown }> } }>;
  constants: Array<{ name: string; type: string; value: string }>;
}

const idl = JSON.parse(readFileSync(new URL("../../../../idl/paychan.json", import.meta.url), "utf8")) as Idl;
const vectors = JSON.parse(readFileSync(new URL("../../test/vectors/voucher-v1.json", import.meta.url), "utf8")) as {
  instructions: {
    keys: Record<string, string>;
    open: { salt: string; openSlot: string; deposit: string; gracePeriod: number; channel: string; instruction: VectorIx };
    topUp: { amount: string; instruction: VectorIx };
  };
};
interface VectorIx {
  programId: string;
  accounts: Array<{ address: string; signer: boolean; writable: boolean }>;
  data: string;
}

const ix = (name: string): IdlInstruction => {
  const found = idl.instructions.find((i) => i.name === name);
  assert.ok(found, name);
  return found;
};
const constant = (name: string): string => {
  const found = idl.constants.find((c) => c.name === name);
  assert.ok(found, name);
  return found.value;
};

test("program id, discriminators and constants are the IDL's", () => {
  assert.equal(PAYCHAN_PROGRAM_ID, idl.address);
  assert.deepEqual([...OPEN_DISCRIMINATOR], ix("open").discriminator);
  assert.deepEqual([...TOP_UP_DISCRIMINATOR], ix("top_up").discriminator);
  assert.deepEqual([...CHANNEL_DISCRIMINATOR], idl.accounts.find((a) => a.name === "Channel")?.discriminator);
  assert.equal(OPEN_SLOT_WINDOW, BigInt(constant("OPEN_SLOT_WINDOW")));
  assert.equal(MIN_GRACE_PERIOD_SECS, Number(constant("MIN_GRACE_PERIOD_SECS")));
  assert.equal(MAX_GRACE_PERIOD_SECS, Number(constant("MAX_GRACE_PERIOD_SECS")));
  assert.deepEqual([...SEED_CHANNEL], JSON.parse(constant("SEED_CHANNEL")));
  assert.deepEqual([...SEED_VAULT], JSON.parse(constant("SEED_VAULT")));
  assert.deepEqual([...SEED_VAULT_TOKENS], JSON.parse(constant("SEED_VAULT_TOKENS")));
});

test("OpenArgs is laid out as the IDL says: salt, open_slot, deposit (u64), grace_period (i64), authorized_signer", () => {
  const fields = idl.types.find((t) => t.name === "OpenArgs")?.type.fields.map((f) => [f.name, f.type]);
  assert.deepEqual(fields, [
    ["salt", "u64"],
    ["open_slot", "u64"],
    ["deposit", "u64"],
    ["grace_period", "i64"],
    ["authorized_signer", "pubkey"],
  ]);
  assert.deepEqual(ix("open").args, [{ name: "args", type: { defined: { name: "OpenArgs" } } }]);
  assert.deepEqual(ix("top_up").args, [{ name: "amount", type: "u64" }]);
  const signer = address("LbUiWL3xVV8hTFYBVdbTNrpDo41NKS6o3LHHuDzjfcY");
  const data = encodeOpenData({ salt: 1n, openSlot: 2n, deposit: 3n, gracePeriod: -4n, authorizedSigner: signer });
  assert.equal(data.length, 8 + 8 * 4 + 32);
});

test("the Channel account decodes at the IDL's field offsets", () => {
  const fields = idl.types.find((t) => t.name === "Channel")?.type.fields.map((f) => f.name);
  assert.deepEqual(fields, [
    "payer", "payee", "mint", "authorized_signer", "rent_payer", "deposit", "settled", "refunded",
    "salt", "open_slot", "closure_started_at", "grace_period", "version", "bump", "status", "reserved",
  ]);
  const data = new Uint8Array(CHANNEL_ACCOUNT_LEN);
  data.set(CHANNEL_DISCRIMINATOR, 0);
  for (let k = 0; k < 5; k++) {
    data.fill(k + 1, 8 + 32 * k, 8 + 32 * (k + 1));
  }
  const view = new DataView(data.buffer);
  [11n, 12n, 13n, 14n, 15n].forEach((v, i) => view.setBigUint64(168 + 8 * i, v, true));
  view.setBigInt64(208, -16n, true);
  view.setBigInt64(216, 17n, true);
  data.set([1, 254, 2], 224);
  const c = decodeChannelAccount(data);
  assert.ok(c);
  assert.deepEqual([...addressBytes(c.payer)], new Array<number>(32).fill(1));
  assert.deepEqual([...addressBytes(c.rentPayer)], new Array<number>(32).fill(5));
  assert.deepEqual(
    [c.deposit, c.settled, c.refunded, c.salt, c.openSlot, c.closureStartedAt, c.gracePeriod, c.version, c.bump, c.status],
    [11n, 12n, 13n, 14n, 15n, -16n, 17n, 1, 254, 2],
  );
  assert.equal(decodeChannelAccount(data.subarray(0, 231)), undefined);
  const other = new Uint8Array(data);
  other[0] = 0;
  assert.equal(decodeChannelAccount(other), undefined);
});

function asVector(i: Instruction): VectorIx {
  return {
    programId: i.programAddress,
    accounts: (i.accounts ?? []).map((a) => ({
      address: a.address,
      signer: a.role === AccountRole.READONLY_SIGNER || a.role === AccountRole.WRITABLE_SIGNER,
      writable: a.role === AccountRole.WRITABLE || a.role === AccountRole.WRITABLE_SIGNER,
    })),
    data: Buffer.from(i.data ?? new Uint8Array()).toString("hex"),
  };
}

/** A signer that only has an address (the builders never sign). */
function signerOf(a: string): TransactionSigner {
  return { address: address(a), signTransactions: async () => [] } as unknown as TransactionSigner;
}

test("open and top_up are built exactly as paychan-sdk builds them, with the IDL's account flags", async () => {
  const k = vectors.instructions.keys;
  const v = vectors.instructions.open;
  const payer = signerOf(k.payer!);
  const { instruction, channel } = await openInstruction(
    {
      programId: PAYCHAN_PROGRAM_ID,
      payer,
      rentPayer: payer,
      payee: address(k.payee!),
      mint: address(k.mint!),
      payerTokens: address(k.payerTokens!),
      tokenProgram: address(k.tokenProgram!),
    },
    { salt: BigInt(v.salt), openSlot: BigInt(v.openSlot), deposit: BigInt(v.deposit), gracePeriod: BigInt(v.gracePeriod), authorizedSigner: address(k.authorizedSigner!) },
  );
  assert.equal(channel, v.channel);
  assert.deepEqual(asVector(instruction), v.instruction);
  const idlFlags = ix("open").accounts.map((a) => ({ signer: a.signer ?? false, writable: a.writable ?? false }));
  assert.deepEqual(v.instruction.accounts.map((a) => ({ signer: a.signer, writable: a.writable })), idlFlags);

  const t = vectors.instructions.topUp;
  const topUp = await topUpInstruction(
    {
      programId: PAYCHAN_PROGRAM_ID,
      payer,
      channel: address(v.channel),
      payee: address(k.payee!),
      mint: address(k.mint!),
      payerTokens: address(k.payerTokens!),
      tokenProgram: address(k.tokenProgram!),
    },
    BigInt(t.amount),
  );
  assert.deepEqual(asVector(topUp), t.instruction);
  const topUpFlags = ix("top_up").accounts.map((a) => ({ signer: a.signer ?? false, writable: a.writable ?? false }));
  assert.deepEqual(t.instruction.accounts.map((a) => ({ signer: a.signer, writable: a.writable })), topUpFlags);
});
