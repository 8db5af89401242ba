/**
 * The call a line of code runs in. Moleculer has no logger per context and no "current context", so
 * this middleware runs every local action, event handler and channel handler inside an
 * AsyncLocalStorage scope holding that call's context; the one scope serves two readers:
 * - the loggers (platform/logging.ts) add the request id (which is also the trace id of Moleculer's
 *   spans) and the span id to each line;
 * - tracing (platform/tracing.ts) stamps the events an action writes with its trace, and makes the
 *   calls a handler makes with `this.broker.call` children of its span.
 * It must be the outermost middleware (last in the list), so the lines of Retry, CircuitBreaker and the
 * others are in the scope too.
 *
 * The scope holds the Context object itself: nothing is allocated per call beyond what
 * AsyncLocalStorage.run needs.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context, Middleware } from "moleculer";

/** What a log line and a child span need of the call they are in (a Moleculer Context has all three). */
export interface RequestIds {
	/** The request id, which is the trace id. */
	requestID?: string | null;
	/** The call's own id, which is its span id. */
	id?: string | null;
	/** Whether the call is traced (sampled). */
	tracing?: boolean | null;
}

const scope = new AsyncLocalStorage<RequestIds>();

/** The ids of the call running now, if any. */
export function currentRequest(): RequestIds | undefined {
	return scope.getStore();
}

/** Run `work` in the scope of `ids` (tests and code outside a Moleculer call). */
export function inRequest<T>(ids: RequestIds, work: () => T): T {
	return scope.run(ids, work);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Moleculer wraps handlers of any signature
type Handler = (...args: any[]) => any;

/**
 * The request a channel delivery belongs to: the context (with `context: true`), the trace an event's
 * envelope carries from the action that wrote it (contracts/events.ts), or the `$requestID` header
 * @moleculer/channels writes when a message is sent in a context.
 */
function channelIds(args: unknown[]): RequestIds | undefined {
	const first = args[0] as (Partial<Context> & { trace?: { requestID?: string; parentID?: string } }) | undefined;
	if (first && typeof first === "object") {
		if (typeof first.requestID === "string") return first as RequestIds;
		if (first.trace?.requestID) return { requestID: first.trace.requestID, id: first.trace.parentID ?? null };
	}
	const raw = args[1] as { headers?: { get?(key: string): string } } | undefined;
	const requestID = raw?.headers?.get?.("$requestID");
	return requestID ? { requestID, id: raw?.headers?.get?.("$parentID") || null } : undefined;
}

export const RequestScope: Middleware = {
	name: "RequestScope",
	localAction(next: Handler) {
		return (ctx: Context) => scope.run(ctx, next, ctx);
	},
	localEvent(next: Handler) {
		return (ctx: Context) => scope.run(ctx, next, ctx);
	},
	// @moleculer/channels' hook: a handler gets (payload, raw) or, with `context: true`, (ctx, raw).
	localChannel(next: Handler) {
		return (...args: unknown[]) => {
			const ids = channelIds(args);
			return ids ? scope.run(ids, next, ...args) : next(...args);
		};
	},
} as Middleware;
