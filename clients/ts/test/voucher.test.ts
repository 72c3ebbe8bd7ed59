// Voucher bytes, signatures and JSON against the vectors the Rust crate
// produced (test/vectors/voucher-v1.json, kept honest by
// crates/paychan-client/tests/ts_vectors.rs).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { verifySignature, getPublicKeyFromAddress, address } from "@solana/kit";

import { encodeBase58 } from "../src/codec.js";
import { encodeVoucherV1, parseSignedVoucherJson, SessionKey, signVoucher, voucherJson } from "../src/voucher.js";

interface Vector {
  seed: string;
  channelId: string;
  cumulativeAmount: string;
  expiresAt: number;
  bytes: string;
  signer: string;
  signature: string;
  json: string;
}

const vectors = (JSON.parse(readFileSync(new URL("../../test/vectors/voucher-v1.json", import.meta.url), "utf8")) as { vouchers: Vector[] }).vouchers;

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

test("there are vectors", () => {
  assert.equal(vectors.length, 3);
});

for (const [i, v] of vectors.entries()) {
  test(`vector ${i}: the 50 bytes, the signer, the signature and the JSON text are the Rust crate's`, async () => {
    const key = await SessionKey.fromSeed(unhex(v.seed));
    assert.equal(key.address, v.signer);
    const parsed = parseSignedVoucherJson(JSON.parse(v.json));
    assert.ok(parsed);
    const voucher = parsed.voucher;
    assert.equal(encodeBase58(voucher.channelId), v.channelId);
    assert.equal(voucher.cumulativeAmount.toString(), v.cumulativeAmount);
    assert.equal(voucher.expiresAt, BigInt(v.expiresAt));
    const bytes = encodeVoucherV1(voucher);
    assert.equal(bytes.length, 50);
    assert.equal(hex(bytes), v.bytes);
    const signed = await signVoucher(key, voucher);
    assert.equal(signed.signature, v.signature);
    // Field for field and in the same order: the exact text the Rust serializer writes.
    assert.equal(JSON.stringify(signed), v.json);
    // And the signature verifies under the signer.
    const publicKey = await getPublicKeyFromAddress(address(v.signer));
    assert.ok(await verifySignature(publicKey, parsed.signature as Parameters<typeof verifySignature>[1], bytes));
  });
}

test("the layout: magic, channel id, cumulative u64 LE, expires_at i64 LE", () => {
  const bytes = encodeVoucherV1({ channelId: new Uint8Array(32).fill(9), cumulativeAmount: 0x0102030405060708n, expiresAt: -1n });
  assert.deepEqual([...bytes.subarray(0, 2)], [0x56, 0x01]);
  assert.deepEqual([...bytes.subarray(2, 34)], new Array<number>(32).fill(9));
  assert.deepEqual([...bytes.subarray(34, 42)], [8, 7, 6, 5, 4, 3, 2, 1]);
  assert.deepEqual([...bytes.subarray(42, 50)], new Array<number>(8).fill(0xff));
  assert.throws(() => encodeVoucherV1({ channelId: new Uint8Array(31), cumulativeAmount: 1n, expiresAt: 0n }));
  assert.throws(() => encodeVoucherV1({ channelId: new Uint8Array(32), cumulativeAmount: 1n << 64n, expiresAt: 0n }));
  assert.throws(() => encodeVoucherV1({ channelId: new Uint8Array(32), cumulativeAmount: -1n, expiresAt: 0n }));
});

test("no expiry leaves expiresAt out of the JSON; an expiry is RFC 3339 in whole seconds", () => {
  const base = { channelId: new Uint8Array(32).fill(1), cumulativeAmount: 5n };
  const never = voucherJson({ ...base, expiresAt: 0n }, new Uint8Array(32), new Uint8Array(64));
  assert.equal("expiresAt" in never.voucher, false);
  const at = voucherJson({ ...base, expiresAt: 1_700_000_000n }, new Uint8Array(32), new Uint8Array(64));
  assert.equal(at.voucher.expiresAt, "2023-11-14T22:13:20Z");
});

test("the JSON form is read back as strictly as the Rust decoder reads it", () => {
  const good = JSON.parse(vectors[0]!.json) as Record<string, unknown>;
  const edit = (f: (j: { voucher: Record<string, unknown> } & Record<string, unknown>) => void): unknown => {
    const j = JSON.parse(JSON.stringify(good)) as { voucher: Record<string, unknown> } & Record<string, unknown>;
    f(j);
    return j;
  };
  assert.ok(parseSignedVoucherJson(good));
  assert.ok(parseSignedVoucherJson(edit((j) => (j.extra = 1))), "unknown fields are ignored");
  assert.ok(parseSignedVoucherJson(edit((j) => (j.voucher.expiresAt = null))), "null expiry = none");
  for (const amount of ["", "-1", "+1", "1.5", "1e3", " 1", "01", "00", "18446744073709551616", 5]) {
    assert.equal(parseSignedVoucherJson(edit((j) => (j.voucher.cumulativeAmount = amount))), undefined, String(amount));
  }
  assert.equal(parseSignedVoucherJson(edit((j) => (j.signatureType = "Ed25519"))), undefined);
  assert.equal(parseSignedVoucherJson(edit((j) => (j.voucher.expiresAt = "1970-01-01T00:00:00Z"))), undefined);
  assert.equal(parseSignedVoucherJson(edit((j) => (j.voucher.expiresAt = "2023-11-14"))), undefined);
  assert.equal(parseSignedVoucherJson(edit((j) => (j.signer = "1111111111111111111111111111111"))), undefined);
  assert.equal(parseSignedVoucherJson(edit((j) => (j.signature = "z".repeat(10_000)))), undefined);
  assert.equal(parseSignedVoucherJson(edit((j) => (j.voucher.channelId = "0OIl"))), undefined);
  assert.equal(parseSignedVoucherJson(null), undefined);
});

test("session keys are random and 32 bytes", async () => {
  const a = await SessionKey.generate();
  const b = await SessionKey.generate();
  assert.notEqual(a.address, b.address);
  assert.equal(a.seed.length, 32);
  assert.equal((await SessionKey.fromSeed(a.seed)).address, a.address);
  await assert.rejects(SessionKey.fromSeed(new Uint8Array(31)));
});
