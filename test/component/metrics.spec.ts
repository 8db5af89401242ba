/**
 * The shop's own metrics (platform/metrics.ts), as Prometheus scrapes them: a whole shop with metrics on
 * and Moleculer's Prometheus reporter on a free port, a checkout through the gateway, then /metrics over
 * HTTP. And with metrics off (the default), nothing of the shop's is registered and the helpers do nothing.
 * Over a NATS of the test's own: a redelivery counted, and a dead letter in its channel's depth.
 */
import { ServiceBroker, type Middleware, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { channelsMiddleware, CONSUMER, type JetStreamAdapter } from "../../platform/channels";
import { countMetric, observeSeconds, setMetric, SHOP_METRICS, ShopMetrics } from "../../platform/metrics";
import { describeWithNats, startNatsServer, type NatsServer } from "../helpers/nats";
import { freePort, waitFor } from "../helpers/process";
import { checkoutOne, startShop, type Shop } from "../helpers/shop";

/** One sample of a scrape: name, labels, value. */
interface Sample {
	name: string;
	labels: Record<string, string>;
	value: number;
}

/** The samples of a Prometheus text exposition. */
function parse(text: string): Sample[] {
	const samples: Sample[] = [];
	for (const line of text.split("\n")) {
		const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
		if (!match) continue;
		const labels: Record<string, string> = {};
		for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
		samples.push({ name: match[1], labels, value: Number(match[3]) });
	}
	return samples;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
	const found = samples.filter(
		s => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
	);
	if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
	return found[0]?.value;
}

describe("the shop's metrics, scraped", () => {
	let shop: Shop;
	let metricsPort: number;
	const scrape = async () => {
		const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
		expect(res.status).toBe(200);
		return parse(await res.text());
	};

	beforeAll(async () => {
		metricsPort = await freePort();
		shop = await startShop(undefined, {
			metrics: {
				enabled: true,
				reporter: [{ type: "Prometheus", options: { port: metricsPort, path: "/metrics" } }],
			},
		});
	});
	afterAll(() => shop?.stop());

	it("counts a checkout: the order paid, its duration, the charge, the invoice, the events and the email", async () => {
		const { token } = await shop.signUp("Metrics");
		const product = (await shop.request("GET", "/api/v1/products?q=mug")).body.rows[0];
		const res = await checkoutOne(shop, token, product.id, "pm_card_visa", 2);
		expect(res.status).toBe(201);
		const { total, currency } = res.body;
		expect(total).toBeGreaterThan(0);

		// The confirmation email is sent by a consumer of order.paid: wait for it, and for the outbox's measure.
		const samples = await waitFor(
			async () => {
				const s = await scrape();
				const sent = valueOf(s, "moleshop_notifications_sent_total", { channel: "email", outcome: "sent" });
				const measured = valueOf(s, "moleshop_outbox_backlog", { service: "orders" }) !== undefined;
				return (sent ?? 0) >= 2 && measured && s; // the welcome and the confirmation
			},
			20_000,
			"the confirmation email and the outbox gauges",
		);

		expect(valueOf(samples, "moleshop_orders_finished_total", { status: "paid" })).toBe(1);
		expect(valueOf(samples, "moleshop_checkout_duration_seconds_count", { outcome: "paid" })).toBe(1);
		expect(valueOf(samples, "moleshop_checkout_duration_seconds_bucket", { outcome: "paid", le: "+Inf" })).toBe(1);
		const sum = valueOf(samples, "moleshop_checkout_duration_seconds_sum", { outcome: "paid" })!;
		expect(sum).toBeGreaterThan(0);
		expect(sum).toBeLessThan(30); // seconds, not milliseconds
		expect(valueOf(samples, "moleshop_payments_charged_cents_total", { currency })).toBe(total);
		expect(valueOf(samples, "moleshop_invoices_issued_total")).toBe(1);
		expect(valueOf(samples, "moleshop_events_published_total", { channel: "order.paid" })).toBe(1);
		expect(
			valueOf(samples, "moleshop_events_published_total", { channel: "user.registered" }),
		).toBeGreaterThanOrEqual(1);
		// Published, so nothing is left: the gauges are there, at 0.
		expect(valueOf(samples, "moleshop_outbox_backlog", { service: "orders" })).toBe(0);
		expect(valueOf(samples, "moleshop_outbox_oldest_age_seconds", { service: "orders" })).toBe(0);
		// The default mode has no dead-letter queue: every channel reads 0.
		expect(valueOf(samples, "moleshop_dead_letters", { channel: "order.paid" })).toBe(0);
		// Store operations, by collection and operation: the order's insert among them.
		const inserts = valueOf(samples, "moleshop_store_operation_duration_seconds_bucket", {
			collection: "orders",
			operation: "insert",
			le: "+Inf",
		});
		expect(inserts).toBeGreaterThanOrEqual(1);
		// Every bound (in seconds), each count cumulative: an insert of the embedded store is under a second.
		const insertBuckets = samples.filter(
			s =>
				s.name === "moleshop_store_operation_duration_seconds_bucket" &&
				s.labels.collection === "orders" &&
				s.labels.operation === "insert",
		);
		expect(insertBuckets.map(s => s.labels.le).sort((a, b) => Number(a) - Number(b))).toEqual([
			"0.0001",
			"0.0005",
			"0.001",
			"0.0025",
			"0.005",
			"0.01",
			"0.025",
			"0.05",
			"0.1",
			"0.25",
			"1",
			"+Inf",
		]);
		const finite = insertBuckets.filter(s => s.labels.le !== "+Inf");
		const byBound = new Map(finite.map(s => [Number(s.labels.le), s.value]));
		const ascending = [...byBound.keys()].sort((a, b) => a - b).map(le => byBound.get(le)!);
		expect(ascending).toEqual([...ascending].sort((a, b) => a - b));
		expect(byBound.get(1)).toBe(inserts);
		// Moleculer's own: the gateway's call of the action is labelled caller="api" (per-route latency).
		expect(
			valueOf(samples, "moleculer_request_time_count", {
				action: "orders.create",
				caller: "api",
				type: "local",
			}),
		).toBe(1);

		// A repeat of the same checkout under its Idempotency-Key charges nothing more and counts nothing twice.
		const key = { "Idempotency-Key": "metrics-1" };
		const second = await checkoutOne(shop, token, product.id, "pm_card_visa", 1, key);
		expect(second.status).toBe(201);
		const replay = await checkoutOne(shop, token, product.id, "pm_card_visa", 1, key);
		expect(replay.status).toBe(201);
		expect(replay.headers.get("idempotent-replayed")).toBe("true");
		const after = await scrape();
		expect(valueOf(after, "moleshop_orders_finished_total", { status: "paid" })).toBe(2);
		expect(valueOf(after, "moleshop_invoices_issued_total")).toBe(2);
		expect(valueOf(after, "moleshop_payments_charged_cents_total", { currency })).toBe(total + second.body.total);
		expect(valueOf(after, "moleshop_checkout_duration_seconds_count", { outcome: "paid" })).toBe(3);
	});

	it("counts a declined card, a refund and a reservation refused for stock", async () => {
		const admin = await shop.adminToken();
		const created = await shop.request("POST", "/api/v1/products", {
			token: admin,
			body: { sku: "METRIC-01", name: "Metric Mug", price: 1_250, category: "test", stock: 1 },
		});
		expect(created.status).toBe(201);
		const { token } = await shop.signUp("Refused");
		const before = await scrape();
		const refusedBefore = valueOf(before, "moleshop_stock_reservations_refused_total") ?? 0;

		expect((await checkoutOne(shop, token, created.body.id, "pm_card_chargeDeclined", 1)).status).toBe(402);
		const paid = await checkoutOne(shop, token, created.body.id, "pm_card_visa", 1);
		expect(paid.status).toBe(201);
		expect((await checkoutOne(shop, token, created.body.id, "pm_card_visa", 1)).status).toBe(409); // sold out
		const cancelled = await shop.request("POST", `/api/v1/orders/${paid.body.id}/cancel`, { token });
		expect(cancelled.status).toBe(200);

		const samples = await scrape();
		expect(valueOf(samples, "moleshop_stock_reservations_refused_total")).toBe(refusedBefore + 1);
		expect(valueOf(samples, "moleshop_orders_finished_total", { status: "payment_failed" })).toBe(1);
		expect(valueOf(samples, "moleshop_orders_finished_total", { status: "cancelled" })).toBe(1);
		expect(valueOf(samples, "moleshop_checkout_duration_seconds_count", { outcome: "payment_failed" })).toBe(1);
		expect(valueOf(samples, "moleshop_checkout_duration_seconds_count", { outcome: "refused" })).toBe(1);
		expect(valueOf(samples, "moleshop_payments_refunded_cents_total", { currency: paid.body.currency })).toBe(
			paid.body.total,
		);
	});
});

describe("the shop's metrics, off (no METRICS_PORT)", () => {
	it("registers nothing, and the helpers record nothing", async () => {
		const broker = new ServiceBroker({ ...brokerConfig, nodeID: `metrics-off-${process.pid}`, logger: false });
		expect(brokerConfig.metrics).toEqual({ enabled: false }); // the test environment sets no METRICS_PORT
		await broker.start();
		try {
			expect(broker.isMetricsEnabled()).toBe(false);
			countMetric(broker, "ordersFinished", { status: "paid" });
			setMetric(broker, "outboxBacklog", 3, { service: "orders" });
			observeSeconds(broker, "checkoutDuration", 0.2, { outcome: "paid" });
			for (const { name } of Object.values(SHOP_METRICS)) expect(broker.metrics.getMetric(name)).toBeNull();
		} finally {
			await broker.stop();
		}
	});

	it("are all registered, with their labels, when metrics are on, beside Moleculer's circuit breaker metrics", async () => {
		const broker = new ServiceBroker({
			...brokerConfig,
			nodeID: `metrics-on-${process.pid}`,
			logger: false,
			metrics: { enabled: true },
		});
		await broker.start();
		try {
			for (const definition of Object.values(SHOP_METRICS)) {
				const metric = broker.metrics.getMetric(definition.name) as unknown as {
					type: string;
					labelNames: string[];
				};
				expect(metric.type).toBe(definition.type);
				expect(metric.labelNames).toEqual("labelNames" in definition ? definition.labelNames : []);
			}
			// The circuit breaker's own (moleculer_circuit_breaker_*), per endpoint: registered with metrics on.
			for (const name of ["opened.active", "opened.total", "half-opened.active"])
				expect(broker.metrics.getMetric(`moleculer.circuit-breaker.${name}`)).not.toBeNull();
		} finally {
			await broker.stop();
		}
	});
});

describeWithNats("the shop's metrics of durable events (NATS JetStream)", () => {
	let nats: NatsServer;
	let broker: ServiceBroker;
	const channel = "metrics.failing";

	beforeAll(async () => {
		nats = await startNatsServer();
		broker = new ServiceBroker({
			nodeID: `metrics-nats-${process.pid}`,
			namespace: `metrics${process.pid}`,
			logger: false,
			metrics: { enabled: true },
			middlewares: [channelsMiddleware([channel], nats.url) as unknown as Middleware, ShopMetrics],
		});
		broker.createService({
			name: "failing",
			channels: {
				[channel]: {
					...CONSUMER,
					maxRetries: 2,
					handler() {
						throw new Error("this consumer always fails");
					},
				},
			},
		} as ServiceSchema);
		await broker.start();
	}, 30_000);
	afterAll(async () => {
		await broker?.stop();
		await nats?.destroy();
	});

	it("counts a redelivery, and the dead letter in its channel's depth", async () => {
		await broker.sendToChannel(channel, { id: "evt-1" });
		const adapter = broker.channelAdapter as JetStreamAdapter;
		const depth = await waitFor(
			async () => {
				const d = await adapter.deadLetterDepth(100);
				return d[channel] === 1 && d;
			},
			20_000,
			"the dead letter",
		);
		expect(depth).toEqual({ [channel]: 1 });
		const redelivered = broker.metrics.getMetric(SHOP_METRICS.eventsRedelivered.name)!.get({ channel });
		expect(redelivered?.value).toBe(1); // the second of its two deliveries
	});
});
