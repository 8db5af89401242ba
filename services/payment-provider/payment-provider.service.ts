/**
 * payment-provider: a simulated card processor, standing in for an external
 * one (Stripe, Adyen) in development, demos and tests. It keeps its own
 * records (collection `provider_charges`), as a real provider does, so a
 * charge can be looked up by its idempotency key from any payments node.
 *
 * Behaviour by payment-method token (contracts/payments.ts):
 * `pm_card_visa` succeeds, `pm_card_chargeDeclined` is declined,
 * `pm_card_chargeDeclinedProcessingError` fails with a processing error,
 * `pm_card_timeout` succeeds but answers only after the caller stopped
 * waiting; any other token is an invalid payment method. PAYMENT_LATENCY_MS
 * delays every answer and PAYMENT_FAILURE_RATE fails that share of charges
 * with a processing error. The first answer under a key is the answer under
 * that key forever.
 */
import { randomBytes } from "node:crypto";
import type { Service, ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import { config } from "../../platform/config";
import { conflict, notFound } from "../../contracts/errors";
import { currencyParam } from "../../platform/params";
import {
	type ChargeRequest,
	MAX_CHARGE,
	paymentMethodParam,
	type ProviderCharge,
	type ProviderRefund,
	type RefundRequest,
	TEST_PAYMENT_METHODS,
} from "../../contracts/payments";

const keyParam = { type: "string", min: 1, max: 200 } as const;
const amountParam = { type: "number", integer: true, min: 1, max: MAX_CHARGE } as const;

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString("hex")}`;

/** What the simulated card network answers for a token (before random failures). */
function outcome(paymentMethod: string): Pick<ProviderCharge, "status" | "failureCode" | "failureMessage" | "card"> {
	switch (paymentMethod) {
		case TEST_PAYMENT_METHODS.visa:
		case TEST_PAYMENT_METHODS.timeout:
			return { status: "succeeded", card: { brand: "visa", last4: "4242" } };
		case TEST_PAYMENT_METHODS.declined:
			return {
				status: "failed",
				failureCode: "card_declined",
				failureMessage: "Your card was declined.",
				card: { brand: "visa", last4: "0002" },
			};
		case TEST_PAYMENT_METHODS.processingError:
			return {
				status: "failed",
				failureCode: "processing_error",
				failureMessage: "An error occurred while processing your card. Try again later.",
				card: { brand: "visa", last4: "0119" },
			};
		default:
			return {
				status: "failed",
				failureCode: "invalid_payment_method",
				failureMessage: "No such payment method.",
			};
	}
}

interface ProviderMethods extends DbMethods {
	record<T>(doc: T & { key: string; kind: string; createdAt: Date }): Promise<T>;
}

const PaymentProviderService: ServiceSchema<object, object, object, Service & ProviderMethods> = {
	name: "payment-provider",

	mixins: [
		DbMixin({
			collection: "provider_charges",
			schema: {
				key: String,
				kind: String,
				chargeId: String,
				refundId: String,
				status: String,
				amount: Number,
				currency: String,
				failureCode: String,
				failureMessage: String,
				card: { brand: String, last4: String },
				createdAt: Date,
			},
			indexes: [{ field: "key", unique: true }, { field: "chargeId" }],
		}),
	],

	settings: {
		fields: [
			"key",
			"chargeId",
			"refundId",
			"status",
			"amount",
			"currency",
			"failureCode",
			"failureMessage",
			"card",
		],
	},

	actions: {
		/** Charge a payment method, idempotent by `key`. */
		charge: {
			visibility: "public",
			retryPolicy: { enabled: false },
			params: {
				$$strict: true,
				key: keyParam,
				amount: amountParam,
				currency: currencyParam,
				paymentMethod: paymentMethodParam,
			},
			async handler(ctx): Promise<ProviderCharge> {
				const { key, amount, currency, paymentMethod } = ctx.params as ChargeRequest;
				await sleep(config.payments.providerLatencyMs);
				const earlier = await this.adapter.findOne({ key, kind: "charge" });
				if (earlier) return this.toEntity(ctx, earlier);

				const result = outcome(paymentMethod);
				const injected = result.status === "succeeded" && Math.random() < config.payments.providerFailureRate;
				const charge = await this.record<ProviderCharge>({
					key,
					kind: "charge",
					chargeId: newId("ch"),
					amount,
					currency,
					createdAt: new Date(),
					...(injected ? { ...outcome(TEST_PAYMENT_METHODS.processingError), card: result.card } : result),
				});
				// The charge is made; its answer is lost on the way (the caller times out first).
				if (paymentMethod === TEST_PAYMENT_METHODS.timeout) await sleep(config.payments.providerTimeoutMs * 3);
				return charge;
			},
		},

		/** The charge made under `key`, or null. */
		findCharge: {
			visibility: "public",
			params: { $$strict: true, key: keyParam },
			async handler(ctx): Promise<ProviderCharge | null> {
				const doc = await this.adapter.findOne({ key: ctx.params.key, kind: "charge" });
				return doc ? this.toEntity(ctx, doc) : null;
			},
		},

		/** Refund a succeeded charge, idempotent by `key`; never more than was charged. */
		refund: {
			visibility: "public",
			retryPolicy: { enabled: false },
			params: { $$strict: true, key: keyParam, chargeId: keyParam, amount: amountParam },
			async handler(ctx): Promise<ProviderRefund> {
				const { key, chargeId, amount } = ctx.params as RefundRequest;
				await sleep(config.payments.providerLatencyMs);
				const earlier = await this.adapter.findOne({ key, kind: "refund" });
				if (earlier) return this.toEntity(ctx, earlier);

				const charge = (await this.adapter.findOne({ chargeId, kind: "charge" })) as ProviderCharge | null;
				if (!charge || charge.status !== "succeeded") throw notFound("Charge", chargeId);
				const refunds = (await this.adapter.find({ query: { chargeId, kind: "refund" } })) as ProviderRefund[];
				// A concurrent repeat of this key may have just refunded: that refund is the answer, not a second one.
				const repeated = refunds.find(r => r.key === key);
				if (repeated) return this.toEntity(ctx, repeated);
				if (refunds.reduce((sum, r) => sum + r.amount, 0) + amount > charge.amount)
					throw conflict("Refund exceeds the charge", "REFUND_EXCEEDS_CHARGE");
				return this.record<ProviderRefund>({
					key,
					kind: "refund",
					refundId: newId("re"),
					chargeId,
					amount,
					currency: charge.currency,
					status: "succeeded",
					createdAt: new Date(),
				});
			},
		},
	},

	methods: {
		/** Store a new record under its key; when the same key was just recorded by a concurrent call, answer with that one. */
		async record(doc) {
			return this.toEntity(null, (await this.insertOrGet(doc, { key: doc.key })).doc);
		},
	},
};

export default PaymentProviderService;
