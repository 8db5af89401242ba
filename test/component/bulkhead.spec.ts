/**
 * The password-hashing bulkhead (services/users: `concurrency: 4, maxQueueSize: 100`; README
 * "Bulkhead"): argon2 is held at a gate so that sign-ups and logins pile up, and the hashes in
 * progress are counted. At most 4 hash at once, 100 wait, the rest are refused with QueueIsFullError.
 */
import argon2 from "argon2";
import { Errors, type ServiceBroker } from "moleculer";
import { TestCluster } from "../helpers/brokers";
import { waitFor } from "../helpers/process";
import UsersService from "../../services/users/users.service";

const CONCURRENCY = 4;
const QUEUE = 100;
const EXCESS = 6;

/** Stands in for argon2.hash and argon2.verify: each call waits until the gate opens, counted while it waits. */
class HashGate {
	inFlight = 0;
	mostAtOnce = 0;
	calls = 0;
	private opened = false;
	private readonly waiting: Array<() => void> = [];

	hold<T>(answer: T) {
		return async (): Promise<T> => {
			this.calls++;
			this.mostAtOnce = Math.max(this.mostAtOnce, ++this.inFlight);
			if (!this.opened) await new Promise<void>(resolve => this.waiting.push(resolve));
			this.inFlight--;
			return answer;
		};
	}

	open() {
		this.opened = true;
		this.waiting.splice(0).forEach(resolve => resolve());
	}
}

const cluster = new TestCluster(null);
let broker: ServiceBroker;
let realHash: string;
let gate: HashGate;
let unique = 0;

beforeAll(async () => {
	// Metrics on: the test reads the bulkhead from them (they are off unless METRICS_PORT is set).
	broker = await cluster.start("bulkhead", [UsersService], undefined, { metrics: { enabled: true } });
	realHash = await argon2.hash("what every held sign-up stores"); // before argon2 is replaced
});
beforeEach(() => {
	gate = new HashGate();
	jest.spyOn(argon2, "hash").mockImplementation(gate.hold(realHash) as any);
	jest.spyOn(argon2, "verify").mockImplementation(gate.hold(false) as any);
});
afterEach(() => {
	gate.open(); // nothing stays held past a test
	jest.restoreAllMocks();
});
afterAll(() => cluster.stop());

const register = () =>
	broker.call("users.register", {
		name: "Queued",
		email: `queued-${++unique}@moleshop.test`,
		password: "correct horse battery",
	});
const login = () => broker.call("users.login", { email: `nobody-${++unique}@moleshop.test`, password: "whatever" });

/** What Moleculer's bulkhead of a users action holds now, from its own metrics: calls running and queued. */
function bulkheadOf(action: "users.register" | "users.login") {
	const value = (metric: string) =>
		(broker.metrics.getMetric(metric)?.get({ action, service: "users" }) as { value?: number } | null)?.value ?? 0;
	return {
		running: value("moleculer.request.bulkhead.inflight"),
		queued: value("moleculer.request.bulkhead.queue.size"),
	};
}

/**
 * Fire `count` calls at once; once `refused` of them were refused, 4 hash per action and each action's queue
 * is full (every call has been let in, queued or refused: nothing more can reach argon2) — or more than that
 * hash (no bulkhead) — all of them.
 */
async function pileUp(
	call: () => Promise<unknown>,
	count: number,
	refused: number,
	actions: Array<"users.register" | "users.login">,
) {
	const results = Array.from({ length: count }, () =>
		call().then(
			value => ({ ok: true as const, value }),
			error => ({ ok: false as const, error }),
		),
	);
	const settled: Array<{ ok: boolean; error?: any }> = [];
	results.forEach(p => p.then(r => settled.push(r)));
	const most = CONCURRENCY * actions.length;
	await waitFor(
		async () =>
			gate.inFlight > most ||
			(settled.length >= refused &&
				gate.inFlight === most &&
				actions.every(action => bulkheadOf(action).queued === QUEUE)),
		10_000,
		"the queue to fill",
	);
	return { results, settled };
}

it("hashes at most 4 sign-ups at once, queues 100 and refuses the rest with QueueIsFullError", async () => {
	const { results, settled } = await pileUp(register, CONCURRENCY + QUEUE + EXCESS, EXCESS, ["users.register"]);
	expect(gate.mostAtOnce).toBe(CONCURRENCY);
	expect(settled).toHaveLength(EXCESS); // the queued ones wait
	for (const { error } of settled) {
		expect(error).toBeInstanceOf(Errors.QueueIsFullError);
		expect(error).toMatchObject({ code: 429, type: "QUEUE_FULL" });
	}
	gate.open();
	const all = await Promise.all(results);
	expect(all.filter(r => r.ok)).toHaveLength(CONCURRENCY + QUEUE); // the queue drains: every queued sign-up is made
	expect(gate.calls).toBe(CONCURRENCY + QUEUE);
	expect(gate.mostAtOnce).toBe(CONCURRENCY);
});

it("hashes at most 4 logins at once, queues 100 and refuses the rest with QueueIsFullError", async () => {
	// A login is retried on a full queue (0.1 + 0.2 + 0.4 s), then refused.
	const { results } = await pileUp(login, CONCURRENCY + QUEUE + EXCESS, EXCESS, ["users.login"]);
	expect(gate.mostAtOnce).toBe(CONCURRENCY);
	gate.open();
	const errors = (await Promise.all(results)).map(r => (r.ok ? "answered" : r.error.type));
	expect(errors.filter(type => type === "QUEUE_FULL")).toHaveLength(EXCESS);
	expect(errors.filter(type => type === "UNAUTHORIZED")).toHaveLength(CONCURRENCY + QUEUE); // verified, wrong
	expect(gate.mostAtOnce).toBe(CONCURRENCY);
});

// Moleculer's bulkhead is per action: sign-up and login each hash at most 4 at once, with a queue of 100 each.
it("hashes at most 4 sign-ups and 4 logins at once on a node, each with its own queue", async () => {
	let n = 0;
	const { results } = await pileUp(() => (n++ % 2 ? login() : register()), 2 * (CONCURRENCY + QUEUE), 0, [
		"users.register",
		"users.login",
	]);
	expect(gate.mostAtOnce).toBe(2 * CONCURRENCY);
	gate.open();
	await Promise.all(results);
});
