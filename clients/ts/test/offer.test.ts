// What the client accepts from a server: offers, resync hints, receipts.
import assert from "node:assert/strict";
import { test } from "node:test";

import type { PaymentRequired, PaymentRequirements, SettleResponse } from "@x402/core/types";

import { canSign, checkRequirement, readReceipt, resyncHint, UnacceptableOfferError, type OfferFilter } from "../src/offer.js";
import { decodeBase58, encodeBase58 } from "../src/codec.js";

const MINT = "CktRuQ2mttgRGkXJtyksdKHjUdc2C4TgDzyB98oEzy8";
const PROGRAM = "5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y";
const TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
// A key on the curve (the public key of the seed 0x07…).
const PAYEE = "GmaDrppBC7P5ARKV8g3djiwP89vz1jLK23V2GBjuAEGB";

const filter: OfferFilter = {
  network: "solana:test",
  mint: MINT,
  programId: PROGRAM,
  tokenProgram: TOKEN,
  decimals: 6,
  maxPrice: 10_000n,
  remainingBudget: 1_000_000n,
  maxGracePeriod: 86_400,
  payeeMustSign: true,
};

function offer(over: Partial<PaymentRequirements> = {}, extra: Record<string, unknown> = {}): PaymentRequirements {
  return {
    scheme: "paychan",
    network: "solana:test",
    amount: "1000",
    asset: MINT,
    payTo: PAYEE,
    maxTimeoutSeconds: 60,
    extra: {
      programId: PROGRAM,
      tokenProgram: TOKEN,
      decimals: 6,
      gracePeriodSeconds: 900,
      minimumDeposit: "5000",
      feePayer: PAYEE,
      ...extra,
    },
    ...over,
  };
}

test("a matching offer is taken with its price, grace period and minimum deposit", () => {
  assert.deepEqual(checkRequirement(offer(), filter), { payee: PAYEE, price: 1_000n, gracePeriod: 900, minimumDeposit: 5_000n });
  // A grace period below the program's minimum is raised to it.
  assert.equal(checkRequirement(offer({}, { gracePeriodSeconds: 60 }), filter).gracePeriod, 600);
});

test("every field of a hostile offer is checked", () => {
  const refused = (o: PaymentRequirements, f: OfferFilter = filter, why?: RegExp): void => {
    assert.throws(() => checkRequirement(o, f), (e: unknown) => e instanceof UnacceptableOfferError && (why === undefined || why.test(e.message)));
  };
  refused(offer({ scheme: "exact" }), filter, /scheme/);
  refused(offer({ network: "solana:other" }), filter, /network/);
  refused(offer({ asset: PAYEE }), filter, /asset/);
  refused(offer({ payTo: "11111111111111111111111111111111" }), filter, /all-zero/);
  refused(offer({ payTo: "not a key" }), filter, /payTo/);
  refused(offer({ payTo: "1".repeat(5_000) }), filter, /payTo/);
  // A program-derived address (off the curve) cannot sign.
  refused(offer({ payTo: "zpe4PjZDXxS1CBgy1zoAf6fvt4bUN6JzsPBV1AWBQq8" }), filter, /cannot sign/);
  // ... unless the caller allows payees that cannot sign; the zero key never.
  assert.ok(checkRequirement(offer({ payTo: "zpe4PjZDXxS1CBgy1zoAf6fvt4bUN6JzsPBV1AWBQq8" }), { ...filter, payeeMustSign: false }));
  refused(offer({ payTo: "11111111111111111111111111111111" }), { ...filter, payeeMustSign: false }, /all-zero/);
  refused(offer({}, { programId: PAYEE }), filter, /programId/);
  refused(offer({}, { tokenProgram: "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb" }), filter, /tokenProgram/);
  refused(offer({}, { decimals: 9 }), filter, /decimals/);
  refused(offer({ extra: undefined as unknown as Record<string, unknown> }), filter, /extra/);
  for (const amount of ["0", "-1", "1e3", "1.5", "", " 1000", "99999999999999999999999", "0x10"]) {
    refused(offer({ amount }), filter);
  }
  refused(offer({ amount: "10001" }), filter, /cap/);
  refused(offer({ amount: "1000" }), { ...filter, remainingBudget: 999n }, /remaining budget/);
  refused(offer({}, { gracePeriodSeconds: 86_401 }), filter, /grace/);
  refused(offer({}, { gracePeriodSeconds: "900" }), filter, /grace/);
  refused(offer({}, { gracePeriodSeconds: 1.5 }), filter, /grace/);
  refused(offer({}, { minimumDeposit: "five" }), filter, /minimumDeposit/);
});

test("keys that can sign: on the curve, canonical, not of small order", () => {
  assert.equal(canSign(decodeBase58(PAYEE, 32)!), true);
  const zero = new Uint8Array(32);
  assert.equal(canSign(zero), false, "y = 0 is a point of order 4");
  const identity = new Uint8Array(32);
  identity[0] = 1;
  assert.equal(canSign(identity), false, "the identity");
  // The order-8 point c7176a70…ac037a.
  assert.equal(canSign(new Uint8Array(Buffer.from("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "hex"))), false);
  // y = p (a non-canonical encoding of y = 0).
  assert.equal(canSign(new Uint8Array(Buffer.from("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex"))), false);
  assert.equal(canSign(decodeBase58("zpe4PjZDXxS1CBgy1zoAf6fvt4bUN6JzsPBV1AWBQq8", 32)!), false, "a PDA");
  assert.equal(canSign(new Uint8Array(31)), false);
  assert.equal(encodeBase58(decodeBase58(PAYEE, 32)!), PAYEE);
});

test("the resync hint is read from extensions.paychan, bounded", () => {
  const required = (paychan: unknown): PaymentRequired => ({
    x402Version: 2,
    resource: { url: "http://x/" } as PaymentRequired["resource"],
    accepts: [],
    extensions: { paychan },
  });
  assert.deepEqual(resyncHint(required({ channel: PAYEE, lastAccepted: "60000", code: "cumulative_too_low" })), {
    channel: PAYEE,
    lastAccepted: 60_000n,
    code: "cumulative_too_low",
  });
  assert.deepEqual(resyncHint(required({ channel: "nope", lastAccepted: "-1" })), { channel: undefined, lastAccepted: undefined, code: undefined });
  assert.equal(resyncHint(required({ lastAccepted: 12 }))?.lastAccepted, 12n);
  assert.equal(resyncHint(required({ lastAccepted: 1.5 }))?.lastAccepted, undefined);
  assert.equal(resyncHint(required("x")), undefined);
  assert.equal(resyncHint(undefined), undefined);
});

test("only a confirming receipt counts as paid", () => {
  const settle = (success: boolean, amount?: string): SettleResponse => ({
    success,
    transaction: "",
    network: "solana:test",
    ...(success ? {} : { errorReason: "nope" }),
    ...(amount === undefined ? {} : { amount }),
  });
  assert.deepEqual(readReceipt(undefined, 100n), { kind: "missing" });
  assert.deepEqual(readReceipt(settle(false, "100"), 100n), { kind: "failed", reason: "nope" });
  for (const bad of ["-1", "1e3", "", "100.0", "99999999999999999999999"]) {
    assert.deepEqual(readReceipt(settle(true, bad), 100n), { kind: "badAmount" }, bad);
  }
  assert.deepEqual(readReceipt(settle(true, "101"), 100n), { kind: "overcharged", charged: 101n, increment: 100n });
  assert.deepEqual(readReceipt(settle(true, "100"), 100n), { kind: "confirmed", charged: 100n });
  assert.deepEqual(readReceipt(settle(true, "40"), 100n), { kind: "confirmed", charged: 40n });
  assert.deepEqual(readReceipt(settle(true), 100n), { kind: "confirmed", charged: 100n }, "an amount left out is the increment");
});
