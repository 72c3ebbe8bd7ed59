// Pays a paychan paywall with stock @x402/fetch and this package's scheme.
// Spawned by crates/paychan-client/tests/ts_client.rs against the real Rust
// paywall on the embedded chain; it never decides on its own whether the run
// passed: it reports what happened and the Rust test asserts it.
//
//   node test/integration/pay.mjs <input.json> <output.json>
//
// input:  rpcUrl, network, mint, decimals, payerSecretKey (64 numbers),
//         payerTokens, url, price, requests, budget, deposit, topUpThreshold,
//         topUpAmount, maxPrice, stateFile, flush (false: exit right after the
//         last answer, as a crash would, without writing the state again),
//         prepay (false: every request waits for its 402, as with plain fetch)
// output: per-request outcomes, what crossed the wire, timings, the scheme's
//         channels and budget.
import { readFileSync, writeFileSync } from "node:fs";

import { createKeyPairSignerFromBytes } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import { wrapFetchWithPayment } from "@x402/fetch";

import { registerPaychanScheme } from "../../dist/src/index.js";

const [inputPath, outputPath] = process.argv.slice(2);
if (!inputPath || !outputPath) {
  console.error("usage: node test/integration/pay.mjs <input.json> <output.json>");
  process.exit(2);
}
const input = JSON.parse(readFileSync(inputPath, "utf8"));

// What crossed the wire below the payment wrapper (the scheme's transport wraps this).
const wire = { unpaid402: 0, refused: [], paidAnswers: 0, other: 0, idempotencyKeys: 0 };
async function countingFetch(request) {
  const paid = request.headers.has("PAYMENT-SIGNATURE");
  if (paid && request.headers.has("Idempotency-Key")) {
    wire.idempotencyKeys += 1;
  }
  const res = await fetch(request);
  if (res.status === 402 && !paid) {
    wire.unpaid402 += 1;
  } else if (res.status === 402) {
    const required = decodePaymentRequiredHeader(res.headers.get("PAYMENT-REQUIRED"));
    wire.refused.push([required.error ?? null, required.extensions?.paychan?.lastAccepted ?? null]);
  } else if (paid) {
    wire.paidAnswers += 1;
  } else {
    wire.other += 1;
  }
  return res;
}

const payer = await createKeyPairSignerFromBytes(Uint8Array.from(input.payerSecretKey));
const client = new x402Client();
const scheme = registerPaychanScheme(client, {
  rpcUrl: input.rpcUrl,
  payer,
  network: input.network,
  mint: input.mint,
  decimals: input.decimals,
  payerTokens: input.payerTokens,
  state: input.stateFile,
  budget: input.budget,
  maxPrice: input.maxPrice,
  deposit: input.deposit,
  topUpThreshold: input.topUpThreshold,
  topUpAmount: input.topUpAmount,
  maxChannelsPerPayee: 1,
  usdSymbol: "USDC",
});
const fetchWithPayment = wrapFetchWithPayment(scheme.fetch(countingFetch, { prepay: input.prepay !== false }), client);

const outcomes = [];
const started = performance.now();
let firstDone;
for (let i = 0; i < input.requests; i++) {
  try {
    const res = await fetchWithPayment(input.url);
    const body = await res.text();
    const header = res.headers.get("PAYMENT-RESPONSE");
    const receipt = header ? decodePaymentResponseHeader(header) : null;
    outcomes.push({ status: res.status, body, receipt });
  } catch (e) {
    outcomes.push({ error: e instanceof Error ? e.message : String(e) });
  }
  firstDone ??= performance.now();
}
const ended = performance.now();

const json = (value) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v), 1);
const report = {
  outcomes,
  wire,
  elapsedMs: ended - started,
  // Without the first request (it opens the channel).
  steadyMs: ended - firstDone,
  channels: scheme.channels(),
  budget: scheme.budget(),
  payer: scheme.payer,
};
if (input.flush) {
  await scheme.flush();
}
writeFileSync(outputPath, json(report));
// Like a crash when `flush` is false: nothing is written after the last answer.
process.exit(0);
