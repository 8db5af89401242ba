/**
 * moleshop's one error style: every client-facing failure is a
 * `MoleculerClientError` with an HTTP status as its code, a stable
 * SCREAMING_CASE type and, where useful, data that says what failed.
 * The gateway turns them into JSON responses as they are.
 *
 * A refusal is told from a failure by that type, never by a numeric code
 * alone: stores and drivers raise errors with codes of their own (MongoDB's
 * 11000, or 449 and 462, which look like HTTP statuses and mean nothing to HTTP).
 */
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerError } = Errors;

/** The statuses of moleshop's refusals: the helpers below, 402 for a failed payment, the validator's 422, the gateway's 413 and 415. */
export const CLIENT_STATUSES: ReadonlySet<number> = new Set([400, 401, 402, 403, 404, 409, 413, 415, 422]);

/**
 * Whether a service refused a request on purpose (bad input, not found, a conflict), as opposed
 * to failing: a non-retryable MoleculerClientError (Moleculer keeps the class across nodes)
 * with one of moleshop's statuses.
 */
export function isClientRefusal(err: unknown): err is Errors.MoleculerClientError {
	return err instanceof MoleculerClientError && !err.retryable && CLIENT_STATUSES.has(err.code);
}

/** Whether a service refused a request because what it names does not exist (404). */
export function isNotFound(err: unknown): boolean {
	return isClientRefusal(err) && err.code === 404;
}

/**
 * Whether an error counts against the circuit breaker of the endpoint that raised it: a 5xx or
 * a timeout, the called node refusing the call for itself (it is stopping, or its own circuit
 * is open: `data.nodeID`), or any error that is not Moleculer's (a store's, a driver's, a bug),
 * whatever its code. Refusals and "no node for a service this one calls" do not count.
 */
export function isEndpointFailure(err: unknown): boolean {
	if (!(err instanceof MoleculerError)) return true;
	return err.code >= 500 || (err.type === "SERVICE_NOT_AVAILABLE" && !!err.data?.nodeID);
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

export function conflict(message: string, type = "CONFLICT", data?: unknown) {
	return new MoleculerClientError(message, 409, type, data);
}

export function unprocessable(message: string, type: string, data?: unknown) {
	return new MoleculerClientError(message, 422, type, data);
}
