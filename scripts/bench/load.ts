/**
 * Load for the benchmark, with autocannon: at a fixed concurrency (closed loop: each connection
 * sends its next request when the last is answered), or at a constant arrival rate, and the knee:
 * the highest rate whose p99 stays under the bound.
 *
 * The constant rate is paced per connection. autocannon's own `overallRate` / `connectionRate`
 * lets each connection send its quota of the second as fast as it can at the start of every
 * second and then wait (and all connections start their second together): that is a burst at full
 * concurrency every second, whose p99 is the fixed-concurrency p99 whatever the rate. Here each
 * connection sends one request every `connections / rate` seconds from a random phase (through
 * autocannon's `setupClient` hook), so requests arrive evenly; a connection whose answer comes late
 * sends at once and the run falls short of its rate, which fails the step. Enough connections are
 * opened that each has twice the latency bound between two of its requests.
 */
import autocannon from "autocannon";
import { usage, type Proc, type Usage } from "./processes";

/** CPU and memory of one process over a run. */
export interface ProcessMeasure {
	label: string;
	/** CPU time the process spent per request of the run, in ms (= cores it needs per 1,000 requests/s). */
	cpuMsPerRequest: number | null;
	rssMb: number | null;
}

export interface Measure {
	/** Requests answered per second. */
	rps: number;
	p50: number;
	p99: number;
	requests: number;
	/** Non-2xx answers, connection errors and timeouts. */
	errors: number;
	statusCodes: Record<string, number>;
	/** Sum over the measured processes. */
	cpuMsPerRequest: number | null;
	rssMb: number | null;
	processes: ProcessMeasure[];
}

export interface LoadOptions {
	url: string;
	/** The requests each connection cycles through. */
	requests: autocannon.Request[];
	seconds: number;
	connections: number;
	/** Requests per second over all connections (paced); none: as fast as answers come. */
	rate?: number;
	/** Stop after this many requests instead of after `seconds`. */
	amount?: number;
	/** The processes whose CPU time and RSS are measured. */
	procs: Proc[];
}

/**
 * How many connections a paced run opens: each waits 100 ms between two requests (twice the p99
 * bound), so a connection is free when its next request is due unless that bound is broken; more
 * would only add connection set-up to the run.
 */
export const pacedConnections = (rate: number, floor: number) => Math.min(800, Math.max(floor, Math.ceil(rate / 10)));
/** A paced connection sends its first request after this (the connection is set up by then, not timed with it). */
const PACED_START_MS = 250;

/** The private method a connection sends with (autocannon 9); checked, so a change of it fails loudly. */
type Sender = { _doRequest: () => void; destroyed: boolean };

function pace(ratePerConnection: number) {
	const interval = 1_000 / ratePerConnection;
	return (client: autocannon.Client) => {
		const sender = client as unknown as Sender;
		const send = sender._doRequest;
		if (typeof send !== "function") throw new Error("autocannon's client has no _doRequest: update the pacing");
		let due = performance.now() + PACED_START_MS + Math.random() * interval;
		sender._doRequest = function () {
			const now = performance.now();
			const wait = due - now;
			due = Math.max(due, now) + interval;
			if (wait <= 1) return send.call(sender);
			setTimeout(() => {
				if (!sender.destroyed) send.call(sender);
			}, wait);
		};
	};
}

/** Below this share of one core (all measured processes together) a target counts as idle. */
const IDLE_CORES = 0.15;
const SETTLE_SAMPLE_MS = 500;
const SETTLE_MAX_MS = 10_000;

/**
 * Wait until the processes are idle — what the previous run left them to do (events still being
 * handled, outboxes relayed) is done — so that it is not measured as this run's; at most SETTLE_MAX_MS.
 */
export async function settle(procs: Proc[]): Promise<void> {
	const deadline = Date.now() + SETTLE_MAX_MS;
	const cpu = () => procs.reduce((sum, proc) => sum + (usage(proc.pid)?.cpuSeconds ?? 0), 0);
	for (;;) {
		const before = cpu();
		await new Promise(resolve => setTimeout(resolve, SETTLE_SAMPLE_MS));
		if ((cpu() - before) / (SETTLE_SAMPLE_MS / 1000) < IDLE_CORES || Date.now() > deadline) return;
	}
}

/** Run a load, once the processes are idle, and measure them meanwhile. */
export async function runLoad(opts: LoadOptions): Promise<Measure> {
	await settle(opts.procs);
	const before = opts.procs.map(proc => usage(proc.pid));
	const result = await autocannon({
		url: opts.url,
		connections: opts.connections,
		pipelining: 1,
		timeout: 10,
		...(opts.amount ? { amount: opts.amount } : { duration: opts.seconds }),
		requests: opts.requests,
		...(opts.rate && { setupClient: pace(opts.rate / opts.connections) }),
	});
	const after = opts.procs.map(proc => usage(proc.pid));
	const requests = result.requests.total;
	const processes = opts.procs.map((proc, i) => measureProcess(proc.label, before[i], after[i], requests));
	const cpu = processes.map(p => p.cpuMsPerRequest);
	const rss = processes.map(p => p.rssMb);
	const statusCodes = Object.fromEntries(
		Object.entries(result.statusCodeStats ?? {}).map(([code, stat]) => [code, stat?.count ?? 0]),
	);
	return {
		rps: Math.round(requests / Math.max(result.duration, 0.001)),
		p50: result.latency.p50,
		p99: result.latency.p99,
		requests,
		errors: result.non2xx + result.errors + result.timeouts,
		statusCodes,
		cpuMsPerRequest: cpu.every(c => c != null) ? cpu.reduce((a, b) => a! + b!, 0) : null,
		rssMb: rss.every(r => r != null) ? rss.reduce((a, b) => a! + b!, 0) : null,
		processes,
	};
}

function measureProcess(label: string, before: Usage | null, after: Usage | null, requests: number): ProcessMeasure {
	return {
		label,
		cpuMsPerRequest:
			before && after && requests ? ((after.cpuSeconds - before.cpuSeconds) * 1000) / requests : null,
		rssMb: after?.rssMb ?? null,
	};
}

export interface KneeStep {
	rate: number;
	/** Requests per second over the time the connections were sending (after PACED_START_MS). */
	achieved: number;
	connections: number;
	measure: Measure;
	ok: boolean;
}

export interface Knee {
	/** The highest rate tried whose p99 stayed under the bound (0 when none did). */
	rps: number;
	/** The first step: half the fixed-concurrency maximum. */
	atHalf: KneeStep;
	steps: KneeStep[];
}

/**
 * Bisect the arrival rate between 0 and `max` (the fixed-concurrency rate), starting at half of it.
 * A step passes when its p99 is under `p99BoundMs`, it kept 95% of its rate and under 1% failed.
 */
export async function findKnee(
	opts: Omit<LoadOptions, "rate" | "connections" | "amount">,
	max: number,
	steps: number,
	p99BoundMs: number,
	connectionFloor: number,
): Promise<Knee> {
	let low = 0;
	let high = max;
	const tried: KneeStep[] = [];
	for (let i = 0; i < steps && max > 0; i++) {
		const rate = Math.max(1, Math.round((low + high) / 2));
		const connections = Math.min(pacedConnections(rate, connectionFloor), rate);
		const measure = await runLoad({ ...opts, rate, connections });
		const achieved = Math.round(measure.requests / Math.max(0.5, opts.seconds - PACED_START_MS / 1000));
		const ok = measure.p99 < p99BoundMs && achieved >= 0.95 * rate && measure.errors <= 0.01 * measure.requests;
		tried.push({ rate, achieved, connections, measure, ok });
		if (ok) low = rate;
		else high = rate;
	}
	return { rps: low, atHalf: tried[0], steps: tried };
}
