/**
 * Bad input through the real gateway: the right 4xx with a reason, no stack
 * trace, no secret in any answer, and nothing changed.
 */
import { mongo } from "mongoose";
import { startShop, type HttpResponse, type Shop } from "../helpers/shop";

let shop: Shop;
let customer: { token: string; user: any };
let product: any;
const responses: HttpResponse[] = [];

/** Every response of this file goes through here, so the final checks see them all. */
async function call(method: string, path: string, opts: Parameters<Shop["request"]>[2] = {}) {
	const res = await shop.request(method, path, opts);
	responses.push(res);
	return res;
}

async function stockOf(id: string): Promise<number> {
	return (await call("GET", `/api/v1/products/${id}`)).body.stock;
}

beforeAll(async () => {
	shop = await startShop();
	customer = await shop.signUp();
	product = (await call("GET", "/api/v1/products?q=mug")).body.rows[0];
});
afterAll(() => shop.stop());

describe("400 and 413: the body itself", () => {
	it("refuses malformed JSON", async () => {
		const res = await call("POST", "/api/v1/auth/login", { raw: '{"email": "a@b.c", ' });
		expect(res.status).toBe(400);
		expect(res.body).toMatchObject({ code: 400, type: "MALFORMED_JSON" });
	});

	it("refuses __proto__, constructor and prototype keys", async () => {
		for (const raw of [
			'{"__proto__": {"role": "admin"}, "name": "x", "email": "p@x.io", "password": "password123"}',
			'{"preferences": {"constructor": {}}}',
		]) {
			const res = await call("POST", "/api/v1/auth/register", { raw });
			expect(res.status).toBe(400);
			expect(res.body.message).toMatch(/not allowed/);
		}
		expect(
			(await call("POST", "/api/v1/auth/login", { body: { email: "p@x.io", password: "password123" } })).status,
		).toBe(401);
	});

	it("refuses a body above the size limit with 413", async () => {
		const res = await call("POST", "/api/v1/auth/register", {
			body: { name: "x".repeat(100_000), email: "big@x.io", password: "password123" },
		});
		expect(res.status).toBe(413);
		expect(res.body.type).toBe("PAYLOAD_TOO_LARGE");
	});

	it("refuses a body that claims an encoding it does not have", async () => {
		for (const encoding of ["gzip", "deflate", "br", "x-unknown"]) {
			const res = await call("POST", "/api/v1/auth/login", {
				raw: '{"email":"a@b.c","password":"x"}',
				headers: { "content-encoding": encoding },
			});
			expect([encoding, res.status >= 400 && res.status < 500]).toEqual([encoding, true]);
		}
	});

	it("refuses query parameters on writes, so they cannot override the body", async () => {
		const res = await call(
			"POST",
			`/api/v1/auth/login?email=${encodeURIComponent(customer.user.email)}&password=x`,
			{ body: {} },
		);
		expect(res.status).toBe(400);
	});

	it("refuses a malformed Idempotency-Key header", async () => {
		const res = await call("POST", "/api/v1/orders", {
			token: customer.token,
			headers: { "idempotency-key": "x".repeat(300) },
			body: { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 1 }] }, // valid but for the key
		});
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/Idempotency-Key/);
		expect(await stockOf(product.id)).toBe(product.stock);
	});
});

describe("422: validation names the failing fields", () => {
	const order = (items: unknown, extra: object = {}) =>
		call("POST", "/api/v1/orders", {
			token: customer.token,
			body: { paymentMethod: "pm_card_visa", items, ...extra },
		});
	const fields = (res: HttpResponse) => res.body.data.map((d: any) => d.field ?? d.type);

	it.each([
		["a negative quantity", [{ productId: "p1", quantity: -1 }], "items[0].quantity"],
		["a fractional quantity", [{ productId: "p1", quantity: 1.5 }], "items[0].quantity"],
		["a huge quantity", [{ productId: "p1", quantity: 1e12 }], "items[0].quantity"],
		["a string quantity", [{ productId: "p1", quantity: "2" }], "items[0].quantity"],
		["an object id", [{ productId: { $gt: "" }, quantity: 1 }], "items[0].productId"],
		["an overlong id", [{ productId: "x".repeat(65), quantity: 1 }], "items[0].productId"],
		["an empty list", [], "items"],
		["an unknown line field", [{ productId: "p1", quantity: 1, price: 1 }], "items[0]"],
	])("refuses an order with %s", async (_what, items, field) => {
		const res = await order(items);
		expect(res.status).toBe(422);
		expect(res.body.type).toBe("VALIDATION_ERROR");
		expect(fields(res)).toContain(field);
	});

	it("refuses unknown top-level fields and missing ones", async () => {
		expect(fields(await order([{ productId: product.id, quantity: 1 }], { total: 1 }))).toContain("objectStrict");
		const missing = await call("POST", "/api/v1/auth/register", { body: { email: "m@x.io" } });
		expect(missing.status).toBe(422);
		expect(fields(missing)).toEqual(expect.arrayContaining(["name", "password"]));
	});

	it("refuses both and neither of items and fromCart", async () => {
		const both = await order([{ productId: product.id, quantity: 1 }], { fromCart: true });
		expect(both.status).toBe(422);
		expect(both.body.data).toEqual([expect.objectContaining({ type: "oneOf", field: "items" })]); // not EMPTY_CART
		// With a payment method, so that it is refused for the missing lines, not for that.
		const neither = await call("POST", "/api/v1/orders", {
			token: customer.token,
			body: { paymentMethod: "pm_card_visa" },
		});
		expect(neither.status).toBe(422);
		expect(neither.body.data).toEqual([expect.objectContaining({ type: "oneOf", field: "items" })]);
	});

	it("refuses an otherwise valid order without a paymentMethod, naming that field", async () => {
		const res = await call("POST", "/api/v1/orders", {
			token: customer.token,
			body: { items: [{ productId: product.id, quantity: 1 }] },
		});
		expect(res.status).toBe(422);
		expect(res.body.type).toBe("VALIDATION_ERROR");
		expect(fields(res)).toEqual(["paymentMethod"]);
		expect(await stockOf(product.id)).toBe(product.stock);
	});

	it("refuses wrong types, overlong strings and operator objects", async () => {
		const cases: Array<[string, string, object]> = [
			["POST", "/api/v1/auth/login", { email: { $gt: "" }, password: "x" }],
			["POST", "/api/v1/auth/register", { name: "n".repeat(101), email: "long@x.io", password: "password123" }],
			["POST", "/api/v1/auth/register", { name: "n", email: "not-an-email", password: "password123" }],
			["PATCH", "/api/v1/users/me", { role: "admin" }],
			["PATCH", "/api/v1/users/me", { preferences: { channels: ["fax"] } }],
			["PUT", `/api/v1/cart/items/${product.id}`, { quantity: 2.5 }],
		];
		for (const [method, path, body] of cases) {
			const res = await call(method, path, { token: customer.token, body });
			expect([method, path, res.status]).toEqual([method, path, 422]);
		}
		expect((await call("GET", "/api/v1/products?minPrice=abc")).status).toBe(422);
		expect((await call("GET", "/api/v1/products?q[$gt]=")).status).toBe(422);
		expect((await call("GET", "/api/v1/users/me", { token: customer.token })).body.role).toBe("customer");
	});

	it("never echoes a submitted password", async () => {
		const res = await call("POST", "/api/v1/auth/register", {
			body: { name: "n", email: "echo@x.io", password: "secret7" },
		});
		expect(res.status).toBe(422);
		expect(res.text).not.toContain("secret7");
	});

	it("refuses invalid product data from admins", async () => {
		const token = await shop.adminToken();
		for (const body of [
			{ sku: "OK-1", name: "Float", price: 9.99, category: "x" },
			{ sku: "OK-2", name: "Negative", price: -1, category: "x" },
			{ sku: "bad sku!", name: "Sku", price: 1, category: "x" },
			{ sku: "OK-3", name: "Stock", price: 1, category: "x", stock: -5 },
		]) {
			expect((await call("POST", "/api/v1/products", { token, body })).status).toBe(422);
		}
		expect((await call("GET", "/api/v1/products?q=OK-")).body.total).toBe(0);
	});
});

describe("401 and 403: who is calling", () => {
	it("needs a valid token for signed-in routes", async () => {
		expect((await call("GET", "/api/v1/cart")).status).toBe(401);
		expect((await call("GET", "/api/v1/cart", { token: "not.a.jwt" })).status).toBe(401);
		expect((await call("GET", "/api/v1/cart", { headers: { authorization: "Basic abc" } })).status).toBe(401);
		const [h, p] = customer.token.split(".");
		expect((await call("GET", "/api/v1/cart", { token: `${h}.${p}.forged-signature` })).status).toBe(401);
		expect((await call("GET", "/api/v1/cart", { token: "x".repeat(5000) })).status).toBe(401);
	});

	it("answers a wrong password and an unknown email the same way", async () => {
		const wrongPassword = await call("POST", "/api/v1/auth/login", {
			body: { email: customer.user.email, password: "wrong password" },
		});
		const unknownEmail = await call("POST", "/api/v1/auth/login", {
			body: { email: "nobody@x.io", password: "wrong password" },
		});
		expect(wrongPassword.status).toBe(401);
		expect(unknownEmail.body).toEqual(wrongPassword.body);
	});

	it("keeps admin routes for admins", async () => {
		expect((await call("GET", "/api/v1/users", { token: customer.token })).status).toBe(403);
		const create = await call("POST", "/api/v1/products", {
			token: customer.token,
			body: { sku: "HACK-1", name: "x", price: 1, category: "x" },
		});
		expect(create.status).toBe(403);
		expect(
			(await call("PATCH", `/api/v1/products/${product.id}`, { token: customer.token, body: { stock: 0 } }))
				.status,
		).toBe(403);
		expect((await call("DELETE", `/api/v1/products/${product.id}`)).status).toBe(401);
		for (const path of [
			"/api/v1/analytics/summary",
			"/api/v1/analytics/products/top",
			"/api/v1/admin/dead-letters",
		]) {
			expect((await call("GET", path, { token: customer.token })).status).toBe(403);
		}
		expect((await call("POST", "/api/v1/admin/dead-letters/1/redrive", { token: customer.token })).status).toBe(
			403,
		);
		expect(await stockOf(product.id)).toBe(product.stock);
	});
});

describe("features a mode lacks, and bad report queries", () => {
	it("says there is no dead-letter queue without durable events (the default mode)", async () => {
		const admin = await shop.adminToken();
		const list = await call("GET", "/api/v1/admin/dead-letters", { token: admin });
		expect(list.status).toBe(200);
		expect(list.body).toMatchObject({
			durable: false,
			rows: [],
			message: expect.stringContaining("TRANSPORTER=nats://"),
		});
		const redrive = await call("POST", "/api/v1/admin/dead-letters/1/redrive", { token: admin });
		expect(redrive.status).toBe(409);
		expect(redrive.body.type).toBe("NO_DEAD_LETTER_QUEUE");
	});

	it("answers 4xx for bad ids and paging on the order, invoice, notification and dead-letter routes", async () => {
		const admin = await shop.adminToken();
		expect((await call("POST", "/api/v1/orders/not%20an%20id/cancel", { token: customer.token })).status).toBe(422);
		expect((await call("POST", "/api/v1/orders/unknown0000000000/cancel", { token: customer.token })).status).toBe(
			404,
		);
		expect(
			(
				await call("POST", "/api/v1/orders/unknown0000000000/cancel", {
					token: customer.token,
					body: { reason: "x" },
				})
			).status,
		).toBe(422);
		expect((await call("GET", "/api/v1/orders/unknown0000000000/invoice", { token: customer.token })).status).toBe(
			404,
		);
		expect((await call("GET", "/api/v1/notifications?pageSize=1000", { token: customer.token })).status).toBe(422);
		expect((await call("GET", "/api/v1/notifications")).status).toBe(401);
		expect((await call("POST", "/api/v1/admin/dead-letters/abc/redrive", { token: admin })).status).toBe(422);
		expect((await call("GET", "/api/v1/admin/dead-letters?limit=0", { token: admin })).status).toBe(422);
	});

	it("refuses impossible report ranges with 422", async () => {
		const admin = await shop.adminToken();
		expect((await call("GET", "/api/v1/analytics/summary?from=2026-02-30", { token: admin })).status).toBe(422);
		expect(
			(await call("GET", "/api/v1/analytics/summary?from=2026-03-02&to=2026-03-01", { token: admin })).status,
		).toBe(422);
		expect((await call("GET", "/api/v1/analytics/products/top?by=price", { token: admin })).status).toBe(422);
	});
});

describe("404 and 409", () => {
	it("answers 404 for unknown routes, products and ids", async () => {
		expect((await call("GET", "/api/v1/nothing-here")).status).toBe(404);
		expect((await call("GET", "/api/v1/products/doesNotExist1234")).status).toBe(404);
		expect(
			(await call("PUT", "/api/v1/cart/items/doesNotExist1234", { token: customer.token, body: { quantity: 1 } }))
				.status,
		).toBe(404);
		const res = await call("POST", "/api/v1/orders", {
			token: customer.token,
			body: {
				paymentMethod: "pm_card_visa",
				items: [
					{ productId: product.id, quantity: 1 },
					{ productId: "doesNotExist1234", quantity: 1 },
				],
			},
		});
		expect(res.status).toBe(404);
		expect(await stockOf(product.id)).toBe(product.stock);
	});

	it("hides other users' orders behind a 404", async () => {
		const order = await call("POST", "/api/v1/orders", {
			token: customer.token,
			body: { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 1 }] },
		});
		expect(order.status).toBe(201);
		const other = await shop.signUp();
		expect((await call("GET", `/api/v1/orders/${order.body.id}`, { token: other.token })).status).toBe(404);
		expect((await call("GET", "/api/v1/orders", { token: other.token })).body.total).toBe(0);
		await call("PATCH", `/api/v1/products/${product.id}`, {
			token: await shop.adminToken(),
			body: { stock: product.stock },
		});
	});

	it("answers 409 for a taken email", async () => {
		const res = await call("POST", "/api/v1/auth/register", {
			body: { name: "Again", email: customer.user.email.toUpperCase(), password: "password123" },
		});
		expect(res.status).toBe(409);
		expect(res.body.type).toBe("EMAIL_TAKEN");
	});

	it("answers 409 with the short items and reserves nothing", async () => {
		const { body: other } = await call("GET", "/api/v1/products?q=sticker");
		const sticker = other.rows[0];
		const res = await call("POST", "/api/v1/orders", {
			token: customer.token,
			body: {
				paymentMethod: "pm_card_visa",
				items: [
					{ productId: sticker.id, quantity: 2 },
					{ productId: product.id, quantity: product.stock + 1 },
				],
			},
		});
		expect(res.status).toBe(409);
		expect(res.body).toMatchObject({
			type: "OUT_OF_STOCK",
			data: { items: [{ productId: product.id, quantity: product.stock + 1, available: product.stock }] },
		});
		expect(await stockOf(sticker.id)).toBe(sticker.stock);
		expect(await stockOf(product.id)).toBe(product.stock);
		expect((await call("GET", "/api/v1/orders", { token: customer.token })).body.total).toBe(1);
	});

	it("refuses to reuse an Idempotency-Key for another request", async () => {
		const headers = { "idempotency-key": "reuse-me" };
		expect(
			(
				await call("POST", "/api/v1/orders", {
					token: customer.token,
					headers,
					body: { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 1 }] },
				})
			).status,
		).toBe(201);
		const res = await call("POST", "/api/v1/orders", {
			token: customer.token,
			headers,
			body: { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 2 }] },
		});
		expect(res.status).toBe(422);
		expect(res.body.type).toBe("IDEMPOTENCY_KEY_REUSED");
	});
});

describe("a store failure", () => {
	it("is a 500 that says nothing about the store, whatever code the store gave it", async () => {
		const products = shop.broker.getLocalService("products") as any;
		for (const code of [449, 11000]) {
			const find = jest
				.spyOn(products.adapter, "find")
				.mockRejectedValueOnce(new mongo.MongoServerError({ message: `store failure ${code}`, code }));
			try {
				const res = await shop.request("GET", "/api/v1/products?q=store-failure");
				expect(res.status).toBe(500);
				expect(res.body).toEqual({
					code: 500,
					name: "InternalServerError",
					message: "Something went wrong. Please try again.",
					type: "INTERNAL_ERROR",
				});
			} finally {
				find.mockRestore();
			}
		}
	});
});

describe("every answer of this file", () => {
	it("had no 5xx, no stack trace and no password hash", () => {
		expect(responses.length).toBeGreaterThan(40);
		for (const res of responses) {
			expect(res.status).toBeLessThan(500);
			expect(res.text).not.toMatch(/\n\s+at |stack|\$argon2|passwordHash/);
		}
	});
});
