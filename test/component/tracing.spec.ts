/**
 * Traces (platform/tracing.ts): one checkout through the gateway is one trace, from the gateway to the
 * consumers of the order's events, sent to a Zipkin collector (a local HTTP server here) under the trace
 * id the X-Request-Id answered maps to; with sampling 0 nothing is exported; bad settings are refused.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import brokerConfig from "../../moleculer.config";
import { loadConfig } from "../../platform/config";
import { tracingOptions, zipkinTraceId } from "../../platform/tracing";
import { EVENT_TYPES } from "../../contracts/events";
import { channelsMiddleware } from "../../platform/channels";
import { natsServerInstalled, startNatsServer, type NatsServer } from "../helpers/nats";
import { checkoutOne, startShop, type Shop } from "../helpers/shop";

interface ZipkinSpan {
	traceId: string;
	id: string;
	parentId: string | null;
	name: string;
	localEndpoint: { serviceName: string | null };
	tags: Record<string, string>;
}

interface FinishedSpan {
	traceID: string;
	type: string;
	sampled: boolean;
	service?: { name: string };
}

/** A Zipkin collector: keeps every span POSTed to /api/v2/spans. */
async function startCollector(): Promise<{ server: Server; url: string; spans: ZipkinSpan[] }> {
	const spans: ZipkinSpan[] = [];
	const server = createServer((req, res) => {
		let body = "";
		req.on("data", chunk => (body += chunk));
		req.on("end", () => {
			if (req.method === "POST" && req.url === "/api/v2/spans") {
				spans.push(...(JSON.parse(body) as ZipkinSpan[]));
				res.writeHead(202).end();
			} else res.writeHead(404).end();
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans };
}

/** Poll `check` until it holds (generous bound: the events hop through the outbox and the channels). */
async function eventually(check: () => boolean, what: () => string, boundMs = 30_000) {
	const until = Date.now() + boundMs;
	while (!check()) {
		if (Date.now() > until) throw new Error(`Timed out waiting for ${what()}`);
		await new Promise(resolve => setTimeout(resolve, 50));
	}
}

/**
 * Start the shop with these tracing settings, recording every span its tracer finishes; with `nats`,
 * its events go over JetStream (the channels middleware of NATS mode) instead of Moleculer's events.
 */
async function tracedShop(
	env: NodeJS.ProcessEnv,
	nats?: NatsServer,
): Promise<{ shop: Shop; finished: FinishedSpan[] }> {
	const { tracing: savedTracing, middlewares: savedMiddlewares } = brokerConfig;
	brokerConfig.tracing = tracingOptions(loadConfig(env).tracing);
	if (nats) {
		const [, ...others] = savedMiddlewares!;
		brokerConfig.middlewares = [channelsMiddleware(EVENT_TYPES, nats.url) as never, ...others];
	}
	try {
		const shop = await startShop();
		const finished: FinishedSpan[] = [];
		const tracer = shop.broker.tracer as unknown as { spanFinished(span: FinishedSpan): void };
		const spanFinished = tracer.spanFinished.bind(tracer);
		tracer.spanFinished = span => {
			finished.push(span);
			spanFinished(span);
		};
		return { shop, finished };
	} finally {
		Object.assign(brokerConfig, { tracing: savedTracing, middlewares: savedMiddlewares });
	}
}

async function checkout(shop: Shop, headers: Record<string, string> = {}) {
	const admin = await shop.adminToken();
	const product = await shop.request("POST", "/api/v1/products", {
		token: admin,
		body: { sku: `TRACE-${Date.now()}`, name: "Traced", price: 1_000, category: "test", stock: 5 },
	});
	expect(product.status).toBe(201);
	const customer = await shop.signUp("Traced");
	const res = await checkoutOne(shop, customer.token, product.body.id, "pm_card_visa", 1, headers);
	expect(res.status).toBe(201);
	expect(res.body.status).toBe("paid");
	return res.headers.get("x-request-id")!;
}

const CHECKOUT_SERVICES = ["api", "orders", "products", "pricing", "payments", "invoices"];
const ORDER_EVENT_CONSUMERS = ["notifications", "analytics"];

describe("one checkout is one trace", () => {
	let collector: Awaited<ReturnType<typeof startCollector>>;
	beforeAll(async () => (collector = await startCollector()));
	afterAll(() => new Promise(resolve => collector.server.close(resolve)));

	const cases: Array<[string, Record<string, string>, "default" | "nats"]> = [
		["a request id of the gateway's own (a UUID)", {}, "default"],
		["a caller's X-Request-Id that is not hex", { "X-Request-Id": "checkout.trace:42" }, "default"],
	];
	if (natsServerInstalled() || process.env.REQUIRE_NATS)
		cases.push(["events over JetStream (NATS mode)", {}, "nats"]);
	it.each(cases)(
		"gateway to event consumers, at Zipkin under the X-Request-Id's trace id: %s",
		async (_, headers, mode) => {
			const nats = mode === "nats" ? await startNatsServer() : undefined;
			let shop: Shop | undefined;
			let requestId: string;
			try {
				const traced = await tracedShop({ TRACE_EXPORTER: "zipkin", ZIPKIN_URL: collector.url }, nats);
				shop = traced.shop;
				const { finished } = traced;
				requestId = await checkout(shop, headers);
				if ("X-Request-Id" in headers) expect(requestId).toBe(headers["X-Request-Id"]);
				// The order's events reach their consumers after the answer: wait for their handling spans.
				const consumed = () =>
					new Set(
						finished
							.filter(span => span.traceID === requestId && span.type === "channel")
							.map(span => span.service?.name),
					);
				await eventually(
					() => ORDER_EVENT_CONSUMERS.every(name => consumed().has(name)),
					() => `the event consumers (handled by ${[...consumed()].join(", ")})`,
				);
			} finally {
				await shop?.stop(); // the exporter sends what it holds
				await nats?.destroy();
			}

			const traceId = zipkinTraceId(requestId);
			expect(traceId).toMatch(/^[0-9a-f]{32}$/);
			if (!("X-Request-Id" in headers)) expect(traceId).toBe(requestId.replace(/-/g, ""));
			const inTrace = () => collector.spans.filter(span => span.traceId === traceId);
			const services = () => new Set(inTrace().map(span => span.localEndpoint.serviceName));
			await eventually(
				() => [...CHECKOUT_SERVICES, ...ORDER_EVENT_CONSUMERS].every(name => services().has(name)),
				() =>
					`the spans at the collector (${collector.spans.length} spans, of ${[...services()].join(", ")} in the trace ${traceId}; ${[...new Set(collector.spans.map(s => s.traceId))].join(", ")})`,
			);
			const spans = inTrace();
			// Every span id is Zipkin's 16 hex digits, and every parent is a span of the same trace.
			const ids = new Set(spans.map(span => span.id));
			for (const span of spans) {
				expect(span.id).toMatch(/^[0-9a-f]{16}$/);
				if (span.parentId) expect(ids).toContain(span.parentId);
			}
			// The root is the gateway's span; an event's handling is a child of the action that wrote the event.
			expect(spans.filter(span => !span.parentId).map(span => span.localEndpoint.serviceName)).toEqual(["api"]);
			const byId = new Map(spans.map(span => [span.id, span]));
			const paidHandlers = spans.filter(span => /^channel '(\w+\.)?order\.paid'$/.test(span.name));
			expect(paidHandlers.map(span => span.localEndpoint.serviceName).sort()).toEqual(
				[...ORDER_EVENT_CONSUMERS].sort(),
			);
			for (const span of paidHandlers) expect(byId.get(span.parentId!)?.localEndpoint.serviceName).toBe("orders");
			// No params, answers, card references or tokens (JWTs start "eyJ") in the tags.
			expect(JSON.stringify(spans)).not.toMatch(/pm_card_visa|password|Bearer|eyJ/i);
		},
	);

	it("exports nothing with sampling 0", async () => {
		const { shop, finished } = await tracedShop({
			TRACE_EXPORTER: "zipkin",
			ZIPKIN_URL: collector.url,
			TRACE_SAMPLE_RATE: "0",
		});
		let exporterQueue: unknown[];
		try {
			const requestId = await checkout(shop);
			await eventually(
				() => finished.some(span => span.traceID === requestId && span.service?.name === "notifications"),
				() => "the event consumers",
			);
			expect(finished.filter(span => span.traceID === requestId).every(span => !span.sampled)).toBe(true);
			exporterQueue = (shop.broker.tracer as unknown as { exporter: Array<{ queue: unknown[] }> }).exporter[0]
				.queue;
			expect(exporterQueue).toEqual([]);
		} finally {
			await shop.stop();
		}
	});
});

describe("tracing settings", () => {
	it("is off unless asked, and samples every request by default", () => {
		expect(loadConfig({}).tracing).toEqual({
			exporter: "off",
			zipkinUrl: "http://localhost:9411",
			sampleRate: 1,
			tracesPerSecond: undefined,
		});
		expect(tracingOptions(loadConfig({}).tracing)).toEqual({ enabled: false });
		expect(
			tracingOptions(loadConfig({ TRACE_EXPORTER: "console", TRACE_SAMPLE_RATE: "0.25" }).tracing),
		).toMatchObject({
			enabled: true,
			sampling: { rate: 0.25 },
			exporter: { type: "Console" },
		});
		expect(tracingOptions(loadConfig({ TRACE_EXPORTER: "zipkin", TRACES_PER_SECOND: "5" }).tracing)).toMatchObject({
			sampling: { tracesPerSecond: 5 },
		});
	});

	it.each([
		[{ TRACE_EXPORTER: "jaeger" }, /TRACE_EXPORTER must be one of off, console, zipkin/],
		[{ TRACE_EXPORTER: "zipkin", ZIPKIN_URL: "localhost:9411" }, /ZIPKIN_URL must be an http\(s\) URL/],
		[{ TRACE_SAMPLE_RATE: "1.5" }, /TRACE_SAMPLE_RATE must be a number from 0 to 1/],
		[{ TRACE_SAMPLE_RATE: "half" }, /TRACE_SAMPLE_RATE must be a number from 0 to 1/],
		[{ TRACES_PER_SECOND: "0" }, /TRACES_PER_SECOND must be a positive number/],
		[{ TRACES_PER_SECOND: "-2" }, /TRACES_PER_SECOND must be a positive number/],
	])("refuses %j", (env, message) => {
		expect(() => loadConfig(env)).toThrow(message);
	});

	it("maps a request id to a Zipkin trace id: a hex id as is, any other by its hash", () => {
		expect(zipkinTraceId("3F2A6C1E-9B7D-4E21-8C3A-0D5E6F7A8B9C")).toBe("3f2a6c1e9b7d4e218c3a0d5e6f7a8b9c");
		expect(zipkinTraceId("0123456789abcdef")).toBe("0123456789abcdef");
		expect(zipkinTraceId("checkout.42")).toMatch(/^[0-9a-f]{32}$/);
		expect(zipkinTraceId("checkout.42")).toBe(zipkinTraceId("checkout.42"));
		expect(zipkinTraceId("checkout.42")).not.toBe(zipkinTraceId("checkout.43"));
	});
});
