// Pays a paywall's x402 `exact` offers with the stock client: @x402/fetch and
// @x402/svm 2.27's ExactSvmScheme (one partially signed TransferChecked
// transaction per request, the server co-signing as fee payer). Nothing of
// this package is used. Spawned by crates/paychan-client/tests/ts_exact.rs;
// it reports what happened and the Rust test asserts it.
//
//   node test/integration/exact.mjs <input.json> <output.json>
//
// input:  rpcUrl, network (a CAIP-2 id @x402/svm knows: it refuses others),
//         mint, payerSecretKey (64 numbers), url, requests
// output: per-request outcomes (status, body, decoded PAYMENT-RESPONSE,
//         milliseconds), what crossed the wire, the offers' schemes.
import { readFileSync, writeFileSync } from "node:fs";

import { createKeyPairSignerFromBytes } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader, decodePaymentSignatureHeader } from "@x402/core/http";
import { wrapFetchWithPayment } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";

const [inputPath, outputPath] = process.argv.slice(2);
if (!inputPath || !outputPath) {
  console.error("usage: node test/integration/exact.mjs <input.json> <output.json>");
  process.exit(2);
}
const input = JSON.parse(readFileSync(inputPath, "utf8"));

const wire = { unpaid402: 0, refused: [], paidAnswers: 0, offeredSchemes: [], paidSchemes: [] };
async function countingFetch(request) {
  const header = request.headers.get("PAYMENT-SIGNATURE");
  if (header) {
    wire.paidSchemes.push(decodePaymentSignatureHeader(header).accepted.scheme);
  }
  const res = await fetch(request);
  if (res.status === 402 && !header) {
    wire.unpaid402 += 1;
    if (wire.offeredSchemes.length === 0) {
      wire.offeredSchemes = decodePaymentRequiredHeader(res.headers.get("PAYMENT-REQUIRED")).accepts.map((a) => a.scheme);
    }
  } else if (res.status === 402) {
    const required = decodePaymentRequiredHeader(res.headers.get("PAYMENT-REQUIRED"));
    wire.refused.push(required.error ?? null);
  } else if (header) {
    wire.paidAnswers += 1;
  }
  return res;
}

const signer = await createKeyPairSignerFromBytes(Uint8Array.from(input.payerSecretKey));
const client = new x402Client();
// The stock scheme, pointed at the embedded chain's RPC.
client.register(input.network, new ExactSvmScheme(signer, { rpcUrl: input.rpcUrl }));
// The test mint is no default asset of @x402/svm: allowed explicitly.
client.setSpendControls({ allowedAssets: [{ network: input.network, asset: input.mint }] });
const fetchWithPayment = wrapFetchWithPayment(countingFetch, client);

const outcomes = [];
const started = performance.now();
for (let i = 0; i < input.requests; i++) {
  const t = performance.now();
  try {
    const res = await fetchWithPayment(input.url);
    const body = await res.text();
    const header = res.headers.get("PAYMENT-RESPONSE");
    outcomes.push({ status: res.status, body, receipt: header ? decodePaymentResponseHeader(header) : null, ms: performance.now() - t });
  } catch (e) {
    outcomes.push({ error: e instanceof Error ? e.message : String(e) });
  }
}
const report = { outcomes, wire, elapsedMs: performance.now() - started, payer: signer.address };
writeFileSync(outputPath, JSON.stringify(report, null, 1));
