/**
 * fastest-validator rules any service may use: ids and pages. Every action also sets
 * `$$strict: true`, so unknown fields are refused rather than ignored.
 */

/** An entity id as it appears in URLs: a short token, never an object. */
export const idParam = { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9_-]+$/ } as const;

/** An ISO 4217 currency code, such as "USD". */
export const currencyParam = { type: "string", pattern: /^[A-Z]{3}$/ } as const;

/** Which page of a list, and how long a page is. */
export interface PageRequest {
	page: number;
	pageSize: number;
}

/** Pagination from a query string (values arrive as strings). */
export const pageParams = {
	page: { type: "number", integer: true, min: 1, max: 100000, optional: true, default: 1, convert: true },
	pageSize: { type: "number", integer: true, min: 1, max: 100, optional: true, default: 20, convert: true },
} as const;
