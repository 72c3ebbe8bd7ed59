// The sequencing rules and the budget (pure logic).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Budget, BudgetExhaustedError, ChannelState, UntrustedResyncError } from "../src/channel.js";
import { voucherJson, type SignedVoucherJson } from "../src/voucher.js";
import { channelRecord as record } from "./fakes.js";

/** A voucher JSON for `cumulative` (signature bytes are irrelevant here). */
function fake(cumulative: bigint, expiresAt = 0n): SignedVoucherJson {
  return voucherJson({ channelId: new Uint8Array(32).fill(1), cumulativeAmount: cumulative, expiresAt }, new Uint8Array(32).fill(2), new Uint8Array(64).fill(Number(cumulative % 251n)));
}

/** Signs what `nextVoucher` asks for (as the scheme does) and returns the cumulative amount sent. */
function pay(s: ChannelState, price: bigint, budget?: Budget): bigint {
  const next = s.nextVoucher(price, 1_000n, undefined);
  if (next.kind === "sign") {
    budget?.spend(next.spend);
    s.onSigned(fake(next.cumulative), next.cumulative);
  }
  return next.cumulative;
}

test("the budget refuses what would exceed it and keeps nothing of a refusal", () => {
  const b = new Budget(1_000n);
  b.commit(600n);
  b.spend(400n);
  assert.throws(() => b.commit(401n), BudgetExhaustedError);
  assert.throws(() => b.spend(601n), BudgetExhaustedError);
  assert.equal(b.committed, 600n);
  assert.equal(b.spent, 400n);
  assert.equal(b.remainingToCommit(), 400n);
  assert.equal(b.remainingToSpend(), 600n);
  b.commit(400n);
  assert.equal(b.remainingToCommit(), 0n);
  b.release(1_000n);
  b.release(5n);
  assert.equal(b.committed, 0n, "never below zero");
});

test("each request pays accepted + price, charged to the budget once", () => {
  const s = new ChannelState(record());
  const b = new Budget(10_000n);
  assert.equal(pay(s, 1_000n, b), 1_000n);
  s.onPaid(1_000n);
  assert.equal(pay(s, 1_000n, b), 2_000n);
  s.onPaid(2_000n);
  assert.equal(pay(s, 500n, b), 2_500n);
  s.onPaid(2_500n);
  assert.equal(b.spent, 2_500n);
  assert.equal(s.signed, 2_500n);
  assert.equal(s.accepted, 2_500n);
});

test("a voucher not confirmed is owed as is: re-sent byte for byte, whatever the next price", () => {
  const s = new ChannelState(record());
  const b = new Budget(10_000n);
  pay(s, 1_000n, b);
  s.onUnconfirmed(1_000n); // a 5xx, or an answer without a receipt
  assert.ok(s.hasCredit());
  const again = s.nextVoucher(3_000n, 1_000n, undefined);
  assert.equal(again.kind, "resend");
  assert.deepEqual(again.kind === "resend" && again.voucher, s.lastVoucher);
  assert.equal(b.spent, 1_000n, "a re-sent voucher costs nothing more");
  s.onPaid(1_000n);
  assert.equal(s.hasCredit(), false);
  assert.equal(pay(s, 1_000n, b), 2_000n);
});

test("the same amount is re-sent identically while the server has not confirmed it", () => {
  const s = new ChannelState(record());
  pay(s, 1_000n);
  const first = s.lastVoucher;
  s.onRejected(); // e.g. a refusal without a hint
  const next = s.nextVoucher(1_000n, 1_000n, undefined);
  assert.equal(next.kind, "resend");
  assert.deepEqual(next.kind === "resend" && next.voucher, first);
});

test("a new voucher is never below what was already signed", () => {
  const s = new ChannelState(record({ accepted: "1000", signed: "3000", lastVoucher: fake(3_000n) }));
  const next = s.nextVoucher(500n, 1_000n, undefined);
  assert.equal(next.kind, "resend");
  assert.equal(next.cumulative, 3_000n);
  // With an expiry near, it is signed again for the same amount, not less.
  const t = new ChannelState(record({ accepted: "1000", signed: "3000", lastVoucher: fake(3_000n, 1_010n) }));
  const re = t.nextVoucher(500n, 1_000n, 60n);
  assert.equal(re.kind, "sign");
  assert.equal(re.cumulative, 3_000n);
  assert.equal(re.kind === "sign" && re.spend, 0n);
  assert.equal(re.kind === "sign" && re.expiresAt, 1_060n);
});

test("vouchers with a time to live are signed again before half of it is left", () => {
  const s = new ChannelState(record());
  const first = s.nextVoucher(1_000n, 1_000n, 600n);
  assert.equal(first.kind, "sign");
  assert.equal(first.kind === "sign" && first.expiresAt, 1_600n);
  s.onSigned(fake(1_000n, 1_600n), 1_000n);
  assert.equal(s.nextVoucher(1_000n, 1_299n, 600n).kind, "resend");
  assert.equal(s.nextVoucher(1_000n, 1_301n, 600n).kind, "sign");
});

test("a request past the deposit is refused before anything is signed", () => {
  const s = new ChannelState(record({ deposit: "1500", accepted: "1000", signed: "1000" }));
  assert.throws(() => s.nextVoucher(600n, 0n, undefined), BudgetExhaustedError);
  assert.equal(s.signed, 1_000n);
  assert.equal(s.canPay(500n), true);
  assert.equal(s.canPay(501n), false);
  assert.equal(s.headroom(), 500n);
  const closing = new ChannelState(record({ phase: "closing" }));
  assert.throws(() => closing.nextVoucher(1n, 0n, undefined));
  assert.equal(closing.canPay(1n), false);
});

test("a resync hint is followed only within [accepted, signed] and never below settled", () => {
  const s = new ChannelState(record({ accepted: "2000", settled: "1000", signed: "5000", lastVoucher: fake(5_000n), resend: true }));
  assert.throws(() => s.resync(5_001n), UntrustedResyncError, "never above what was signed");
  assert.throws(() => s.resync(1_999n), UntrustedResyncError, "never below what the server confirmed");
  assert.equal(s.accepted, 2_000n);
  assert.equal(s.hasCredit(), true, "an untrusted hint changes nothing");
  s.resync(5_000n);
  assert.equal(s.accepted, 5_000n);
  assert.equal(s.hasCredit(), false);
  // The next voucher pays on from there.
  assert.equal(pay(s, 1_000n), 6_000n);
  const settledAhead = new ChannelState(record({ accepted: "0", settled: "3000", signed: "5000" }));
  assert.throws(() => settledAhead.resync(2_000n), UntrustedResyncError);
});

test("after a too-small increment the next voucher is above the refused one", () => {
  // Signed 3,000 (not held by the server), which answers lastAccepted = 2,500 for a price of 1,000.
  const s = new ChannelState(record({ accepted: "2000", signed: "3000", lastVoucher: fake(3_000n) }));
  s.resync(2_500n);
  assert.equal(pay(s, 1_000n), 3_500n);
});

test("exposure: the deposit and a top-up in flight while live, the final amount once closed", () => {
  const s = new ChannelState(record({ deposit: "10000", signed: "4000", settled: "3000" }));
  assert.equal(s.exposure(), 10_000n);
  s.pending = { kind: "topUp", amount: "5000", signature: "x", lastValidBlockHeight: "1" };
  assert.equal(s.exposure(), 15_000n);
  s.pending = undefined;
  s.phase = "closed";
  assert.equal(s.exposure(), 4_000n);
});

test("the record round-trips", () => {
  const r = record({ lastVoucher: fake(7n), pending: { kind: "open", amount: "10000", signature: "s", lastValidBlockHeight: "9" } });
  assert.deepEqual(new ChannelState(r).record(), r);
});
