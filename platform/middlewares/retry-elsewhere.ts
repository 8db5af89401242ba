/**
 * Broker middleware: a retried call goes to another node, and never outlives its caller's budget.
 *
 * Moleculer's Retry middleware calls `broker.call` again with the failed attempt's context. Two
 * things about that retry made a dead pricing replica fail the healthy carts service (issue 10):
 * - it is balanced again as if nothing had happened: with two replicas, one killed, each retry of a
 *   quote picks the dead one again half the time, and waits its whole timeout (1 s) there again,
 *   until that node's circuit opens or it is dropped for missing heartbeats (6 s and more). Its
 *   circuit may not open at all: the breaker counts a failure rate over a 10 s window that is still
 *   full of the node's successes from before it died.
 * - each attempt gets the call's whole timeout again (the attempt's context keeps `options.timeout`
 *   but not its start time), not what is left of the caller's: Context.call cuts a nested call's
 *   timeout to the caller's remaining budget, but only for the first attempt. Four attempts of 1 s
 *   ran past the gateway's 3 s for carts; the gateway then timed carts out, counted that against carts
 *   (rightly, from where it stands), and 3 of 5 such calls after a window reset opened the circuit of
 *   the only carts node: every `GET /cart` answered 503 for 5 s.
 *
 * The same amplification is what made replicas that had just joined time out: before this change, the
 * survivors of a churn test timed out dozens of calls while alive, under the retries of quotes to dead
 * nodes and the gateway's retries of carts on top. Their start is not slow enough for that: measured
 * under the same load, a new replica's first quote took 40–110 ms (warm: 10–20 ms), and it had
 * discovered the products node before it was announced. With this middleware, no live replica timed out.
 *
 * Moleculer has no option for either (a balancing strategy does not see the failed attempt), so this
 * middleware wraps `broker.call`: a retry is sent to an available node that has not failed this call
 * yet while there is one (then balanced as usual), and its timeout is cut to what is left of the
 * caller's budget less a margin for the caller's answer; none left, it is not made, and the caller
 * gets the last attempt's error (retryable: its own caller may try it again) before that caller gives
 * up. The first attempt and calls without a caller's budget (the gateway's own) go through untouched.
 */
import { Errors, type Context, type Middleware, type ServiceBroker } from "moleculer";

/** What this middleware keeps on a call's context, shared by its attempts (Moleculer copies `locals` by reference). */
interface RetryState {
	/** Date.now() by which the caller stops waiting, when the call has a caller with a budget. */
	deadline?: number;
	/** The call's own timeout per attempt, before the budget cut it. */
	perAttempt?: number;
	/** Nodes an attempt of this call failed on. */
	failed: Set<string>;
	/** What the last attempt failed with. */
	lastError?: Error;
}

const STATE = Symbol("retry-elsewhere");

/**
 * The retries of a nested call end this long before the caller's own deadline, so that the caller
 * can still answer with the dependency's error in time. Otherwise its caller times it out at the same
 * moment, and that timeout, raised by the caller's caller itself, counts against the healthy caller.
 */
export const ANSWER_MARGIN_MS = 100;

type CallOptions = {
	ctx?: Context & { _retryAttempts?: number; locals: Record<symbol, RetryState | undefined> };
	parentCtx?: Context & { startHrTime?: [number, number] };
	nodeID?: string;
	timeout?: number;
};
type Call = (actionName: string, params?: unknown, opts?: CallOptions) => Promise<unknown> & { ctx?: Context };

/** What is left of `ctx`'s time budget, in ms (Context.call's own reckoning), or undefined if it has none. */
function budgetLeft(ctx: CallOptions["parentCtx"]): number | undefined {
	const timeout = ctx?.options?.timeout;
	if (!ctx?.startHrTime || !timeout || timeout <= 0) return undefined;
	const [s, ns] = process.hrtime(ctx.startHrTime);
	return timeout - (s * 1e3 + ns / 1e6);
}

/** An available node for `actionName` that no attempt of this call failed on, picked at random. */
function anotherNode(broker: ServiceBroker, actionName: string, failed: Set<string>): string | undefined {
	const list = broker.registry.getActionEndpoints(actionName);
	const others = (list?.endpoints ?? []).filter(ep => ep.isAvailable && !failed.has(ep.id));
	if (!others.length) return undefined;
	return others[Math.floor(Math.random() * others.length)].id;
}

/** `broker.call` wrapped: a retry reaches the broker through its attempt's context. */
function wrapCall(next: Call): Call {
	return (actionName, params, opts = {}) => {
		const attempt = opts.ctx;
		const state = attempt?.locals[STATE];
		if (attempt && state && attempt._retryAttempts) {
			const broker = attempt.broker;
			// A retry by Moleculer's Retry middleware: `attempt.nodeID` is where the last attempt failed.
			if (attempt.nodeID) state.failed.add(attempt.nodeID);
			if (state.deadline !== undefined) {
				const left = state.deadline - Date.now();
				if (left <= 0) {
					// The caller gets the last attempt's error: a retryable one lets its own caller retry it.
					const skipped = new Errors.RequestSkippedError({ action: actionName, nodeID: broker.nodeID });
					return Promise.reject(state.lastError ?? skipped);
				}
				// The attempt's options are shared with the earlier attempts: give this one its own.
				attempt.options = { ...attempt.options, timeout: Math.min(state.perAttempt ?? left, left) };
			}
			const nodeID = anotherNode(broker, actionName, state.failed);
			return next(actionName, params, nodeID ? { ...opts, nodeID } : opts);
		}
		const left = budgetLeft(opts.parentCtx);
		const perAttempt = opts.timeout;
		const p = next(actionName, params, opts);
		const ctx = p.ctx as CallOptions["ctx"];
		if (ctx) {
			const deadline = left === undefined ? undefined : Date.now() + left - ANSWER_MARGIN_MS;
			ctx.locals[STATE] = { deadline, perAttempt, failed: new Set() };
		}
		return p;
	};
}

/**
 * Around each attempt, inside Retry (the middleware list puts this one right before it): keep what the
 * attempt failed with, timeouts included, for a retry that finds no budget left.
 */
function rememberFailure(handler: (ctx: Context) => Promise<unknown>) {
	return (ctx: Context) =>
		handler(ctx).catch((err: Error) => {
			// Looked up now: the first attempt's state is set once `broker.call` has created its context.
			const state = (ctx.locals as Record<symbol, RetryState | undefined>)[STATE];
			if (state) state.lastError = err;
			throw err;
		});
}

export const RetryElsewhere: Middleware = {
	name: "RetryElsewhere",
	// Moleculer's typings declare the `call` hook as returning a promise; it returns the wrapped call.
	call: wrapCall as unknown as Middleware["call"],
	localAction: rememberFailure,
	remoteAction: rememberFailure,
};
