/**
 * Fault injection for the resilience tests: a broker middleware that sits right around each
 * action's handler (first in the middleware list, so inside Bulkhead, Timeout, CircuitBreaker and
 * Retry), and counts, holds, delays or fails the runs of the actions a test names. What it counts
 * is how often a handler was entered, and how many ran at once.
 */
import { Errors, type Middleware, type ServiceBroker } from "moleculer";

export interface Run {
	/** Date.now() when the run entered the handler. */
	startedAt: number;
	/** The time budget the run was given (`ctx.options.timeout`, as the Timeout middleware set it). */
	timeout: number | null | undefined;
	settledAt?: number;
	error?: any;
}

/** A gate that runs wait at until it is opened. */
class Gate {
	readonly opened: Promise<void>;
	open!: () => void;
	constructor() {
		this.opened = new Promise(resolve => (this.open = resolve));
	}
}

/** A retryable error that does not count against a circuit (a full queue, as README lists it). */
export const retryable = (action: string, nodeID = "injected") => new Errors.QueueIsFullError({ action, nodeID });

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

export class Faults {
	private readonly runList = new Map<string, Run[]>();
	private readonly inFlight = new Map<string, number>();
	private readonly peak = new Map<string, number>();
	private readonly failures = new Map<string, { left: number; error: () => Error }>();
	private readonly delays = new Map<string, number>();
	private readonly gates = new Map<string, Gate>();

	/** Put it first in the broker's middleware list: the first one wraps the handler itself. */
	readonly middleware: Middleware = {
		name: "Faults",
		localAction: (handler: (ctx: any) => Promise<any>, action: any) => {
			const name: string = action.name;
			return async (ctx: any) => {
				const run: Run = { startedAt: Date.now(), timeout: ctx.options.timeout };
				this.runsOf(name).push(run);
				const now = (this.inFlight.get(name) ?? 0) + 1;
				this.inFlight.set(name, now);
				this.peak.set(name, Math.max(now, this.peak.get(name) ?? 0));
				try {
					const failure = this.failures.get(name);
					if (failure && failure.left > 0) {
						failure.left--;
						throw failure.error();
					}
					const delay = this.delays.get(name);
					if (delay) await sleep(delay);
					const gate = this.gates.get(name);
					if (gate) await gate.opened;
					return await handler(ctx);
				} catch (err) {
					run.error = err;
					throw err;
				} finally {
					run.settledAt = Date.now();
					this.inFlight.set(name, this.inFlight.get(name)! - 1);
				}
			};
		},
	};

	/** The next `times` runs of `action` throw `error()` instead of running the handler. */
	failFirst(action: string, times: number, error: () => Error = () => retryable(action)) {
		this.failures.set(action, { left: times, error });
	}

	/** Every run of `action` waits `ms` inside its time budget before its handler. */
	delay(action: string, ms: number) {
		this.delays.set(action, ms);
	}

	/** Runs of `action` wait, inside their time budget, until `release`. */
	hold(action: string) {
		if (!this.gates.has(action)) this.gates.set(action, new Gate());
	}

	/** Let the held runs of `action` (of every action without one) go on, and hold no more. */
	release(action?: string) {
		for (const [name, gate] of this.gates) {
			if (action && name !== action) continue;
			gate.open();
			this.gates.delete(name);
		}
	}

	/** Forget every rule and every count, and let held runs go. */
	reset() {
		this.release();
		this.failures.clear();
		this.delays.clear();
		this.runList.clear();
		this.peak.clear();
	}

	runsOf(action: string): Run[] {
		if (!this.runList.has(action)) this.runList.set(action, []);
		return this.runList.get(action)!;
	}

	runs(action: string): number {
		return this.runsOf(action).length;
	}

	/** Runs of `action` in its handler right now. */
	active(action: string): number {
		return this.inFlight.get(action) ?? 0;
	}

	/** The most runs of `action` that were in its handler at once. */
	mostAtOnce(action: string): number {
		return this.peak.get(action) ?? 0;
	}
}

/**
 * Make `broker` a node that does not answer `action`: its requests arrive and get no answer, as
 * from a frozen node or one cut off mid-call (a held handler would not do: the node's own Timeout
 * middleware would answer with a timeout error). Other requests, heartbeats and events go on.
 */
export function swallowRequests(broker: ServiceBroker, action: string) {
	const transit = broker.transit as any;
	const handle = transit.requestHandler;
	const swallowed = { count: 0, restore: () => (transit.requestHandler = handle) };
	transit.requestHandler = function (payload: { action: string }) {
		if (payload.action !== action) return handle.call(this, payload);
		swallowed.count++;
		return Promise.resolve();
	};
	return swallowed;
}
