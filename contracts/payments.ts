/**
 * The payment provider, as payments sees it: an interface in the shape of
 * real card processors (charges and refunds made idempotent by a key the
 * caller chooses, and a lookup of a charge by that key), and the one
 * implementation this project ships: the simulated provider service
 * (services/payment-provider/), reached over the broker.
 *
 * Card numbers never enter moleshop: checkout takes a payment-method token
 * (`pm_...`) that the provider issued to the customer's browser.
 */
import type { ServiceBroker } from "moleculer";
import { config } from "../platform/config";

/** The longest payments.charge can take: a first attempt, a lookup and one more attempt, plus latency. */
export const CHARGE_TIMEOUT_MS = 4 * config.payments.providerTimeoutMs + 2 * config.payments.providerLatencyMs + 1_000;

/** A payment-method token issued by the provider (`pm_...`); never a card number. */
export const paymentMethodParam = {
	type: "string",
	pattern: /^pm_[A-Za-z0-9_]{1,64}$/,
	messages: {
		stringPattern:
			"The '{field}' field must be a payment-method token such as 'pm_card_visa', never a card number.",
	},
} as const;

/** The largest single charge, in cents (one million in major units); larger orders are refused at checkout. */
export const MAX_CHARGE = 100_000_000;

/** Test payment methods of the simulated provider (named like Stripe's test tokens). */
export const TEST_PAYMENT_METHODS = {
	/** Always succeeds. */
	visa: "pm_card_visa",
	/** Always declined (card_declined). */
	declined: "pm_card_chargeDeclined",
	/** Fails with a processing error at the provider (processing_error). */
	processingError: "pm_card_chargeDeclinedProcessingError",
	/** Succeeds at the provider, but the answer comes only after payments stopped waiting. */
	timeout: "pm_card_timeout",
} as const;

export interface CardDetails {
	brand: string;
	last4: string;
}

export interface ProviderCharge {
	key: string;
	chargeId: string;
	status: "succeeded" | "failed";
	amount: number;
	currency: string;
	/** Why it failed: "card_declined", "processing_error", "invalid_payment_method". */
	failureCode?: string;
	failureMessage?: string;
	card?: CardDetails;
}

export interface ProviderRefund {
	key: string;
	refundId: string;
	chargeId: string;
	amount: number;
	currency: string;
	status: "succeeded";
}

export interface ChargeRequest {
	/** Idempotency key: the same key always answers with the first charge made under it. */
	key: string;
	amount: number;
	currency: string;
	paymentMethod: string;
}

export interface RefundRequest {
	key: string;
	chargeId: string;
	amount: number;
}

export interface PaymentProvider {
	/** Charge a payment method. Throws when the answer did not come (a timeout): the charge may or may not exist. */
	charge(request: ChargeRequest): Promise<ProviderCharge>;
	/** The charge made under `key`, or null if the provider has none. */
	findCharge(key: string): Promise<ProviderCharge | null>;
	/** Refund (part of) a charge; idempotent by `key`. */
	refund(request: RefundRequest): Promise<ProviderRefund>;
}

/** The simulated provider service of this cluster, called with `timeoutMs` per request and no blind retries. */
export function simulatedProvider(broker: ServiceBroker, timeoutMs: number): PaymentProvider {
	const opts = { timeout: timeoutMs, retries: 0 };
	return {
		charge: request => broker.call("payment-provider.charge", request, opts),
		findCharge: key => broker.call("payment-provider.findCharge", { key }, opts),
		refund: request => broker.call("payment-provider.refund", request, opts),
	};
}
