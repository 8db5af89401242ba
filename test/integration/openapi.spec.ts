/**
 * The generated API contract against the running gateway: every alias is documented, every
 * documented example request passes its action's own validator, the README's curl walkthrough
 * answers what the document says, and the docs page is served from local files only.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startShop, type HttpResponse, type Shop } from "../helpers/shop";

type Schema = Record<string, any>;

let shop: Shop;
let doc: Schema;

beforeAll(async () => {
	shop = await startShop();
	const res = await shop.request("GET", "/api/v1/openapi.json");
	expect(res.status).toBe(200);
	doc = res.body;
});
afterAll(() => shop.stop());

/** A small JSON Schema check (the subset platform/openapi.ts writes): the paths that do not match. */
function mismatches(schema: Schema, value: unknown, at = "$"): string[] {
	if (schema.$ref) return mismatches(doc.components.schemas[schema.$ref.split("/").pop()], value, at);
	if (value === null && schema.nullable) return [];
	const errors: string[] = [];
	const kind = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
	if (schema.type === "integer" ? !Number.isInteger(value) : schema.type && schema.type !== kind)
		return [`${at}: ${kind}, not ${schema.type}`];
	if (schema.enum && !schema.enum.some((v: unknown) => v === value))
		errors.push(`${at}: ${String(value)} not in enum`);
	if (typeof value === "string") {
		if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: too short`);
		if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at}: too long`);
		if (schema.pattern && !new RegExp(schema.pattern).test(value)) errors.push(`${at}: not ${schema.pattern}`);
	}
	if (typeof value === "number") {
		if (
			schema.minimum !== undefined &&
			(schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)
		)
			errors.push(`${at}: under the minimum`);
		if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: over the maximum`);
	}
	if (Array.isArray(value)) {
		if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: too few items`);
		if (schema.items) value.forEach((item, i) => errors.push(...mismatches(schema.items, item, `${at}[${i}]`)));
	}
	if (kind === "object") {
		const obj = value as Record<string, unknown>;
		for (const key of schema.required ?? []) if (!(key in obj)) errors.push(`${at}.${key}: missing`);
		for (const [key, sub] of Object.entries<Schema>(schema.properties ?? {}))
			if (key in obj) errors.push(...mismatches(sub, obj[key], `${at}.${key}`));
		if (schema.additionalProperties === false)
			for (const key of Object.keys(obj))
				if (!(key in (schema.properties ?? {}))) errors.push(`${at}.${key}: not allowed`);
	}
	if (schema.oneOf && !schema.oneOf.some((s: Schema) => mismatches(s, value, at).length === 0))
		errors.push(`${at}: matches no alternative`);
	return errors;
}

/** Every (method, path template) the document has. */
function operations(): { method: string; path: string; op: Schema }[] {
	return Object.entries<Schema>(doc.paths).flatMap(([path, ops]) =>
		Object.entries<Schema>(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
	);
}

/** The documented operation a concrete request hits. */
function operationFor(method: string, url: string) {
	const path = url.split("?")[0];
	const found = operations().find(
		o => o.method === method && new RegExp(`^${o.path.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path),
	);
	if (!found) throw new Error(`${method} ${path} is not documented`);
	return found;
}

/** The answer's status is documented for its operation and its body has the documented shape. */
function expectDocumented(method: string, url: string, res: HttpResponse) {
	const { op } = operationFor(method, url);
	const response = op.responses[String(res.status)];
	expect({ method, url, status: res.status, documented: !!response }).toMatchObject({ documented: true });
	const schema = response.content?.["application/json"]?.schema;
	if (schema) expect({ method, url, problems: mismatches(schema, res.body) }).toEqual({ method, url, problems: [] });
	else expect(res.text).toBe("");
	return res;
}

describe("the OpenAPI document", () => {
	it("is OpenAPI 3 and documents every alias of the gateway, with its access level", async () => {
		expect(doc.openapi).toMatch(/^3\./);
		const aliases: { actionName: string | null; fullPath: string; methods: string }[] =
			await shop.broker.call("api.listAliases");
		const documented = new Set(operations().map(o => `${o.method} ${o.path}`));
		const notPages = aliases.filter(a => !a.fullPath.startsWith("/api/v1/docs"));
		expect(notPages.length).toBeGreaterThan(20);
		for (const alias of notPages) {
			const key = `${alias.methods} ${alias.fullPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`;
			expect({ key, documented: documented.has(key) }).toEqual({ key, documented: true });
		}
		// and nothing that is not routed
		expect(documented.size).toBe(notPages.length);

		// OpenAPI's own rules: unique operation ids, a path parameter for every {name} of a path
		const ids = operations().map(o => o.op.operationId);
		expect(new Set(ids).size).toBe(ids.length);
		for (const { path, op } of operations()) {
			const names = [...path.matchAll(/\{([^}]+)\}/g)].map(m => m[1]);
			const inPath = (op.parameters ?? []).filter((p: Schema) => p.in === "path").map((p: Schema) => p.name);
			expect({ path, inPath }).toEqual({ path, inPath: names });
		}

		const access = (method: string, path: string) => doc.paths[path][method];
		expect(access("post", "/api/v1/auth/register").security).toEqual([]);
		expect(access("post", "/api/v1/orders").security).toEqual([{ bearerAuth: [] }]);
		expect(access("post", "/api/v1/orders").responses["401"]).toBeDefined();
		expect(access("post", "/api/v1/products").responses["403"]).toBeDefined();
		expect(access("get", "/api/v1/products").responses["401"]).toBeUndefined();
		expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
	});

	it("takes parameters from the action schemas: path, query, body, required, constraints", () => {
		const register = doc.paths["/api/v1/auth/register"].post.requestBody.content["application/json"].schema;
		expect(register.required).toEqual(expect.arrayContaining(["name", "email", "password"]));
		expect(register.properties.email).toMatchObject({ type: "string", format: "email" });
		expect(register.properties.password).toMatchObject({ minLength: 8, maxLength: 128 });
		expect(register.additionalProperties).toBe(false);

		const view = doc.paths["/api/v1/products/{id}"].get.parameters;
		expect(view).toEqual([expect.objectContaining({ name: "id", in: "path", required: true })]);
		expect(view[0].schema).toMatchObject({ type: "string", pattern: "^[A-Za-z0-9_-]+$", maxLength: 64 });

		const list = doc.paths["/api/v1/orders"].get.parameters;
		const pageSize = list.find((p: Schema) => p.name === "pageSize");
		expect(pageSize).toMatchObject({ in: "query", required: false });
		expect(pageSize.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 20 });

		const checkout = doc.paths["/api/v1/orders"].post.requestBody.content["application/json"].schema;
		expect(checkout.properties.items).toMatchObject({ type: "array", items: { type: "object" } });
		expect(checkout.properties.fromCart).toEqual({ enum: [true] });
		expect(checkout.required).toEqual(["paymentMethod"]);
	});

	it("has an example request for every action operation, and it passes the action's own validator", () => {
		const actions = shop.broker.registry.getActionList({ onlyLocal: true }) as any[];
		for (const { op } of operations().filter(o => o.op["x-moleculer-action"])) {
			const name = op["x-moleculer-action"];
			const example = op["x-example-request"];
			expect({ name, hasExample: example !== undefined }).toEqual({ name, hasExample: true });
			const params = actions.find(a => a.name === name).action.params ?? {};
			const check = shop.broker.validator!.compile(params) as (p: object) => true | object[];
			expect({ name, result: check(structuredClone(example)) }).toEqual({ name, result: true });
			// the body example also fits the document's own request schema
			const body = op.requestBody?.content["application/json"];
			if (body) expect({ name, problems: mismatches(body.schema, body.example) }).toEqual({ name, problems: [] });
		}
	});
});

describe("the README's curl walkthrough", () => {
	/** `METHOD /path-template` of each curl command in "## A purchase with curl", in order. */
	function readmeCalls(): string[] {
		const readme = readFileSync(join(__dirname, "../../README.md"), "utf8");
		const section = readme.split("## A purchase with curl")[1].split("\n## ")[0];
		const script = section.split("```sh")[2].split("```")[0].replace(/\\\n/g, " ");
		return script
			.split("\n")
			.filter(line => /\bcurl\b/.test(line))
			.map(line => {
				const method = /-X (\w+)/.exec(line)?.[1] ?? "GET";
				const url = /\$API(\/[^"\s]*)/.exec(line)![1].replace(/\$[A-Z]+/g, "x");
				return `${method} ${operationFor(method, `/api/v1${url}`).path}`;
			});
	}

	it("answers each documented request with a documented status and shape", async () => {
		const done: string[] = [];
		const call = async (method: string, url: string, opts: Parameters<Shop["request"]>[2] = {}) => {
			const res = await shop.request(method, url, opts);
			done.push(`${method} ${operationFor(method, url).path}`);
			return expectDocumented(method, url, res);
		};
		const api = "/api/v1";
		const registered = await call("POST", `${api}/auth/register`, {
			body: { name: "Ada", email: "ada@example.com", password: "correct horse battery" },
		});
		expect(registered.status).toBe(201);
		const token = registered.body.token;

		const browse = await call("GET", `${api}/products?category=kitchen&maxPrice=2000&sort=-price&pageSize=5`);
		expect(browse.status).toBe(200);
		const search = await call("GET", `${api}/products?q=mug`);
		const mug = search.body.rows[0].id;

		expect((await call("PUT", `${api}/cart/items/${mug}`, { token, body: { quantity: 2 } })).status).toBe(200);
		const order = await call("POST", `${api}/orders`, {
			token,
			headers: { "Idempotency-Key": "ada-order-1" },
			body: { fromCart: true, paymentMethod: "pm_card_visa" },
		});
		expect(order.status).toBe(201);
		expect(order.body.status).toBe("paid");
		const id = order.body.id;

		expect((await call("GET", `${api}/orders/${id}/invoice`, { token })).status).toBe(200);
		expect((await call("GET", `${api}/orders`, { token })).body.total).toBe(1);
		expect((await call("GET", `${api}/notifications`, { token })).status).toBe(200);

		const declined = await call("POST", `${api}/orders`, {
			token,
			body: { items: [{ productId: mug, quantity: 1 }], paymentMethod: "pm_card_chargeDeclined" },
		});
		expect(declined.status).toBe(402);
		expect(declined.body.type).toBe("PAYMENT_FAILED");

		const cancelled = await call("POST", `${api}/orders/${id}/cancel`, { token });
		expect(cancelled.status).toBe(200);
		expect(cancelled.body.status).toBe("cancelled");

		const admin = await call("POST", `${api}/auth/login`, {
			body: { email: "admin@moleshop.test", password: "admin-password" },
		});
		expect(admin.status).toBe(200);
		const created = await call("POST", `${api}/products`, {
			token: admin.body.token,
			body: { sku: "LAMP-01", name: "Desk Lamp", price: 3999, category: "home", stock: 5 },
		});
		expect(created.status).toBe(201);
		const summary = await call("GET", `${api}/analytics/summary?from=2026-11-01&to=2026-11-30`, {
			token: admin.body.token,
		});
		expect(summary.status).toBe(200);
		const top = await call("GET", `${api}/analytics/products/top?by=revenue&limit=5`, { token: admin.body.token });
		expect(top.status).toBe(200);

		// the same requests, in the same order, as the README shows
		expect(done).toEqual(readmeCalls());
	});

	it("documents the refusals it answers with the error shape", async () => {
		const url = "/api/v1/orders";
		const anonymous = expectDocumented("POST", url, await shop.request("POST", url, { body: {} }));
		expect(anonymous.status).toBe(401);
		const { token } = await shop.signUp();
		const invalid = expectDocumented("POST", url, await shop.request("POST", url, { token, body: { nope: 1 } }));
		expect(invalid.status).toBe(422);
		const missing = expectDocumented(
			"GET",
			"/api/v1/orders/o_404",
			await shop.request("GET", "/api/v1/orders/o_404", { token }),
		);
		expect(missing.status).toBe(404);
	});
});

describe("the docs page", () => {
	it("is served with its own assets, a strict CSP and no external URL", async () => {
		const page = await shop.request("GET", "/api/v1/docs");
		expect(page.status).toBe(200);
		expect(page.headers.get("content-type")).toMatch(/^text\/html/);
		const csp = page.headers.get("content-security-policy")!;
		expect(csp).toContain("script-src 'self'");
		expect(csp).toContain("default-src 'none'");
		expect(page.text).not.toMatch(/https?:\/\//);
		expect(page.text).not.toMatch(/<script>|<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
		const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map(m => m[1]);
		expect(assets).toEqual(
			expect.arrayContaining([
				"/api/v1/docs/swagger-ui.css",
				"/api/v1/docs/swagger-ui-bundle.js",
				"/api/v1/docs/docs-init.js",
			]),
		);
		for (const asset of assets) {
			const res = await shop.request("GET", asset);
			expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
			expect(res.headers.get("content-type")).toMatch(
				asset.endsWith(".css") ? /^text\/css/ : /^application\/javascript/,
			);
			expect(res.text.length).toBeGreaterThan(asset.endsWith("docs-init.js") ? 50 : 10_000);
		}
		const init = await shop.request("GET", "/api/v1/docs/docs-init.js");
		expect(init.text).toContain('"/api/v1/openapi.json"');
	});

	it("serves nothing else from the package or the disk", async () => {
		for (const file of ["package.json", "index.html", "..%2F..%2Fpackage.json", "swagger-ui.js.map"]) {
			const res = await shop.request("GET", `/api/v1/docs/${file}`);
			expect({ file, status: res.status }).toEqual({ file, status: 404 });
			expect(res.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
		}
	});
});
