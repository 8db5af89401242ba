/**
 * Quotes priced lines: discount, shipping and tax, in integer cents.
 *
 * Pure and deterministic: the same lines, rules and moment give the same
 * quote on every node. Rounding is half up, done in integers.
 */
import type { UnprocessableType } from "../../contracts/errors";
import type { DiscountCodeSetting } from "../../platform/config";
import type { PricedLine, Quote } from "../../contracts/pricing";

/** A discount code, as DISCOUNT_CODES defines it (the configuration checks its shape). */
export type DiscountCode = DiscountCodeSetting;

export interface CountryRule {
	/** Shipping in cents. */
	shipping: number;
	/** Tax rate in basis points (1900 = 19 %), applied to the discounted subtotal plus shipping. */
	taxRate: number;
}

export interface PricingRules {
	countries: Record<string, CountryRule>;
	/** Subtotal after discount, in cents, from which shipping is free. */
	freeShippingFrom: number;
	discountCodes: DiscountCode[];
}

/** Why a quote cannot be made: a stable type and a sentence for the customer. */
export class QuoteError extends Error {
	constructor(
		readonly type: UnprocessableType,
		message: string,
	) {
		super(message);
	}
}

/** `amount * numerator / denominator`, rounded half up, in integers. */
export function proportion(amount: number, numerator: number, denominator: number): number {
	return Math.floor((amount * numerator * 2 + denominator) / (denominator * 2));
}

function findDiscount(rules: PricingRules, code: string, subtotal: number, at: Date): DiscountCode {
	const discount = rules.discountCodes.find(d => d.code === code.toUpperCase());
	if (!discount) throw new QuoteError("UNKNOWN_DISCOUNT_CODE", `The discount code ${code} does not exist`);
	if (discount.validFrom && at < new Date(discount.validFrom))
		throw new QuoteError(
			"DISCOUNT_NOT_YET_VALID",
			`The discount code ${discount.code} is valid from ${discount.validFrom}`,
		);
	if (discount.validUntil && at >= new Date(discount.validUntil))
		throw new QuoteError(
			"DISCOUNT_EXPIRED",
			`The discount code ${discount.code} expired on ${discount.validUntil}`,
		);
	if (discount.minSubtotal && subtotal < discount.minSubtotal) {
		throw new QuoteError(
			"DISCOUNT_MIN_SUBTOTAL",
			`The discount code ${discount.code} needs a subtotal of at least ${discount.minSubtotal} cents`,
		);
	}
	return discount;
}

/** Quote `items` for delivery to `country`, with an optional discount code, at the moment `at`. */
export function quote(
	items: PricedLine[],
	currency: string,
	opts: { country: string; discountCode?: string; at: Date },
	rules: PricingRules,
): Quote {
	const rule = rules.countries[opts.country];
	if (!rule)
		throw new QuoteError(
			"UNSUPPORTED_COUNTRY",
			`We do not ship to ${opts.country}; we ship to ${Object.keys(rules.countries).join(", ")}`,
		);

	const subtotal = items.reduce((sum, line) => sum + line.lineTotal, 0);
	let discount = 0;
	let discountCode: string | undefined;
	if (opts.discountCode) {
		const code = findDiscount(rules, opts.discountCode, subtotal, opts.at);
		discount = Math.min(subtotal, code.kind === "percent" ? proportion(subtotal, code.value, 100) : code.value);
		discountCode = code.code;
	}
	const discounted = subtotal - discount;
	const shipping = items.length === 0 || discounted >= rules.freeShippingFrom ? 0 : rule.shipping;
	const tax = proportion(discounted + shipping, rule.taxRate, 10_000);
	return {
		items,
		subtotal,
		discount,
		...(discountCode && { discountCode }),
		shipping,
		tax,
		total: discounted + shipping + tax,
		currency,
		country: opts.country,
	};
}

/** Where moleshop ships, what it costs and the tax rate there. */
export const DEFAULT_COUNTRIES: Record<string, CountryRule> = {
	US: { shipping: 499, taxRate: 0 },
	CA: { shipping: 999, taxRate: 500 },
	GB: { shipping: 899, taxRate: 2000 },
	DE: { shipping: 799, taxRate: 1900 },
	FR: { shipping: 799, taxRate: 2000 },
	NL: { shipping: 799, taxRate: 2100 },
	ES: { shipping: 899, taxRate: 2100 },
	IT: { shipping: 899, taxRate: 2200 },
};

/** The demo discount codes, used unless DISCOUNT_CODES says otherwise. */
export const DEFAULT_DISCOUNT_CODES: DiscountCode[] = [
	{ code: "WELCOME10", kind: "percent", value: 10 },
	{ code: "SAVE5", kind: "fixed", value: 500, minSubtotal: 2500 },
	{
		code: "BLACKFRIDAY25",
		kind: "percent",
		value: 25,
		validFrom: "2026-11-27T00:00:00Z",
		validUntil: "2026-12-01T00:00:00Z",
	},
];
