// The scheme against a fake cluster: durability before a voucher leaves,
// what counts as paid, resync bounds, budget and top-ups, restarts, spend
// controls, and the transport under @x402/fetch.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { generateKeyPairSigner, type KeyPairSigner } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { encodePaymentRequiredHeader, encodePaymentResponseHeader, decodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse } from "@x402/core/types";
import { wrapFetchWithPayment } from "@x402/fetch";

import { BudgetExhaustedError } from "../src/channel.js";
import { encodeBase58 } from "../src/codec.js";
import { PAYCHAN_PROGRAM_ID, TOKEN_PROGRAM_ID } from "../src/program.js";
import { PaychanScheme, registerPaychanScheme, type PaychanSchemeConfig } from "../src/scheme.js";
import { STATE_VERSION, type StateDocument } from "../src/state.js";
import { parseSignedVoucherJson, SessionKey, type SignedVoucherJson } from "../src/voucher.js";
import { channelRecord, FakeCluster, listen, RecordingStore } from "./fakes.js";

const NETWORK = "solana:localtest";
const MINT = "CktRuQ2mttgRGkXJtyksdKHjUdc2C4TgDzyB98oEzy8";
// A key that can sign (the public key of the seed 0x07…).
const PAYEE = "GmaDrppBC7P5ARKV8g3djiwP89vz1jLK23V2GBjuAEGB";

const cluster = new FakeCluster();
let payer: KeyPairSigner;

before(async () => {
  await cluster.start();
  payer = await generateKeyPairSigner();
});
after(async () => {
  await cluster.stop();
});

function requirements(price: bigint | string = 1_000n): PaymentRequirements {
  return {
    scheme: "paychan",
    network: NETWORK,
    amount: price.toString(),
    asset: MINT,
    payTo: PAYEE,
    maxTimeoutSeconds: 60,
    extra: { programId: PAYCHAN_PROGRAM_ID, tokenProgram: TOKEN_PROGRAM_ID, decimals: 6, gracePeriodSeconds: 900, minimumDeposit: "1000", feePayer: PAYEE },
  };
}

/** A state with one open channel of `deposit` to PAYEE, on the fake cluster too. */
async function openChannel(deposit: bigint, over: Partial<StateDocument["channels"][number]> = {}): Promise<{ doc: StateDocument; address: string; key: SessionKey }> {
  const key = await SessionKey.generate();
  const address = encodeBase58(crypto.getRandomValues(new Uint8Array(32)));
  cluster.accounts.set(address, { deposit, settled: 0n, status: 1 });
  const doc: StateDocument = {
    version: STATE_VERSION,
    payer: payer.address,
    channels: [
      channelRecord({
        address,
        payee: PAYEE,
        mint: MINT,
        tokenProgram: TOKEN_PROGRAM_ID,
        network: NETWORK,
        signer: key.address,
        sessionKey: encodeBase58(key.seed),
        openSlot: "90",
        deposit: deposit.toString(),
        ...over,
      }),
    ],
  };
  return { doc, address, key };
}

/** The settings every scheme here shares: the fake cluster, PAYEE, a budget and a price cap. */
function config(store: RecordingStore, over: Partial<PaychanSchemeConfig> = {}): PaychanSchemeConfig {
  return {
    rpcUrl: cluster.url,
    payer,
    network: NETWORK,
    mint: MINT,
    decimals: 6,
    payerTokens: PAYEE,
    state: store,
    budget: 1_000_000n,
    maxPrice: 10_000n,
    ...over,
  };
}

function scheme(store: RecordingStore, over: Partial<PaychanSchemeConfig> = {}): PaychanScheme {
  return new PaychanScheme(config(store, { deposit: 10_000n, topUpThreshold: 1n, topUpAmount: 10_000n, ...over }));
}

async function pay(s: PaychanScheme, price: bigint | string = 1_000n, cap?: string): Promise<SignedVoucherJson> {
  const r = await s.createPaymentPayload(2, requirements(price), cap === undefined ? {} : { maxAmountPerPayment: cap });
  return r.payload as unknown as SignedVoucherJson;
}

function paymentPayload(voucher: SignedVoucherJson, price: bigint | string = 1_000n): PaymentPayload {
  return { x402Version: 2, accepted: requirements(price), payload: voucher as unknown as Record<string, unknown> };
}

function settled(amount?: string): SettleResponse {
  return { success: true, transaction: "", network: NETWORK, ...(amount === undefined ? {} : { amount }) };
}

function refusal(channel: string, lastAccepted: string): PaymentRequired {
  return {
    x402Version: 2,
    error: "invalid_payment_amount",
    resource: { url: "http://x/" } as PaymentRequired["resource"],
    accepts: [requirements()],
    extensions: { paychan: { reason: "invalid_payment_amount", code: "cumulative_too_low", channel, lastAccepted } },
  };
}

const cumulative = (v: SignedVoucherJson): bigint => parseSignedVoucherJson(v)!.voucher.cumulativeAmount;

test("a voucher is returned only after the state that holds it was saved", async () => {
  const { doc, address } = await openChannel(10_000n);
  const store = new RecordingStore(doc);
  const s = scheme(store);
  await s.init();
  store.delay = 30;
  store.events = [];
  const voucher = await pay(s).then((v) => {
    store.events.push("returned");
    return v;
  });
  assert.deepEqual(store.events, ["saved", "returned"]);
  const saved = store.last().channels.find((c) => c.address === address)!;
  assert.equal(saved.signed, "1000");
  assert.equal(saved.lastVoucher?.signature, voucher.signature);
  assert.equal(voucher.voucher.channelId, address);
  assert.equal(cumulative(voucher), 1_000n);
});

test("only a confirming receipt moves what was accepted; a 5xx leaves a credit re-sent as is", async () => {
  const { doc, address } = await openChannel(10_000n);
  const store = new RecordingStore(doc);
  const s = scheme(store);
  const first = await pay(s);
  // Overcharged: more than the voucher's increment.
  await s.onPaymentResponse({ paymentPayload: paymentPayload(first), requirements: requirements(), settleResponse: settled("1001") });
  assert.equal(s.channels()[0]!.accepted, 0n);
  assert.equal(s.channels()[0]!.credit, true);
  // The credit is re-sent byte for byte, whatever the next price.
  const again = await pay(s, 2_000n);
  assert.deepEqual(again, first);
  await s.onPaymentResponse({ paymentPayload: paymentPayload(again), requirements: requirements(), settleResponse: settled("1000") });
  assert.equal(s.channels()[0]!.accepted, 1_000n);
  assert.equal(s.channels()[0]!.credit, false);
  // No receipt at all (e.g. a 5xx): not paid.
  const second = await pay(s);
  assert.equal(cumulative(second), 2_000n);
  await s.onPaymentResponse({ paymentPayload: paymentPayload(second), requirements: requirements() });
  assert.equal(s.channels()[0]!.accepted, 1_000n);
  assert.deepEqual(await pay(s), second);
  assert.equal(s.budget().spent, 2_000n, "each amount is charged to the budget once");
  assert.equal(s.channels()[0]!.address, address);
});

test("a refusal's lastAccepted is followed up to what was signed, never above", async () => {
  const { doc, address } = await openChannel(10_000n);
  const s = scheme(new RecordingStore(doc));
  const v1 = await pay(s);
  await s.onPaymentResponse({ paymentPayload: paymentPayload(v1), requirements: requirements(), settleResponse: settled() });
  const v2 = await pay(s);
  assert.equal(cumulative(v2), 2_000n);
  // A server claiming more than was ever signed is not followed, and there is no retry.
  const above = await s.onPaymentResponse({ paymentPayload: paymentPayload(v2), requirements: requirements(), paymentRequired: refusal(address, "2001") });
  assert.equal(above, undefined);
  assert.equal(s.channels()[0]!.accepted, 1_000n);
  // A hint about another channel is not followed either.
  const v2again = await pay(s);
  assert.deepEqual(v2again, v2);
  const other = await s.onPaymentResponse({ paymentPayload: paymentPayload(v2), requirements: requirements(), paymentRequired: refusal(PAYEE, "2000") });
  assert.equal(other, undefined);
  // The spent voucher's own amount is: recovered, and the retry pays on from it.
  await pay(s);
  const spent = await s.onPaymentResponse({ paymentPayload: paymentPayload(v2), requirements: requirements(), paymentRequired: refusal(address, "2000") });
  assert.deepEqual(spent, { recovered: true });
  assert.equal(s.channels()[0]!.accepted, 2_000n);
  assert.equal(cumulative(await pay(s)), 3_000n);
});

test("the budget caps what is signed and escrowed; top-ups are recorded before they are sent", async () => {
  const { doc, address } = await openChannel(2_000n);
  const store = new RecordingStore(doc);
  const s = scheme(store, { budget: 4_500n, topUpThreshold: 500n, topUpAmount: 3_000n });
  await s.init();
  assert.deepEqual(s.budget(), { limit: 4_500n, spent: 0n, committed: 2_000n });
  for (const expected of [1_000n, 2_000n]) {
    const v = await pay(s);
    assert.equal(cumulative(v), expected);
    await s.onPaymentResponse({ paymentPayload: paymentPayload(v), requirements: requirements(), settleResponse: settled() });
  }
  // The third request needs a top-up: only 2,500 of the budget is left to escrow.
  let pendingAtSend: string | undefined;
  cluster.onSend = (signature) => {
    const saved = store.last().channels.find((c) => c.address === address);
    pendingAtSend = saved?.pending?.kind === "topUp" && saved.pending.signature === signature ? saved.pending.amount : undefined;
  };
  const sentBefore = cluster.sent.length;
  const v3 = await pay(s);
  cluster.onSend = () => undefined;
  assert.equal(cluster.sent.length, sentBefore + 1, "one top-up");
  assert.equal(pendingAtSend, "2500", "the top-up was durable before it was sent, capped by the budget");
  assert.equal(cumulative(v3), 3_000n);
  assert.deepEqual(s.budget(), { limit: 4_500n, spent: 3_000n, committed: 4_500n });
  assert.equal(s.channels()[0]!.deposit, 4_500n);
  await s.onPaymentResponse({ paymentPayload: paymentPayload(v3), requirements: requirements(), settleResponse: settled() });
  await pay(s).then((v) => s.onPaymentResponse({ paymentPayload: paymentPayload(v), requirements: requirements(), settleResponse: settled() }));
  // 4,000 signed: a fifth request of 1,000 would exceed the budget of 4,500.
  const saves = store.saves.length;
  await assert.rejects(pay(s), /remaining budget/);
  assert.equal(store.saves.length, saves, "nothing signed");
  assert.equal(s.budget().spent, 4_000n);
  // A price the budget still covers is paid.
  assert.equal(cumulative(await pay(s, "500")), 4_500n);
  assert.equal(cluster.sent.length, sentBefore + 1, "never escrowed beyond the budget");
});

test("a per-payment cap from the spend controls is enforced before signing", async () => {
  const { doc } = await openChannel(10_000n);
  const store = new RecordingStore(doc);
  const s = scheme(store);
  await s.init();
  const saves = store.saves.length;
  await assert.rejects(pay(s, "1000", "999"), BudgetExhaustedError);
  assert.equal(store.saves.length, saves);
  assert.equal(cumulative(await pay(s, "1000", "1000")), 1_000n);
});

test("after a restart the last voucher signed is owed as is: never signed below", async () => {
  const { doc } = await openChannel(10_000n);
  const store = new RecordingStore(doc);
  const s1 = scheme(store);
  const v1 = await pay(s1);
  await s1.onPaymentResponse({ paymentPayload: paymentPayload(v1), requirements: requirements(), settleResponse: settled() });
  const v2 = await pay(s1);
  // The process stops before v2's answer; the file knows 2,000 signed, 0 accepted.
  const s2 = scheme(new RecordingStore(store.last()));
  await s2.init();
  assert.equal(s2.channels()[0]!.credit, true);
  assert.deepEqual(await pay(s2), v2);
  assert.equal(s2.budget().spent, 2_000n);
});

test("a state of another payer is refused", async () => {
  const { doc } = await openChannel(10_000n);
  const other = await generateKeyPairSigner();
  const s = new PaychanScheme({ rpcUrl: cluster.url, payer: other, network: NETWORK, mint: MINT, state: new RecordingStore(doc), budget: 1n, maxPrice: 1n });
  await assert.rejects(s.init(), /another|payer/);
});

test("findDefaultAsset: @x402/svm's table, the configured mint when declared USD-pegged, nothing else", () => {
  const s = scheme(new RecordingStore(), { usdSymbol: "USDC" });
  assert.deepEqual(s.findDefaultAsset("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1")?.symbol, "USDC");
  assert.deepEqual(s.findDefaultAsset(MINT, NETWORK), { asset: MINT, decimals: 6, symbol: "USDC" });
  assert.equal(s.findDefaultAsset(MINT, "solana:other"), undefined);
  assert.equal(scheme(new RecordingStore()).findDefaultAsset(MINT, NETWORK), undefined);
});

/** A paywall in miniature: 402 with the offer, or 200 with a receipt when the voucher adds at least the price. */
async function fakePaywall(opts: { failFirstPaid?: boolean; redirectTo?: string; price?: () => bigint } = {}) {
  const price = opts.price ?? (() => 1_000n);
  const seen: Array<{ paid: boolean; idempotencyKey: string | undefined; path: string }> = [];
  let last = 0n;
  let failed = false;
  const { url, server } = await listen((req, res) => {
    const header = req.headers["payment-signature"];
    const paid = typeof header === "string";
    seen.push({ paid, idempotencyKey: req.headers["idempotency-key"] as string | undefined, path: req.url ?? "" });
    if (opts.redirectTo !== undefined && paid) {
      res.statusCode = 302;
      res.setHeader("location", opts.redirectTo);
      return res.end();
    }
    const required: PaymentRequired = { x402Version: 2, resource: { url: `http://x${req.url}` } as PaymentRequired["resource"], accepts: [requirements(price())] };
    if (!paid) {
      res.statusCode = 402;
      res.setHeader("PAYMENT-REQUIRED", encodePaymentRequiredHeader(required));
      return res.end("{}");
    }
    const voucher = parseSignedVoucherJson(decodePaymentSignatureHeader(header).payload);
    const amount = voucher?.voucher.cumulativeAmount ?? 0n;
    if (opts.failFirstPaid === true && !failed) {
      failed = true;
      res.statusCode = 503;
      return res.end('{"error":"handler_failed"}');
    }
    if (amount - last < price()) {
      res.statusCode = 402;
      const channel = voucher === undefined ? undefined : encodeBase58(voucher.voucher.channelId);
      const hint = amount === last || voucher === undefined ? {} : { extensions: { paychan: { channel, lastAccepted: last.toString() } } };
      res.setHeader("PAYMENT-REQUIRED", encodePaymentRequiredHeader({ ...required, error: "invalid_payment_amount", ...hint }));
      return res.end("{}");
    }
    const charged = amount - last;
    last = amount;
    res.setHeader("PAYMENT-RESPONSE", encodePaymentResponseHeader(settled(charged.toString())));
    res.end(`charged ${charged}`);
  });
  return { url, server, seen };
}

test("@x402/fetch with the scheme's transport: Idempotency-Key on paid requests, a 5xx is a credit", async () => {
  const { doc } = await openChannel(10_000n);
  // The local mint is not a default asset of @x402/svm: declared USD-pegged,
  // @x402/core's default spend controls accept it (else they refuse the offer).
  const s = scheme(new RecordingStore(doc), { usdSymbol: "USDC" });
  const client = new x402Client();
  client.register(NETWORK, s);
  const paywall = await fakePaywall({ failFirstPaid: true });
  try {
    const fetchWithPayment = wrapFetchWithPayment(s.fetch(), client);
    const failed = await fetchWithPayment(`${paywall.url}/a`);
    assert.equal(failed.status, 503);
    assert.equal(s.channels()[0]!.credit, true);
    assert.equal(s.channels()[0]!.accepted, 0n);
    const ok = await fetchWithPayment(`${paywall.url}/a`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), "charged 1000", "the credit paid this request");
    const ok2 = await fetchWithPayment(`${paywall.url}/a`);
    assert.equal(await ok2.text(), "charged 1000");
    assert.equal(s.channels()[0]!.accepted, 2_000n);
    const paid = paywall.seen.filter((r) => r.paid);
    assert.equal(paid.length, 3);
    assert.ok(paid.every((r) => r.idempotencyKey !== undefined && /^[0-9a-f]{32}$/.test(r.idempotencyKey)));
    assert.equal(new Set(paid.map((r) => r.idempotencyKey)).size, 3);
    // Paid once after its 402, the third request was paid ahead: no 402 for it.
    const unpaid = paywall.seen.filter((r) => !r.paid);
    assert.equal(unpaid.length, 2);
    assert.ok(unpaid.every((r) => r.idempotencyKey === undefined));
  } finally {
    paywall.server.close();
  }
});

test("a paid request redirected to another origin is not followed: the voucher never leaves the origin", async () => {
  const { doc } = await openChannel(10_000n);
  const client = new x402Client();
  const s = registerPaychanScheme(client, config(new RecordingStore(doc), { usdSymbol: "USDC" }));
  const elsewhere = await fakePaywall();
  const paywall = await fakePaywall({ redirectTo: `${elsewhere.url}/stolen` });
  try {
    const fetchWithPayment = wrapFetchWithPayment(s.fetch(), client);
    const res = await fetchWithPayment(`${paywall.url}/moved`);
    assert.equal(res.status, 302, "the redirect is returned, not followed");
    assert.equal(elsewhere.seen.length, 0, "nothing reached the other origin");
    assert.equal(paywall.seen.filter((r) => r.paid).length, 1);
    // An answer without a receipt: not paid, the voucher stays a credit.
    assert.equal(s.channels()[0]!.accepted, 0n);
    assert.equal(s.channels()[0]!.credit, true);
  } finally {
    paywall.server.close();
    elsewhere.server.close();
  }
});

test("within the origin, redirects are followed", async () => {
  const { url, server } = await listen((req, res) => {
    if (req.url === "/old") {
      res.statusCode = 307;
      res.setHeader("location", "/new");
      return res.end();
    }
    res.end(`at ${req.url}`);
  });
  try {
    const s = scheme(new RecordingStore());
    const res = await s.fetch()(`${url}/old`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "at /new");
  } finally {
    server.close();
  }
});

test("channels of another network are kept and budgeted, not read from this cluster", async () => {
  const { doc } = await openChannel(10_000n);
  const here = doc.channels[0]!;
  const there = { ...here, address: encodeBase58(crypto.getRandomValues(new Uint8Array(32))), network: "solana:elsewhere", deposit: "7000", signed: "3000" };
  const store = new RecordingStore({ ...doc, channels: [here, there] });
  const s = scheme(store);
  await s.init();
  const kept = s.channels().find((c) => c.address === there.address);
  assert.equal(kept?.phase, "open", "not taken for closed because this cluster has no such account");
  assert.deepEqual(s.budget(), { limit: 1_000_000n, spent: 3_000n, committed: 17_000n });
  // And a channel of this network that is gone from the chain is closed.
  cluster.accounts.delete(here.address);
  const s2 = scheme(new RecordingStore({ ...doc, channels: [{ ...here, signed: "2000", accepted: "2000" }] }));
  await s2.init();
  assert.equal(s2.channels()[0]!.phase, "closed");
  assert.equal(s2.budget().committed, 2_000n, "a closed channel costs its final amount");
});

test("paying ahead: one 402 per request and price; a price raised is refused, resynchronised and paid", async () => {
  const { doc } = await openChannel(100_000n);
  const s = scheme(new RecordingStore(doc), { usdSymbol: "USDC" });
  const client = new x402Client();
  client.register(NETWORK, s);
  let price = 1_000n;
  const paywall = await fakePaywall({ price: () => price });
  try {
    const fetchWithPayment = wrapFetchWithPayment(s.fetch(), client);
    for (let i = 0; i < 5; i++) {
      const res = await fetchWithPayment(`${paywall.url}/r?q=1`);
      assert.equal(await res.text(), "charged 1000");
    }
    assert.equal(paywall.seen.filter((r) => !r.paid).length, 1, "only the first request waited for a 402");
    assert.equal(paywall.seen.filter((r) => r.paid).length, 5);
    // Another URL (the query differs) is another resource: its own 402.
    await fetchWithPayment(`${paywall.url}/r?q=2`);
    assert.equal(paywall.seen.filter((r) => !r.paid).length, 2);
    // The price rises: the voucher paid ahead is refused, the 402 is paid at the new price.
    price = 2_500n;
    const seen = paywall.seen.length;
    const res = await fetchWithPayment(`${paywall.url}/r?q=1`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "charged 2500");
    assert.deepEqual(
      paywall.seen.slice(seen).map((r) => r.paid),
      [true, true],
      "paid ahead (refused), then paid at the new price",
    );
    assert.equal(s.channels()[0]!.accepted, 8_500n);
    assert.equal(s.budget().spent, 8_500n, "the refused voucher (7,000) is covered by the next one: cumulative amounts");
    // Not paid ahead without the transport's option.
    const plain = wrapFetchWithPayment(s.fetch(fetch, { prepay: false }), client);
    const before = paywall.seen.filter((r) => !r.paid).length;
    await plain(`${paywall.url}/r?q=1`);
    assert.equal(paywall.seen.filter((r) => !r.paid).length, before + 1);
  } finally {
    paywall.server.close();
  }
});

test("bodies survive the transport: a POST is sent, a 307 re-sends it, a 303 turns it into a GET", async () => {
  const { url, server } = await listen((req, res, body) => {
    if (req.url === "/307") {
      res.statusCode = 307;
      res.setHeader("location", "/echo");
      return res.end();
    }
    if (req.url === "/303") {
      res.statusCode = 303;
      res.setHeader("location", "/echo");
      return res.end();
    }
    res.end(`${req.method} ${req.url} ${body}`);
  });
  try {
    const f = scheme(new RecordingStore()).fetch();
    const post = (path: string): Promise<string> => f(`${url}${path}`, { method: "POST", body: "hello" }).then((r) => r.text());
    assert.equal(await post("/echo"), "POST /echo hello");
    assert.equal(await post("/307"), "POST /echo hello");
    assert.equal(await post("/303"), "GET /echo ");
  } finally {
    server.close();
  }
});
