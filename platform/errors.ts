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
 * Moleculer's errors about a call to a node (it timed out, the node refused it or left, the call was
 * skipped): they name that node and action in `data`, whichever node raised them.
 */
const CALL_ERRORS: ReadonlySet<string> = new Set([
	"REQUEST_TIMEOUT",
	"REQUEST_REJECTED",
	"REQUEST_SKIPPED",
	"SERVICE_NOT_AVAILABLE",
	"SERVICE_NOT_FOUND",
	"QUEUE_FULL",
]);

/**
 * Whether an error counts against the circuit breaker of the endpoint that raised it: a 5xx or
 * a timeout, the called node refusing the call for itself (it is stopping, or its own circuit
 * is open: `data.nodeID`), or any error that is not Moleculer's (a store's, a driver's, a bug),
 * whatever its code. Refusals and "no node for a service this one calls" do not count.
 *
 * Nor does a call error that a node passes on about a service it calls: carts answering "pricing.quote
 * timed out on pricing-1" is pricing's failure, not carts'. Moleculer's breaker skips an error raised
 * on a third node (`err.nodeID`), but this one was raised on carts, by carts' own Timeout middleware,
 * so the gateway counted it against the healthy carts node (issue 10). Such an error names the node
 * the failed call went to (`data.nodeID`): it counts only where it was raised locally (then it is
 * about the endpoint just called) or by that same node about itself. A skipped call never counts:
 * its budget went to the calls before it, which were counted where they failed.
 */
export function isEndpointFailure(err: unknown): boolean {
	if (!(err instanceof MoleculerError)) return true;
	const raisedOn = (err as { nodeID?: string }).nodeID;
	const about: string | undefined = err.data?.nodeID;
	if (CALL_ERRORS.has(err.type) && (err.type === "REQUEST_SKIPPED" || (raisedOn && about !== raisedOn))) return false;
	return err.code >= 500 || (err.type === "SERVICE_NOT_AVAILABLE" && !!about);
}
