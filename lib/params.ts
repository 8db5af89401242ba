/**
 * fastest-validator rules shared by several services. Every action also sets
 * `$$strict: true`, so unknown fields are refused rather than ignored.
 */

/** An entity id as it appears in URLs: a short token, never an object. */
export const idParam = { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9_-]+$/ } as const;

export const MAX_QUANTITY = 1000;
export const MAX_LINES = 50;

/** How many units of one product: a whole number from 1 to MAX_QUANTITY. */
export const quantityParam = { type: "number", integer: true, positive: true, max: MAX_QUANTITY } as const;

/** A list of `{ productId, quantity }` lines. */
export const itemsParam = {
	type: "array",
	min: 1,
	max: MAX_LINES,
	items: {
		type: "object",
		strict: true,
		props: { productId: idParam, quantity: quantityParam },
	},
} as const;

/** Pagination from a query string (values arrive as strings). */
export const pageParams = {
	page: { type: "number", integer: true, min: 1, max: 100000, optional: true, default: 1, convert: true },
	pageSize: { type: "number", integer: true, min: 1, max: 100, optional: true, default: 20, convert: true },
} as const;

/** A quote's destination country and discount code, for the actions that take them. */
export const quoteOptionParams = {
	country: { type: "string", trim: true, uppercase: true, pattern: /^[A-Z]{2}$/, optional: true },
	discountCode: { type: "string", trim: true, uppercase: true, min: 1, max: 32, pattern: /^[A-Z0-9_-]+$/, optional: true },
} as const;

/** A payment-method token issued by the provider (`pm_...`); never a card number. */
export const paymentMethodParam = {
	type: "string",
	pattern: /^pm_[A-Za-z0-9_]{1,64}$/,
	messages: { stringPattern: "The '{field}' field must be a payment-method token such as 'pm_card_visa', never a card number." },
} as const;
