// Checks paychan's x402 wire output with the x402 ecosystem's own library,
// @x402/core (pinned in package.json / package-lock.json).
//
//   node validate.mjs <input.json> [<output.json>]
//
// <input.json> (written by crates/paychan-x402/tests/interop_node.rs):
//   expected                 {price, network, payer, resourceUrl, asset, lastAccepted}
//   paymentRequired          PAYMENT-REQUIRED header value (the offer)
//   paymentRequiredRejected  PAYMENT-REQUIRED of a rejected voucher (error + extensions.paychan)
//   paymentSignature         PAYMENT-SIGNATURE header value
//   paymentResponse          PAYMENT-RESPONSE header value
//   verifyResponse           /verify answer (JSON)
//   supported                /supported answer (JSON)
// Every present key is decoded with the package's decoders and validated with
// its zod schemas (or, where the package keeps the schema private, through the
// package's own HTTPFacilitatorClient against a local HTTP server). Negative
// cases prove the package rejects corrupted values; one that is accepted fails
// the run. <output.json> receives what the package produced from our values
// (its PAYMENT-SIGNATURE for our offer, the /verify body its facilitator client
// sends) so the Rust side can decode them with its own types.
//
// Exit status 0 only when every check passed; the last line lists the keys checked.
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";

import {
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  decodePaymentSignatureHeader,
  encodePaymentRequiredHeader,
  encodePaymentResponseHeader,
  encodePaymentSignatureHeader,
  HTTPFacilitatorClient,
  x402HTTPClient,
} from "@x402/core/http";
import { x402Client } from "@x402/core/client";
import { x402ResourceServer } from "@x402/core/server";
import {
  PaymentPayloadSchema,
  PaymentPayloadV2Schema,
  PaymentRequiredSchema,
  PaymentRequiredV2Schema,
} from "@x402/core/schemas";
import { deepEqual } from "@x402/core/utils";

const CORE_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@x402/core/package.json", import.meta.url), "utf8"),
).version;

const failures = [];
const checked = [];
let passes = 0;

function check(cond, what) {
  if (cond) {
    passes += 1;
  } else {
    failures.push(what);
    console.error(`FAIL ${what}`);
  }
}

function describeZod(result) {
  return result.success
    ? "ok"
    : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
}

/** Parses with a zod schema; records a failure with the issues when it does not parse. */
function mustParse(schema, value, what) {
  const result = schema.safeParse(value);
  check(result.success, `${what} parses (${describeZod(result)})`);
  return result.success ? result.data : undefined;
}

/** Records a failure when `fn` does NOT throw (a negative case the package accepted). */
async function mustThrow(fn, what) {
  try {
    await fn();
  } catch {
    check(true, what);
    return;
  }
  check(false, `${what}: accepted, expected a rejection`);
}

/** Records a failure when the schema accepts `value`. */
function mustNotParse(schema, value, what) {
  const result = schema.safeParse(value);
  check(!result.success, `${what}: accepted, expected a rejection`);
}

const DIGITS = /^(0|[1-9][0-9]*)$/;
const clone = (v) => JSON.parse(JSON.stringify(v));

// ---- a local facilitator serving our JSON to the package's HTTPFacilitatorClient ----

const served = { verify: null, settle: null, supported: null };
const received = { verify: [] };

function startFacilitator() {
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const route = (req.url ?? "").replace(/^\/+/, "");
      if (route === "verify") received.verify.push(body);
      const answer = served[route];
      if (answer === undefined || answer === null) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "not_found" }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(typeof answer === "string" ? answer : JSON.stringify(answer));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// ---- checks ----

function checkOffer(header, expected) {
  const raw = decodePaymentRequiredHeader(header);
  const parsed = mustParse(PaymentRequiredV2Schema, raw, "PAYMENT-REQUIRED (PaymentRequiredV2Schema)");
  mustParse(PaymentRequiredSchema, raw, "PAYMENT-REQUIRED (PaymentRequiredSchema)");
  // The client-side accessor an x402 buyer uses on a 402.
  const viaClient = new x402HTTPClient(new x402Client()).getPaymentRequiredResponse((name) =>
    name === "PAYMENT-REQUIRED" ? header : null,
  );
  check(deepEqual(viaClient, raw), "x402HTTPClient.getPaymentRequiredResponse decodes the same offer");
  if (!parsed) return raw;
  check(parsed.x402Version === 2, "offer x402Version is 2");
  check(parsed.error === undefined, "an offer carries no error");
  check(parsed.resource.url === expected.resourceUrl, "offer resource.url");
  check(parsed.accepts.length === 1, "offer has one requirement");
  const req = parsed.accepts[0];
  check(req.scheme === "paychan", `requirement scheme is paychan (got ${req.scheme})`);
  check(req.network === expected.network, `requirement network (got ${req.network})`);
  check(req.amount === expected.price, `requirement amount equals the price (got ${req.amount})`);
  check(DIGITS.test(req.amount), "requirement amount is a decimal integer");
  check(req.asset === expected.asset, "requirement asset");
  check(Number.isInteger(req.maxTimeoutSeconds) && req.maxTimeoutSeconds === 60, "maxTimeoutSeconds is 60");
  const extra = req.extra ?? {};
  for (const key of ["programId", "tokenProgram", "minimumDeposit"]) {
    check(typeof extra[key] === "string" && extra[key].length > 0, `extra.${key} is a non-empty string`);
  }
  check(DIGITS.test(extra.minimumDeposit ?? ""), "extra.minimumDeposit is a decimal integer");
  check(Number.isInteger(extra.decimals), "extra.decimals is an integer");
  check(Number.isInteger(extra.gracePeriodSeconds), "extra.gracePeriodSeconds is an integer");
  check(extra.paymentFlow === undefined, "extra does not use the reserved paymentFlow key");
  return raw;
}

async function checkOfferNegatives(header, raw) {
  // Corrupted header values: the package's decoder must refuse them.
  await mustThrow(() => decodePaymentRequiredHeader(`${header.slice(0, 8)}!${header.slice(9)}`), "neg: non-base64 PAYMENT-REQUIRED rejected");
  await mustThrow(() => decodePaymentRequiredHeader(header.slice(0, -8)), "neg: truncated PAYMENT-REQUIRED rejected");
  // Schema violations, re-encoded with the package's own encoder.
  const variants = [
    ["network without a CAIP-2 colon", (v) => { v.accepts[0].network = "solana"; }],
    ["empty accepts", (v) => { v.accepts = []; }],
    ["maxTimeoutSeconds 0", (v) => { v.accepts[0].maxTimeoutSeconds = 0; }],
    ["amount missing", (v) => { delete v.accepts[0].amount; }],
    ["extra not a record", (v) => { v.accepts[0].extra = "paychan"; }],
    ["x402Version 3", (v) => { v.x402Version = 3; }],
    ["resource.url empty", (v) => { v.resource.url = ""; }],
  ];
  for (const [what, mutate] of variants) {
    const v = clone(raw);
    mutate(v);
    const decoded = decodePaymentRequiredHeader(encodePaymentRequiredHeader(v));
    mustNotParse(PaymentRequiredSchema, decoded, `neg: PAYMENT-REQUIRED with ${what}`);
  }
}

function checkRejected(header, expected) {
  const raw = decodePaymentRequiredHeader(header);
  const parsed = mustParse(PaymentRequiredV2Schema, raw, "rejection PAYMENT-REQUIRED (PaymentRequiredV2Schema)");
  if (!parsed) return;
  check(typeof parsed.error === "string" && parsed.error.length > 0, "rejection carries an error reason");
  const ext = parsed.extensions?.paychan;
  check(ext !== undefined && typeof ext === "object", "rejection has extensions.paychan");
  check(ext?.reason === parsed.error, "extensions.paychan.reason equals error");
  check(typeof ext?.channel === "string" && ext.channel.length > 0, "extensions.paychan.channel");
  check(DIGITS.test(ext?.lastAccepted ?? ""), "extensions.paychan.lastAccepted is a decimal integer");
  check(ext?.lastAccepted === expected.lastAccepted, `extensions.paychan.lastAccepted (got ${ext?.lastAccepted})`);
  // `required` is the least cumulative amount the paywall takes next: lastAccepted + price.
  check(
    DIGITS.test(ext?.required ?? "") &&
      BigInt(ext.required) === BigInt(expected.lastAccepted) + BigInt(expected.price),
    `extensions.paychan.required equals lastAccepted + price (got ${ext?.required})`,
  );
  check(parsed.accepts[0]?.amount === expected.price, "rejection still offers the price");
}

function checkSignature(header, offer) {
  const raw = decodePaymentSignatureHeader(header);
  const parsed = mustParse(PaymentPayloadV2Schema, raw, "PAYMENT-SIGNATURE (PaymentPayloadV2Schema)");
  mustParse(PaymentPayloadSchema, raw, "PAYMENT-SIGNATURE (PaymentPayloadSchema)");
  if (!parsed) return raw;
  const p = parsed.payload;
  check(p.signatureType === "ed25519", "payload.signatureType is ed25519");
  check(typeof p.signer === "string" && typeof p.signature === "string", "payload has signer and signature");
  check(DIGITS.test(p.voucher?.cumulativeAmount ?? ""), "payload.voucher.cumulativeAmount is a decimal integer");
  // The resource server's own matching of a payment against the offered requirements.
  const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: "http://127.0.0.1:9" }));
  const match = server.findMatchingRequirements(offer.accepts, raw);
  check(match !== undefined && deepEqual(match, offer.accepts[0]), "x402ResourceServer matches the payment to the offer");
  const tampered = clone(raw);
  tampered.accepted.amount = `${tampered.accepted.amount}0`;
  check(server.findMatchingRequirements(offer.accepts, tampered) === undefined, "neg: a payment with a changed amount matches no requirement");
  return raw;
}

async function checkSignatureNegatives(header) {
  await mustThrow(() => decodePaymentSignatureHeader(`${header}%`), "neg: non-base64 PAYMENT-SIGNATURE rejected");
  const raw = decodePaymentSignatureHeader(header);
  const noPayload = clone(raw);
  noPayload.payload = "voucher";
  mustNotParse(PaymentPayloadV2Schema, noPayload, "neg: PAYMENT-SIGNATURE with a string payload");
}

/** The package's buyer flow paying our offer; our voucher is the scheme payload. */
async function payWithPackageClient(offer, ourPayload, expected) {
  const schemeClient = {
    scheme: "paychan",
    createPaymentPayload: async (x402Version, requirements) => {
      check(requirements.amount === expected.price, "x402Client selected the paychan requirement");
      return { x402Version, payload: ourPayload.payload };
    },
  };
  const client = x402Client.fromConfig({
    schemes: [{ network: "solana:*", client: schemeClient }],
    // Per-asset atomic cap: the package's spend controls require `amount` to be an atomic integer.
    spendControls: { allowedAssets: [{ network: expected.network, asset: expected.asset, maxAmountPerPayment: expected.price }] },
  });
  const payload = await client.createPaymentPayload(offer);
  mustParse(PaymentPayloadV2Schema, payload, "x402Client's payment for our offer");
  check(deepEqual(payload, ourPayload), "x402Client builds the same PAYMENT-SIGNATURE payload as paychan");
  const headers = new x402HTTPClient(client).encodePaymentSignatureHeader(payload);
  check(typeof headers["PAYMENT-SIGNATURE"] === "string", "x402HTTPClient encodes PAYMENT-SIGNATURE");
  // Negative: a cap below the price must refuse the offer (amount compared as an integer).
  const capped = x402Client.fromConfig({
    schemes: [{ network: "solana:*", client: schemeClient }],
    spendControls: { allowedAssets: [{ network: expected.network, asset: expected.asset, maxAmountPerPayment: (BigInt(expected.price) - 1n).toString() }] },
  });
  await mustThrow(() => capped.createPaymentPayload(offer), "neg: x402Client refuses an offer above its spend cap");
  return headers["PAYMENT-SIGNATURE"];
}

async function checkResponse(header, expected, facilitator) {
  const raw = decodePaymentResponseHeader(header);
  // What an x402 buyer sees after a paid request.
  const result = new x402HTTPClient(new x402Client()).parsePaymentResult({
    status: 200,
    getHeader: (name) => (name === "PAYMENT-RESPONSE" ? header : null),
    body: {},
  });
  check(result.paymentStatus === "settled", `x402HTTPClient.parsePaymentResult says settled (got ${result.paymentStatus})`);
  // The package's settle-response schema is private to its facilitator client: serve it.
  served.settle = raw;
  const settled = await facilitator.settle({ x402Version: 2 }, {});
  check(settled.success === true, "PAYMENT-RESPONSE success is true");
  check(settled.transaction === "", "PAYMENT-RESPONSE transaction is empty (deferred settlement)");
  check(settled.network === expected.network, "PAYMENT-RESPONSE network");
  check(settled.amount === expected.price, `PAYMENT-RESPONSE amount equals the price (got ${settled.amount})`);
  check(settled.payer === expected.payer, "PAYMENT-RESPONSE payer");
  check(encodePaymentResponseHeader(raw) === header, "the package re-encodes PAYMENT-RESPONSE byte for byte");
  // Negatives.
  await mustThrow(() => decodePaymentResponseHeader(`*${header}`), "neg: non-base64 PAYMENT-RESPONSE rejected");
  for (const [what, mutate] of [
    ["no transaction", (v) => { delete v.transaction; }],
    ["success as a string", (v) => { v.success = "true"; }],
    ["numeric amount", (v) => { v.amount = 1000; }],
  ]) {
    const v = clone(raw);
    mutate(v);
    served.settle = v;
    await mustThrow(() => facilitator.settle({ x402Version: 2 }, {}), `neg: settle response with ${what} rejected`);
  }
  served.settle = null;
}

async function checkVerify(answer, expected, facilitator, payment, offer) {
  served.verify = answer;
  const verified = await facilitator.verify(payment, offer.accepts[0]);
  check(verified.isValid === true, "verify isValid");
  check(verified.payer === expected.payer, "verify payer");
  const bad = clone(answer);
  bad.isValid = "yes";
  served.verify = bad;
  await mustThrow(() => facilitator.verify(payment, offer.accepts[0]), "neg: verify response with a string isValid rejected");
  served.verify = null;
}

async function checkSupported(answer, expected, facilitator) {
  served.supported = answer;
  const supported = await facilitator.getSupported();
  const kind = supported.kinds.find((k) => k.x402Version === 2 && k.scheme === "paychan" && k.network === expected.network);
  check(kind !== undefined, "supported lists (2, paychan, network)");
  check(typeof kind?.extra?.programId === "string", "supported kind carries the paychan extra");
  check(Array.isArray(supported.extensions), "supported.extensions is an array");
  check(supported.signers !== null && typeof supported.signers === "object", "supported.signers is a record");
  const bad = clone(answer);
  bad.kinds = "paychan";
  served.supported = bad;
  await mustThrow(() => facilitator.getSupported(), "neg: supported with kinds not an array rejected");
  served.supported = null;
}

async function main() {
  const [inputPath, outputPath] = process.argv.slice(2);
  if (!inputPath) {
    console.error("usage: node validate.mjs <input.json> [<output.json>]");
    process.exit(2);
  }
  const input = JSON.parse(readFileSync(inputPath, "utf8"));
  const expected = input.expected;
  if (!expected || !input.paymentRequired || !input.paymentResponse) {
    console.error("input needs expected, paymentRequired and paymentResponse");
    process.exit(2);
  }
  const out = {};
  const server = await startFacilitator();
  try {
    const { port } = server.address();
    const facilitator = new HTTPFacilitatorClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 10_000 });

    const offer = checkOffer(input.paymentRequired, expected);
    await checkOfferNegatives(input.paymentRequired, offer);
    checked.push("paymentRequired");

    if (input.paymentRequiredRejected) {
      checkRejected(input.paymentRequiredRejected, expected);
      checked.push("paymentRequiredRejected");
    }

    let payment;
    if (input.paymentSignature) {
      payment = checkSignature(input.paymentSignature, offer);
      await checkSignatureNegatives(input.paymentSignature);
      out.paymentSignature = await payWithPackageClient(offer, payment, expected);
      checked.push("paymentSignature");
    }

    await checkResponse(input.paymentResponse, expected, facilitator);
    checked.push("paymentResponse");

    if (input.verifyResponse) {
      if (!payment) {
        check(false, "verifyResponse needs paymentSignature");
      } else {
        await checkVerify(input.verifyResponse, expected, facilitator, payment, offer);
        out.facilitatorRequest = received.verify[0];
        checked.push("verifyResponse");
      }
    }

    if (input.supported) {
      await checkSupported(input.supported, expected, facilitator);
      checked.push("supported");
    }
  } catch (err) {
    check(false, `unexpected error: ${err?.stack ?? err}`);
  } finally {
    server.close();
  }

  if (outputPath) writeFileSync(outputPath, JSON.stringify(out, null, 2));
  console.log(`@x402/core ${CORE_VERSION}: ${passes} checks passed, ${failures.length} failed`);
  if (failures.length > 0) {
    for (const f of failures) console.log(`  failed: ${f}`);
    process.exit(1);
  }
  console.log(`ok: ${checked.join(", ")}`);
}

await main();
