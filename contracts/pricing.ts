/**
 * The pricing service's contract: what `pricing.quote` takes and answers, the
 * stored shape of a quote (orders and invoices keep one), and the call options its callers use.
 */
import type { ItemRequest } from "./items";

/** One priced line: the catalog's price, never the client's, in integer cents. */
export interface PricedLine {
	productId: string;
	sku: string;
	name: string;
	unitPrice: number;
	quantity: number;
	lineTotal: number;
}

export interface Quote {
	items: PricedLine[];
	subtotal: number;
	discount: number;
	discountCode?: string;
	shipping: number;
	tax: number;
	total: number;
	currency: string;
	country: string;
}

/** The stored shape of a quote's fields (the mongoose schema part), for the documents that keep one: orders and invoices. */
export const QUOTE_SCHEMA = {
	items: [
		{
			_id: false,
			productId: String,
			sku: String,
			name: String,
			unitPrice: Number,
			quantity: Number,
			lineTotal: Number,
		},
	],
	subtotal: Number,
	discount: Number,
	discountCode: String,
	shipping: Number,
	tax: Number,
	total: Number,
	currency: String,
	country: String,
};

/** The fields of a stored quote, for the API fields of the documents that keep one. */
export const QUOTE_FIELDS = Object.keys(QUOTE_SCHEMA) as Array<keyof typeof QUOTE_SCHEMA>;

/** What `pricing.quote` takes. */
export interface QuoteParams {
	items: ItemRequest[];
	country?: string;
	discountCode?: string;
}

/**
 * Call options for services that ask pricing for a quote: a quote takes milliseconds,
 * so a replica that does not answer within 1 s is given up and the call retried on
 * another one, well inside the caller's own time budget.
 */
export const QUOTE_CALL_OPTIONS = { timeout: 1_000 };

/** What `pricing.quote` answers: a quote, and the requested products the catalog does not have (left out of it). */
export type PricingQuote = Quote & { missing: string[] };

/** A quote's destination country and discount code, for the actions that take them. */
export const quoteOptionParams = {
	country: { type: "string", trim: true, uppercase: true, pattern: /^[A-Z]{2}$/, optional: true },
	discountCode: {
		type: "string",
		trim: true,
		uppercase: true,
		min: 1,
		max: 32,
		pattern: /^[A-Z0-9_-]+$/,
		optional: true,
	},
} as const;
