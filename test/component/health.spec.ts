/**
 * A node's /health and /ready (platform/health.ts through the HealthEndpoint middleware, and the
 * gateway's): each check's verdict, on free ports, on both stores — and over NATS, JetStream's.
 */
import { randomUUID } from "node:crypto";
import { ServiceBroker, type BrokerOptions, type Middleware, type Service } from "moleculer";
import { config } from "../../platform/config";
import { channelsMiddleware } from "../../platform/channels";
import { DbMixin } from "../../platform/db.mixin";
import { contributeHealthCheck } from "../../platform/health";
import { HealthEndpoint } from "../../platform/middlewares/health-endpoint";
import { EVENT_TYPES } from "../../contracts/events";
import { freePort, waitFor } from "../helpers/process";
import { describeWithNats, startNatsServer, type NatsServer } from "../helpers/nats";
import { startShop } from "../helpers/shop";

const brokers: ServiceBroker[] = [];
afterEach(async () => {
	await Promise.all(brokers.splice(0).map(broker => broker.stop()));
});

/** A started broker with one store service (with an outbox) named `name`, and a health endpoint on a free port. */
async function node(
	name: string,
	options: { middlewares?: Middleware[]; transporter?: BrokerOptions["transporter"] } = {},
) {
	const port = await freePort();
	const broker = new ServiceBroker({
		nodeID: `${name}-${process.pid}`,
		logger: false,
		transporter: options.transporter ?? null,
		middlewares: [...(options.middlewares ?? []), HealthEndpoint(port)],
	});
	brokers.push(broker);
	const service = broker.createService({
		name,
		mixins: [DbMixin({ collection: name, schema: { label: String }, emitsEvents: true })],
	}) as Service & Record<string, any>;
	await broker.start();
	const get = async (path: string) => {
		const res = await fetch(`http://127.0.0.1:${port}${path}`);
		return { status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as any };
	};
	return { broker, service, get, port };
}

const event = (minutesAgo: number) => ({
	id: randomUUID(),
	type: "widget.made",
	version: 1,
	occurredAt: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
	data: {},
});

describe("HealthEndpoint /health and /ready", () => {
	it("answers ready (200) with each check's reason when the store is open and the outbox empty", async () => {
		const { broker, get } = await node("healthywidgets");
		expect(await get("/health")).toMatchObject({ status: 200, body: { status: "ok", nodeID: broker.nodeID } });
		const ready = await get("/ready");
		expect(ready.status).toBe(200);
		expect(ready.body).toEqual({
			status: "ready",
			nodeID: broker.nodeID,
			checks: {
				"healthywidgets.store": { ok: true, collection: "healthywidgets" },
				"healthywidgets.outbox": { ok: true, backlog: 0, oldestAgeSeconds: 0, bound: 100, degraded: false },
			},
		});
	});

	it("answers degraded (still 200) with the count and age when the outbox backlog is over its bound", async () => {
		const bound = config.health.outboxBound;
		config.health.outboxBound = 2;
		try {
			// No channels middleware: the relay cannot publish, so the events stay in the outbox (as with NATS down).
			const { service, get } = await node("backedupwidgets");
			await service.adapter.insert({ label: "a", outbox: [event(10), event(5)] });
			expect((await get("/ready")).body).toMatchObject({
				status: "ready",
				checks: { "backedupwidgets.outbox": { backlog: 2, degraded: false } },
			});
			await service.adapter.insert({ label: "b", outbox: [event(1)] });
			const ready = await get("/ready");
			expect(ready.status).toBe(200);
			expect(ready.body.status).toBe("degraded");
			const outbox = ready.body.checks["backedupwidgets.outbox"];
			expect(outbox).toMatchObject({ ok: true, backlog: 3, bound: 2, degraded: true });
			// The oldest event is 10 minutes old (generous bounds: the probe is not timed).
			expect(outbox.oldestAgeSeconds).toBeGreaterThanOrEqual(590);
			expect(outbox.oldestAgeSeconds).toBeLessThan(3_600);
			expect(ready.body.checks["backedupwidgets.store"].ok).toBe(true);
		} finally {
			config.health.outboxBound = bound;
		}
	});

	it("answers unavailable (503, Retry-After) naming the store when it is disconnected; /health stays 200", async () => {
		const { service, get } = await node("closedwidgets");
		expect((await get("/ready")).status).toBe(200);
		await service.disconnect(); // NeDB closed, or the process's mongoose connection closed
		const ready = await get("/ready");
		expect(ready).toMatchObject({ status: 503, retryAfter: "1", body: { status: "unavailable" } });
		expect(ready.body.checks["closedwidgets.store"]).toEqual({
			ok: false,
			collection: "closedwidgets",
			reason: "not connected",
		});
		expect((await get("/health")).status).toBe(200);
	});

	it("fails a check that hangs or throws, within the timeout, without the error's text", async () => {
		const timeout = config.health.checkTimeoutMs;
		config.health.checkTimeoutMs = 100;
		try {
			const { service, get } = await node("oddwidgets");
			contributeHealthCheck(service, "hangs", () => new Promise(() => undefined));
			contributeHealthCheck(service, "throws", () => {
				throw new Error("secret connection string mongodb://user:pw@host");
			});
			const ready = await get("/ready");
			expect(ready.status).toBe(503);
			expect(ready.body.checks["oddwidgets.hangs"]).toEqual({ ok: false, reason: "timed out" });
			expect(ready.body.checks["oddwidgets.throws"]).toEqual({ ok: false, reason: "check failed" });
			expect(JSON.stringify(ready.body)).not.toMatch(/secret|mongodb:|pw@/);
		} finally {
			config.health.checkTimeoutMs = timeout;
		}
	});

	it("answers 404 for other paths and methods, and nothing once the broker stopped", async () => {
		const { broker, get, port } = await node("stoppedwidgets");
		expect((await get("/metrics")).status).toBe(404);
		expect((await get("/ready/extra")).status).toBe(404);
		for (const method of ["POST", "DELETE"]) {
			const res = await fetch(`http://127.0.0.1:${port}/ready`, { method });
			expect(res.status).toBe(404);
			expect(await res.json()).toEqual({ status: "not found", paths: ["/health", "/ready"] });
		}
		expect((await get("/ready?verbose=1")).status).toBe(200); // a query string is not another path
		await broker.stop();
		await expect(get("/ready")).rejects.toThrow();
	});
});

describe("the gateway's /ready", () => {
	it("reports its node's checks and the services it routes to", async () => {
		const shop = await startShop();
		try {
			const ready = await shop.request("GET", "/ready");
			expect(ready.status).toBe(200);
			expect(ready.body).toMatchObject({
				status: "ready",
				nodeID: shop.broker.nodeID,
				missing: [],
				checks: {
					services: { ok: true },
					"orders.store": { ok: true, collection: "orders" },
					"orders.outbox": { ok: true, backlog: 0 },
					"products.store": { ok: true },
				},
			});
			await (shop.broker.getLocalService("orders") as any).disconnect();
			const down = await shop.request("GET", "/ready");
			expect(down.status).toBe(503);
			expect(down.body.status).toBe("unavailable");
			expect(down.body.checks["orders.store"]).toMatchObject({ ok: false, reason: "not connected" });
			expect((await shop.request("GET", "/health")).status).toBe(200);
		} finally {
			await shop.stop();
		}
	});
});

describeWithNats("/ready over NATS", () => {
	let nats: NatsServer;
	beforeAll(async () => {
		nats = await startNatsServer();
	});
	afterAll(() => nats?.destroy());

	it("checks the transporter and JetStream (with the dead letters), and is unavailable once NATS is gone", async () => {
		const { broker, get } = await node("natswidgets", {
			transporter: { type: "NATS", options: { url: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 } },
			middlewares: [channelsMiddleware(EVENT_TYPES, nats.url) as unknown as Middleware],
		});
		const ready = await get("/ready");
		expect(ready.status).toBe(200);
		expect(ready.body.checks).toMatchObject({
			transporter: { ok: true },
			jetstream: { ok: true, deadLetters: 0, deadLetterBound: 0, degraded: false },
		});
		await nats.stop();
		try {
			await waitFor(async () => (await get("/ready")).status === 503, 30_000, "/ready to answer 503");
			const down = await get("/ready");
			expect(down.body.status).toBe("unavailable");
			expect(down.body.checks.transporter.ok).toBe(false);
			expect(down.body.checks.jetstream.ok).toBe(false);
			expect(down.body.nodeID).toBe(broker.nodeID);
		} finally {
			await nats.start();
		}
	});
});
