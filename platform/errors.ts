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

/** The statuses of moleshop's refusals (contracts/errors.ts), the validator's 422 among them. */
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
