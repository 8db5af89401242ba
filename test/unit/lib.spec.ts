import { ServiceBroker } from "moleculer";
import { loadConfig } from "../../lib/config";
import { HealthEndpoint } from "../../lib/health-endpoint";
import { freePort } from "../helpers/process";
import { mergeItems, priceLines } from "../../lib/pricing";

describe("loadConfig", () => {
	it("has defaults for a bare environment", () => {
		const config = loadConfig({});
		expect(config).toMatchObject({ port: 3000, env: "development", isProduction: false, mongoUri: undefined, logLevel: "info", bodyLimit: "64kb" });
		expect(config.dataDir).toMatch(/data$/);
	});

	it("reads and normalises the environment", () => {
		const config = loadConfig({ NODE_ENV: "production", PORT: "8080", MONGO_URI: "mongodb://db/shop", ADMIN_EMAIL: "Admin@X.io", LOG_LEVEL: "DEBUG" });
		expect(config).toMatchObject({ port: 8080, isProduction: true, mongoUri: "mongodb://db/shop", adminEmail: "admin@x.io", logLevel: "debug" });
	});

	it("refuses values it cannot use", () => {
		expect(() => loadConfig({ PORT: "eighty" })).toThrow(/PORT/);
		expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
	});
});

describe("pricing", () => {
	const products = [
		{ id: "a", sku: "A", name: "A", price: 199, currency: "USD" },
		{ id: "b", sku: "B", name: "B", price: 1000, currency: "USD" },
	];

	it("adds integer cents exactly", () => {
		const priced = priceLines([{ productId: "a", quantity: 3 }, { productId: "b", quantity: 1 }], products);
		expect(priced).toMatchObject({ currency: "USD", missing: [], mixedCurrencies: false });
		expect(priced.items.reduce((sum, line) => sum + line.lineTotal, 0)).toBe(1597);
		expect(priced.items[0]).toEqual({ productId: "a", sku: "A", name: "A", unitPrice: 199, quantity: 3, lineTotal: 597 });
	});

	it("reports missing products and mixed currencies", () => {
		const priced = priceLines([{ productId: "a", quantity: 1 }, { productId: "x", quantity: 1 }, { productId: "e", quantity: 1 }], [...products, { id: "e", sku: "E", name: "E", price: 5, currency: "EUR" }]);
		expect(priced.missing).toEqual(["x"]);
		expect(priced.mixedCurrencies).toBe(true);
	});

	it("merges repeated lines", () => {
		expect(mergeItems([{ productId: "a", quantity: 1 }, { productId: "b", quantity: 2 }, { productId: "a", quantity: 3 }]))
			.toEqual([{ productId: "a", quantity: 4 }, { productId: "b", quantity: 2 }]);
	});
});

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
