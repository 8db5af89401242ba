/**
 * Structured logs (platform/logging.ts, platform/middlewares/request-scope.ts): the whole shop
 * at debug level, its logger writing into the test, in both formats. A sign-up, a login, a checkout
 * with a card token and a failing call leave neither the password, its hash, a JWT, the JWT secret
 * nor the card token in any line, while the lines logged inside a request name its node, service and
 * request id, and every JSON line parses.
 */
import { Writable } from "node:stream";
import { randomUUID } from "node:crypto";
import { config } from "../../platform/config";
import { loggerOptions, loggingSettings, createScrubber } from "../../platform/logging";
import ApiService from "../../services/api/api.service";
import { waitFor } from "../helpers/process";
import { ALL_SERVICES, startShop, type Shop } from "../helpers/shop";

/**
 * The shop, its gateway also logging every request's params and response data (moleculer-web, debug):
 * passwords, tokens and the card token then reach the logger, which must scrub them.
 */
const LOUD_SERVICES = ALL_SERVICES.map(schema =>
	schema === ApiService
		? { ...schema, settings: { ...schema.settings, logRequestParams: "debug", logResponseData: "debug" } }
		: schema,
);

interface Captured {
	lines: string[];
	stop(): void;
}

/** A stream pino writes JSON lines into. */
function jsonSink(): { stream: Writable; lines: string[] } {
	const lines: string[] = [];
	const stream = new Writable({
		write(chunk, _enc, done) {
			lines.push(...String(chunk).split("\n").filter(Boolean));
			done();
		},
	});
	return { stream, lines };
}

/** The Console logger's lines, taken from console.log/warn/error. */
function consoleSink(): Captured {
	const lines: string[] = [];
	let capturing = true;
	// Left in place after the test: a stopped gateway's debounced route rebuild still logs a line.
	for (const method of ["log", "warn", "error"] as const) {
		jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
			if (capturing) lines.push(args.map(String).join(" "));
		});
	}
	return { lines, stop: () => (capturing = false) };
}

/** Sign up, log in, check out with a card token and make a failing call; what was sent and answered. */
async function exercise(shop: Shop) {
	const requestId = `log-test-${randomUUID()}`;
	const headers = { "x-request-id": requestId };
	const admin = await shop.adminToken();
	const product = await shop.request("POST", "/api/v1/products", {
		token: admin,
		body: { sku: `log-${Date.now()}`, name: "Log Lamp", price: 1999, category: "Home", stock: 5 },
	});
	expect(product.status).toBe(201);
	const customer = await shop.signUp("Logged Customer");
	const login = await shop.request("POST", "/api/v1/auth/login", {
		headers,
		body: { email: customer.email, password: customer.password },
	});
	expect(login.status).toBe(200);
	const order = await shop.request("POST", "/api/v1/orders", {
		token: login.body.token,
		headers,
		body: { items: [{ productId: product.body.id, quantity: 1 }], paymentMethod: "pm_card_visa" },
	});
	expect(order.status).toBeLessThan(300);
	const failed = await shop.request("POST", "/api/v1/auth/login", {
		headers,
		body: { email: customer.email, password: "wrong password eyJhbGciOiJIUzI1NiJ9.e30.x" },
	});
	expect(failed.status).toBe(401);
	return { requestId, tokens: [admin, customer.token, login.body.token], password: customer.password };
}

function expectNoSecrets(lines: string[], sent: Awaited<ReturnType<typeof exercise>>) {
	const all = lines.join("\n");
	expect(lines.length).toBeGreaterThan(50);
	for (const token of sent.tokens) expect(all).not.toContain(token);
	expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./);
	expect(all).not.toContain(sent.password);
	expect(all).not.toContain("admin-password");
	expect(all).not.toContain("wrong password");
	expect(all).not.toContain(config.jwtSecret!);
	expect(all).not.toContain("$argon2");
	expect(all).not.toContain("pm_card_visa");
}

describe("structured logs", () => {
	const debug = { ...loggingSettings(config), level: "debug" as const, levels: {} };

	it("writes JSON lines that parse, carry node, service and request id, and hold no secrets", async () => {
		const sink = jsonSink();
		const shop = await startShop(LOUD_SERVICES, {
			logger: loggerOptions({ ...debug, format: "json", destination: sink.stream }),
		});
		let sent;
		try {
			sent = await exercise(shop);
			// The checkout's events reach notifications later, through the outbox and the channels, with
			// tracing off: the consumer's lines still carry the request id of the action that wrote them.
			const requestId = sent.requestId;
			await waitFor(
				async () =>
					sink.lines.some(
						line => line.includes(`"requestId":"${requestId}"`) && line.includes('"svc":"notifications"'),
					),
				20_000,
				"a line of notifications in the checkout's request",
			);
		} finally {
			await shop.stop();
		}
		const entries = sink.lines.map(line => JSON.parse(line));
		expectNoSecrets(sink.lines, sent);
		const ofRequest = entries.filter(e => e.requestId === sent.requestId);
		expect(ofRequest.length).toBeGreaterThan(3);
		for (const entry of ofRequest) {
			expect(entry).toMatchObject({ nodeID: shop.broker.nodeID, traceId: sent.requestId });
			expect(typeof entry.mod).toBe("string");
			expect(typeof entry.spanId).toBe("string");
		}
		// The nested calls of the login and the checkout logged in their scope, the service and action named.
		const calls = new Set(ofRequest.filter(e => e.mod === "broker").map(e => e.action));
		for (const action of ["users.login", "orders.create", "payments.charge"]) expect(calls.has(action)).toBe(true);
		expect(ofRequest.some(e => e.mod === "api" && e.svc === "api")).toBe(true);
		// The gateway's own request lines (moleculer-web, debug) went through the scrubber: the login's params were logged, redacted.
		expect(entries.some(e => e.mod === "api" && /POST \/api\/v1\/auth\/login/.test(e.msg))).toBe(true);
		expect(entries.some(e => e.mod === "api" && e.password === "[redacted]")).toBe(true);
	});

	it("writes text lines in Moleculer's short look, with the request id, and no secrets", async () => {
		const sink = consoleSink();
		let sent;
		let shop: Shop | undefined;
		try {
			// BROKER at info (LOG_LEVELS): a stopped gateway's debounced route rebuild would log a debug line after the test.
			shop = await startShop(LOUD_SERVICES, {
				logger: loggerOptions({ ...debug, levels: { BROKER: "info" }, format: "text", colors: false }),
			});
			sent = await exercise(shop);
		} finally {
			await shop?.stop();
			sink.stop();
		}
		expectNoSecrets(sink.lines, sent);
		expect(sink.lines.some(line => / DEBUG .* API: /.test(line))).toBe(true);
		expect(sink.lines.some(line => / DEBUG .* BROKER: /.test(line))).toBe(false);
		const ofRequest = sink.lines.filter(line => line.includes(`[${sent.requestId}]`));
		expect(ofRequest.length).toBeGreaterThan(3);
		for (const line of ofRequest) {
			expect(line).toMatch(
				new RegExp(
					`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\] [A-Z]+ +${shop!.broker.nodeID} \\[${sent.requestId}\\] [A-Z.$-]+: `,
				),
			);
		}
	});

	it("keeps an error logged Moleculer's way (message, error) in the JSON line, scrubbed", async () => {
		const sink = jsonSink();
		const { ServiceBroker } = await import("moleculer");
		const broker = new ServiceBroker({
			nodeID: "log-unit",
			logger: loggerOptions({ ...debug, format: "json", destination: sink.stream }),
		});
		broker.getLogger("unit").error("charge failed", new Error("declined for pm_card_visa"), { orderId: "o-1" });
		const entry = JSON.parse(sink.lines.find(line => line.includes("charge failed"))!);
		expect(entry.err.message).toBe("declined for pm_[redacted]");
		expect(entry.err.stack).toContain("Error: declined");
		expect(entry.orderId).toBe("o-1");
	});
});

describe("the scrubber", () => {
	const scrub = createScrubber(["my-jwt-secret-value"]);

	it("redacts secret keys at any depth and secret-shaped text, and keeps the rest", () => {
		expect(
			scrub({
				user: { email: "a@b.c", passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$abc$def" },
				params: { password: "hunter22", paymentMethod: "pm_card_visa", quantity: 2 },
				note: "Bearer abc.def and the key my-jwt-secret-value",
			}),
		).toEqual({
			user: { email: "a@b.c", passwordHash: "[redacted]" },
			params: { password: "[redacted]", paymentMethod: "[redacted]", quantity: 2 },
			note: "Bearer [redacted] and the key [redacted]",
		});
	});
});
