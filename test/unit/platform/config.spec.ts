/** The one reader of the environment (platform/config.ts), with no broker. */
import { loadConfig } from "../../../platform/config";

describe("loadConfig", () => {
	it("has defaults for a bare environment", () => {
		const config = loadConfig({});
		expect(config).toMatchObject({
			port: 3000,
			env: "development",
			isProduction: false,
			mongoUri: undefined,
			logLevel: "info",
			bodyLimit: "64kb",
		});
		expect(config.dataDir).toMatch(/data$/);
	});

	it("reads and normalises the environment", () => {
		const config = loadConfig({
			NODE_ENV: "production",
			PORT: "8080",
			MONGO_URI: "mongodb://db/shop",
			ADMIN_EMAIL: "Admin@X.io",
			LOG_LEVEL: "DEBUG",
		});
		expect(config).toMatchObject({
			port: 8080,
			isProduction: true,
			mongoUri: "mongodb://db/shop",
			adminEmail: "admin@x.io",
			logLevel: "debug",
		});
	});

	it("refuses values it cannot use", () => {
		expect(() => loadConfig({ PORT: "eighty" })).toThrow(/PORT/);
		expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
	});
});

describe("discount codes in the configuration", () => {
	it("come from DISCOUNT_CODES when it is set", () => {
		const codes = loadConfig({
			DISCOUNT_CODES: '[{"code":"SPRING15","kind":"percent","value":15,"validUntil":"2027-04-01"}]',
		}).pricing.discountCodes;
		expect(codes).toEqual([{ code: "SPRING15", kind: "percent", value: 15, validUntil: "2027-04-01" }]);
	});

	it("refuse malformed definitions", () => {
		for (const bad of [
			"not json",
			'{"code":"X"}',
			'[{"code":"A","kind":"percent","value":150}]',
			'[{"code":"A","kind":"fixed","value":1.5}]',
			'[{"code":"A","kind":"fixed","value":5,"validUntil":"someday"}]',
		]) {
			expect(() => loadConfig({ DISCOUNT_CODES: bad })).toThrow(/DISCOUNT_CODES/);
		}
	});
});

describe("log settings in the configuration", () => {
	it("log text in development and JSON in production unless LOG_FORMAT says otherwise", () => {
		expect(loadConfig({}).logFormat).toBe("text");
		expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "s" }).logFormat).toBe("json");
		expect(loadConfig({ LOG_FORMAT: "JSON" }).logFormat).toBe("json");
		expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "s", LOG_FORMAT: "text" }).logFormat).toBe("text");
		expect(() => loadConfig({ LOG_FORMAT: "xml" })).toThrow(/LOG_FORMAT must be json or text, got "xml"/);
	});

	it("read per-module levels from LOG_LEVELS, module names upper-cased", () => {
		expect(loadConfig({}).logLevels).toEqual({});
		expect(loadConfig({ LOG_LEVELS: "orders=DEBUG, TRANSIT=warn,v2.*=error" }).logLevels).toEqual({
			ORDERS: "debug",
			TRANSIT: "warn",
			"V2.*": "error",
		});
	});

	it("refuse a malformed LOG_LEVELS, naming the bad pair", () => {
		expect(() => loadConfig({ LOG_LEVELS: "ORDERS=loud" })).toThrow(
			/LOG_LEVELS \(ORDERS\) must be one of .*got "loud"/,
		);
		expect(() => loadConfig({ LOG_LEVELS: "ORDERS" })).toThrow(/LOG_LEVELS must look like .*got "ORDERS"/);
		expect(() => loadConfig({ LOG_LEVELS: "A=info=debug" })).toThrow(/LOG_LEVELS must look like/);
		expect(() => loadConfig({ LOG_LEVELS: "=info" })).toThrow(/LOG_LEVELS must look like/);
	});
});
