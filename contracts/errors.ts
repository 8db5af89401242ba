/**
 * Every refusal a moleshop service answers: its type is one of `RefusalType`, and
 * each factory below builds it with its HTTP status. A refusal is a
 * non-retryable MoleculerClientError, so callers and the gateway tell it from a
 * failure (platform/errors.ts, isClientRefusal) and pass it on to the client as it is.
 */
import { Errors } from "moleculer";

/** Refusals of a request that is wrong in itself (400, 401, 403, 404, 413, 415). */
type RequestRefusal =
	| "BAD_REQUEST"
	| "MALFORMED_JSON"
	| "UNREADABLE_BODY"
	| "PAYLOAD_TOO_LARGE"
	| "UNAUTHORIZED"
	| "FORBIDDEN"
	| "NOT_FOUND";

/** 402: the payment was declined. */
type PaymentRefusal = "PAYMENT_FAILED";

/** 409: the request conflicts with the state of what it names. */
export type ConflictType =
	| "CONFLICT"
	| "OUT_OF_STOCK"
	| "CHECKOUT_ABANDONED"
	| "IDEMPOTENCY_KEY_IN_USE"
	| "ORDER_NOT_CANCELLABLE"
	| "EMAIL_TAKEN"
	| "SKU_TAKEN"
	| "REFUND_EXCEEDS_CHARGE"
	| "NO_DEAD_LETTER_QUEUE";

/** 422: the request is well formed, but moleshop cannot do it. */
export type UnprocessableType =
	| "VALIDATION_ERROR"
	| "IDEMPOTENCY_KEY_REUSED"
	| "EMPTY_CART"
	| "CART_FULL"
	| "QUANTITY_TOO_LARGE"
	| "ORDER_TOO_LARGE"
	| "MIXED_CURRENCIES"
	| "UNSUPPORTED_COUNTRY"
	| "UNKNOWN_DISCOUNT_CODE"
	| "DISCOUNT_NOT_YET_VALID"
	| "DISCOUNT_EXPIRED"
	| "DISCOUNT_MIN_SUBTOTAL"
	| "INVALID_RANGE"
	| "RANGE_TOO_LONG";

/** Every type of refusal moleshop answers (the `type` of its 4xx answers, besides moleculer-web's own). */
export type RefusalType = RequestRefusal | PaymentRefusal | ConflictType | UnprocessableType;

const { MoleculerClientError } = Errors;

/** A refusal with an explicit status, for the few that choose it (the gateway's body errors). */
export function refusal(status: 400 | 402 | 413 | 415, type: RefusalType, message: string, data?: unknown) {
	return new MoleculerClientError(message, status, type, data);
}

export function badRequest(message: string, data?: unknown) {
	return new MoleculerClientError(message, 400, "BAD_REQUEST", data);
}

export function unauthorized(message = "Authentication required") {
	return new MoleculerClientError(message, 401, "UNAUTHORIZED");
}

export function forbidden(message = "You are not allowed to do this") {
	return new MoleculerClientError(message, 403, "FORBIDDEN");
}

export function notFound(entity: string, id?: string) {
	return new MoleculerClientError(`${entity} not found`, 404, "NOT_FOUND", id ? { id } : undefined);
}

export function conflict(message: string, type: ConflictType = "CONFLICT", data?: unknown) {
	return new MoleculerClientError(message, 409, type, data);
}

export function unprocessable(message: string, type: UnprocessableType, data?: unknown) {
	return new MoleculerClientError(message, 422, type, data);
}
