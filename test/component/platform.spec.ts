/** Platform pieces on a broker: the health endpoint, and refusals told from failures (also across nodes). */
import { Errors, ServiceBroker } from "moleculer";
import { mongo } from "mongoose";
import { isClientRefusal, isEndpointFailure, isNotFound } from "../../platform/errors";
import { notFound } from "../../contracts/errors";
import { HealthEndpoint } from "../../platform/middlewares/health-endpoint";
import { freePort, waitFor } from "../helpers/process";
import brokerConfig from "../../moleculer.config";
import { CONSUMER } from "../../platform/channels";
import { TestCluster } from "../helpers/brokers";

describe("HealthEndpoint", () => {
	it("answers /health while the broker runs, and stops with it", async () => {
		const port = await freePort();
		const broker = new ServiceBroker({ logger: false, middlewares: [HealthEndpoint(port)] });
		await broker.start();
		const res = await fetch(`http://127.0.0.1:${port}/health`);
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ status: "ok", nodeID: broker.nodeID });
		await broker.stop();
		await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
	});

	it("stops the node when its port is taken", async () => {
		const port = await freePort();
		const first = new ServiceBroker({ logger: false, middlewares: [HealthEndpoint(port)] });
		const second = new ServiceBroker({ logger: false, middlewares: [HealthEndpoint(port)] });
		await first.start();
		try {
			await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
		} finally {
			await first.stop();
			await second.stop().catch(() => undefined);
		}
	});
});

describe("events in the default mode (no NATS)", () => {
	it("are all handled under a burst far beyond a consumer's maxInFlight, none refused by a full queue", async () => {
		const broker = new ServiceBroker({ ...brokerConfig, nodeID: `burst-${process.pid}`, logger: false });
		const handled = new Set<number>();
		let inFlight = 0;
		let mostAtOnce = 0;
		broker.createService({
			name: "burst-consumer",
			channels: {
				"order.paid": {
					...CONSUMER,
					async handler(payload: { n: number }) {
						mostAtOnce = Math.max(mostAtOnce, ++inFlight);
						await new Promise(resolve => setTimeout(resolve, 5));
						inFlight--;
						handled.add(payload.n);
					},
				},
			},
		} as any);
		await broker.start();
		try {
			const burst = 10 * (CONSUMER.maxInFlight + 100); // ten times what the bulkhead held with a 100 queue
			await Promise.all(Array.from({ length: burst }, (_, n) => broker.sendToChannel("order.paid", { n })));
			await waitFor(async () => handled.size === burst, 30_000, "every event to be handled");
			expect(mostAtOnce).toBeLessThanOrEqual(CONSUMER.maxInFlight);
		} finally {
			await broker.stop();
		}
	});
});

describe("a node that stops gracefully (default mode)", () => {
	it("first publishes what services hand over, then handles every queued event while the services its handlers call still run", async () => {
		let ledgerStopped = false;
		const recorded = new Set<number>();
		const failures: string[] = [];
		const ledger = {
			name: "ledger",
			actions: {
				record(ctx: any) {
					if (ledgerStopped) throw new Error("ledger already stopped");
					recorded.add(ctx.params.n);
				},
			},
			stopped() {
				ledgerStopped = true;
			},
		};
		const counter = {
			name: "counter",
			methods: {
				// What catalog does with its view counts: one last event while the consumers still run.
				async handOverEvents(this: any) {
					await this.broker.sendToChannel("order.paid", { n: -1 });
				},
			},
		};
		const consumer = {
			name: "consumer",
			channels: {
				"order.paid": {
					...CONSUMER,
					maxInFlight: 1, // one at a time: between two calls, no call to the ledger is in flight
					async handler(this: any, payload: { n: number }) {
						await new Promise(resolve => setTimeout(resolve, 5));
						await this.broker
							.call("ledger.record", payload)
							.catch((err: Error) => failures.push(err.message));
					},
				},
			},
		};
		const broker = await new TestCluster(null).start(`drain-${process.pid}`, [ledger, counter, consumer] as any[]);
		const burst = 200; // a second of work: longer than the broker waits (stopDelay) before its services stop
		await Promise.all(Array.from({ length: burst }, (_, n) => broker.sendToChannel("order.paid", { n })));
		await broker.stop(); // right away: nearly all of the burst is still queued

		expect(failures).toEqual([]);
		expect(recorded.size).toBe(burst + 1);
		expect(recorded.has(-1)).toBe(true);
	});
});

describe("a node's announcement", () => {
	it("reaches the cluster once the node has started, not after Moleculer's 1 s debounce of service changes", async () => {
		const namespace = `announce-${process.pid}`;
		const node = (nodeID: string) =>
			new ServiceBroker({ ...brokerConfig, nodeID, namespace, transporter: "Fake", logger: false });
		const observer = node("observer");
		const announced = node("announced");
		announced.createService({ name: "announced-service", actions: { ping: () => "pong" } });
		await observer.start();
		try {
			await announced.start();
			await observer.waitForServices("announced-service", 500, 10);
			expect(await observer.call("announced-service.ping")).toBe("pong");
		} finally {
			await announced.stop();
			await observer.stop();
		}
	});
});

describe("refusals and failures", () => {
	/** What the MongoDB driver throws for a store error whose code looks like an HTTP status. */
	const storeError = () => new mongo.MongoServerError({ message: "store failure", code: 449 });

	it("tells a service's refusal from a store's error whatever its code, also across nodes", async () => {
		const namespace = `refusals-${process.pid}`;
		const [serving, calling] = ["serving", "calling"].map(
			nodeID => new ServiceBroker({ nodeID, namespace, transporter: "Fake", logger: false }),
		);
		serving.createService({
			name: "thing",
			actions: {
				refuse() {
					throw notFound("Thing", "t1");
				},
				fail() {
					throw storeError();
				},
				check: { params: { n: "number" }, handler: () => true },
			},
		});
		await Promise.all([serving.start(), calling.start()]);
		try {
			await calling.waitForServices("thing");
			const refused: any = await calling.call("thing.refuse").catch(err => err);
			const failed: any = await calling.call("thing.fail").catch(err => err);
			const invalid: any = await calling.call("thing.check", { n: "x" }).catch(err => err);
			expect([isClientRefusal(refused), isNotFound(refused), isEndpointFailure(refused)]).toEqual([
				true,
				true,
				false,
			]);
			expect(failed.code).toBe(449); // the store's code arrives with the error...
			expect([isClientRefusal(failed), isNotFound(failed), isEndpointFailure(failed)]).toEqual([
				false,
				false,
				true,
			]); // ...and is not taken for a refusal
			expect([invalid.code, isClientRefusal(invalid), isEndpointFailure(invalid)]).toEqual([422, true, false]);
		} finally {
			await Promise.all([serving.stop(), calling.stop()]);
		}
		expect(isClientRefusal(storeError())).toBe(false);
		expect(isClientRefusal(new Errors.MoleculerClientError("teapot", 418))).toBe(false); // not a status moleshop answers
	});

	it("counts against a circuit: 5xx, timeouts, the node's own refusal to serve, any error that is not Moleculer's", () => {
		expect(isEndpointFailure(new Errors.RequestTimeoutError({ action: "a.b", nodeID: "n1" }))).toBe(true);
		expect(isEndpointFailure(new Errors.MoleculerServerError("broken", 500, "BROKEN"))).toBe(true);
		expect(isEndpointFailure(new Errors.ServiceNotAvailableError({ action: "a.b", nodeID: "n1" }))).toBe(true);
		expect(isEndpointFailure(new Errors.ServiceNotAvailableError({ action: "a.b" }))).toBe(false); // no node for a service it calls
		expect(isEndpointFailure(new Errors.QueueIsFullError({ action: "a.b", nodeID: "n1", size: 1, limit: 1 }))).toBe(
			false,
		);
		expect(isEndpointFailure(new TypeError("x is undefined"))).toBe(true);
		expect(isEndpointFailure(storeError())).toBe(true);
	});

	it("does not count against a caller the call errors it passes on about a node it called, nor a skipped call", () => {
		/** `err` as it arrives from `raisedOn` (Moleculer sets `nodeID` to the node that sent it). */
		const from = <E extends Error>(raisedOn: string, err: E) => Object.assign(err, { nodeID: raisedOn });
		// carts (n1) answering that its call to pricing on n2 timed out, was rejected or found no node: pricing's failure.
		expect(isEndpointFailure(from("n1", new Errors.RequestTimeoutError({ action: "a.b", nodeID: "n2" })))).toBe(
			false,
		);
		expect(isEndpointFailure(from("n1", new Errors.RequestRejectedError({ action: "a.b", nodeID: "n2" })))).toBe(
			false,
		);
		expect(
			isEndpointFailure(from("n1", new Errors.ServiceNotAvailableError({ action: "a.b", nodeID: "n2" }))),
		).toBe(false);
		// The node about itself: its own handler timed out, or it refuses the call while stopping.
		expect(isEndpointFailure(from("n1", new Errors.RequestTimeoutError({ action: "c.d", nodeID: "n1" })))).toBe(
			true,
		);
		expect(
			isEndpointFailure(from("n1", new Errors.ServiceNotAvailableError({ action: "c.d", nodeID: "n1" }))),
		).toBe(true);
		// A 5xx raised by the handler of the node that answers still counts against it.
		expect(isEndpointFailure(from("n1", new Errors.MoleculerServerError("broken", 500, "BROKEN")))).toBe(true);
		expect(isEndpointFailure(new Errors.RequestSkippedError({ action: "a.b", nodeID: "n1" }))).toBe(false);
	});
});
