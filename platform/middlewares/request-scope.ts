/**
 * The request a log line belongs to. Moleculer has no logger per context, so this
 * middleware runs every local action, event handler and channel handler inside an
 * AsyncLocalStorage scope holding that call's context; the loggers (platform/logging.ts)
 * read it for each line and add the request id (which is also the trace id of Moleculer's
 * spans) and the span id. It must be the outermost middleware (last in the list), so the
 * lines of Retry, CircuitBreaker and the others are in the scope too.
 *
 * The scope holds the Context object itself: nothing is allocated per call beyond what
 * AsyncLocalStorage.run needs.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context, Middleware } from "moleculer";

/** What a log line needs of the call it is logged in. */
export interface RequestIds {
	requestID?: string | null;
	id?: string | null;
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

/** A JetStream message's `$requestID` header, as @moleculer/channels writes it. */
function channelIds(args: unknown[]): RequestIds | undefined {
	const first = args[0] as Partial<Context> | undefined;
	if (first && typeof first === "object" && typeof first.requestID === "string") return first as RequestIds;
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
