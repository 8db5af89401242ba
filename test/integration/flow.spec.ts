/** The whole purchase flow through the real gateway over HTTP. */
import { Errors } from "moleculer";
import { ALL_SERVICES, startBroker, startShop, type Shop } from "../helpers/shop";

let shop: Shop;

beforeAll(async () => {
	shop = await startShop();
});
afterAll(() => shop.stop());

describe("purchase flow", () => {
	it("register → login → browse → cart → checkout → orders", async () => {
		const email = "flow@moleshop.test";
		const password = "a long enough password";

		const registered = await shop.request("POST", "/api/v1/auth/register", {
			body: { name: "Flow", email: "Flow@Moleshop.test", password },
		});
		expect(registered.status).toBe(201);
		expect(registered.headers.get("location")).toBe("/api/v1/users/me");
		expect(registered.body.user).toMatchObject({ name: "Flow", email, role: "customer" });
		expect(typeof registered.body.user.id).toBe("string");

		const login = await shop.request("POST", "/api/v1/auth/login", { body: { email, password } });
		expect(login.status).toBe(200);
		const token = login.body.token;
		expect((await shop.request("GET", "/api/v1/users/me", { token })).body.email).toBe(email);

		const catalog = await shop.request("GET", "/api/v1/products?category=kitchen&sort=-price");
		expect(catalog.status).toBe(200);
		expect(catalog.body.rows.length).toBeGreaterThan(1);
		expect(catalog.body.rows.every((p: any) => p.category === "kitchen")).toBe(true);
		const [bottle, mug] = catalog.body.rows;
		expect(bottle.price).toBeGreaterThanOrEqual(mug.price);

		await shop.request("PUT", `/api/v1/cart/items/${bottle.id}`, { token, body: { quantity: 1 } });
		const cart = await shop.request("PUT", `/api/v1/cart/items/${mug.id}`, { token, body: { quantity: 3 } });
		expect(cart.status).toBe(200);
		const subtotal = bottle.price + 3 * mug.price;
		// Shipping to the default country (US: 4.99, no tax) below the free-shipping threshold.
		expect(cart.body).toMatchObject({
			subtotal,
			discount: 0,
			shipping: 499,
			tax: 0,
			total: subtotal + 499,
			country: "US",
		});
		expect(cart.body.items).toHaveLength(2);

		const order = await shop.request("POST", "/api/v1/orders", {
			token,
			body: { paymentMethod: "pm_card_visa", fromCart: true },
		});
		expect(order.status).toBe(201);
		expect(order.headers.get("location")).toBe(`/api/v1/orders/${order.body.id}`);
		expect(order.body).toMatchObject({
			userId: registered.body.user.id,
			subtotal,
			shipping: 499,
			total: subtotal + 499,
			currency: "USD",
			status: "paid",
		});
		expect(order.body.items).toEqual(
			expect.arrayContaining([
				{
					productId: mug.id,
					sku: mug.sku,
					name: mug.name,
					unitPrice: mug.price,
					quantity: 3,
					lineTotal: 3 * mug.price,
				},
			]),
		);
		expect(order.body).not.toHaveProperty("idempotencyKey");

		// The cart is emptied and the stock is taken.
		expect((await shop.request("GET", "/api/v1/cart", { token })).body).toMatchObject({ items: [], total: 0 });
		expect((await shop.request("GET", `/api/v1/products/${mug.id}`)).body.stock).toBe(mug.stock - 3);

		const orders = await shop.request("GET", "/api/v1/orders", { token });
		expect(orders.body.rows.map((o: any) => o.id)).toEqual([order.body.id]);
		expect((await shop.request("GET", `/api/v1/orders/${order.body.id}`, { token })).body).toEqual(order.body);
	});

	it("prices lines from the catalog, never from the client", async () => {
		const { token } = await shop.signUp();
		const { body: list } = await shop.request("GET", "/api/v1/products?q=sticker");
		const sticker = list.rows[0];
		const res = await shop.request("POST", "/api/v1/orders", {
			token,
			body: { paymentMethod: "pm_card_visa", items: [{ productId: sticker.id, quantity: 2, unitPrice: 1 }] },
		});
		expect(res.status).toBe(422);
		const ok = await shop.request("POST", "/api/v1/orders", {
			token,
			body: {
				paymentMethod: "pm_card_visa",
				items: [
					{ productId: sticker.id, quantity: 1 },
					{ productId: sticker.id, quantity: 1 },
				],
			},
		});
		expect(ok.status).toBe(201);
		expect(ok.body.items).toEqual([
			expect.objectContaining({ quantity: 2, unitPrice: sticker.price, lineTotal: 2 * sticker.price }),
		]);
		expect(ok.body.subtotal).toBe(2 * sticker.price);
	});

	it("quotes the cart for a country and discount code, and the order keeps that quote", async () => {
		const { token } = await shop.signUp();
		const hoodie = (await shop.request("GET", "/api/v1/products?q=hoodie")).body.rows[0];
		await shop.request("PUT", `/api/v1/cart/items/${hoodie.id}`, { token, body: { quantity: 1 } });
		const cart = await shop.request("GET", "/api/v1/cart?country=de&discountCode=welcome10", { token });
		expect(cart.status).toBe(200);
		const discount = Math.floor((hoodie.price * 10 + 50) / 100);
		const tax = Math.floor(((hoodie.price - discount + 799) * 1900 * 2 + 10_000) / 20_000);
		expect(cart.body).toMatchObject({
			subtotal: hoodie.price,
			discount,
			discountCode: "WELCOME10",
			shipping: 799,
			tax,
			country: "DE",
		});

		const order = await shop.request("POST", "/api/v1/orders", {
			token,
			body: { paymentMethod: "pm_card_visa", fromCart: true, country: "DE", discountCode: "WELCOME10" },
		});
		expect(order.status).toBe(201);
		expect(order.body).toMatchObject({
			subtotal: cart.body.subtotal,
			discount,
			shipping: 799,
			tax,
			total: cart.body.total,
			country: "DE",
			discountCode: "WELCOME10",
		});

		const refused = await shop.request("POST", "/api/v1/orders", {
			token,
			body: {
				paymentMethod: "pm_card_visa",
				items: [{ productId: hoodie.id, quantity: 1 }],
				discountCode: "NOT-A-CODE",
			},
		});
		expect(refused.status).toBe(422);
		expect(refused.body.type).toBe("UNKNOWN_DISCOUNT_CODE");
		expect((await shop.request("GET", `/api/v1/products/${hoodie.id}`)).body.stock).toBe(hoodie.stock - 1);
		expect(
			(
				await shop.request("POST", "/api/v1/orders", {
					token,
					body: {
						paymentMethod: "pm_card_visa",
						items: [{ productId: hoodie.id, quantity: 1 }],
						country: "ZZ",
					},
				})
			).status,
		).toBe(422);
	});

	it("quotes items for anyone, before signing in", async () => {
		const mug = (await shop.request("GET", "/api/v1/products?q=mug")).body.rows[0];
		const res = await shop.request("POST", "/api/v1/quote", {
			body: { items: [{ productId: mug.id, quantity: 10 }], country: "GB" },
		});
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({ subtotal: 10 * mug.price, shipping: 0, country: "GB", missing: [] });
		expect(res.body.tax).toBe(Math.floor((10 * mug.price * 2000 * 2 + 10_000) / 20_000));
	});

	it("lets users update their name and notification channels", async () => {
		const { token } = await shop.signUp("Before");
		const res = await shop.request("PATCH", "/api/v1/users/me", {
			token,
			body: { name: "After", preferences: { channels: ["sms", "push"] }, phone: "+4915112345678" },
		});
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({
			name: "After",
			phone: "+4915112345678",
			preferences: { channels: ["sms", "push"] },
		});
		expect((await shop.request("GET", "/api/v1/users/me", { token })).body.name).toBe("After");
	});

	it("lets admins manage the catalog and list users", async () => {
		const token = await shop.adminToken();
		const created = await shop.request("POST", "/api/v1/products", {
			token,
			body: { sku: "lamp-01", name: "Desk Lamp", price: 3999, category: "Home", stock: 5 },
		});
		expect(created.status).toBe(201);
		expect(created.body).toMatchObject({ sku: "LAMP-01", category: "home", currency: "USD", description: "" });

		const patched = await shop.request("PATCH", `/api/v1/products/${created.body.id}`, {
			token,
			body: { price: 3499 },
		});
		expect(patched.body.price).toBe(3499);
		// Cached reads see the change.
		expect((await shop.request("GET", `/api/v1/products/${created.body.id}`)).body.price).toBe(3499);
		expect((await shop.request("GET", "/api/v1/products?q=desk lamp")).body.rows[0].price).toBe(3499);

		const removed = await shop.request("DELETE", `/api/v1/products/${created.body.id}`, { token });
		expect(removed.status).toBe(204);
		expect((await shop.request("GET", `/api/v1/products/${created.body.id}`)).status).toBe(404);

		const users = await shop.request("GET", "/api/v1/users?pageSize=2", { token });
		expect(users.status).toBe(200);
		expect(users.body).toMatchObject({ page: 1, pageSize: 2 });
		expect(users.body.total).toBeGreaterThanOrEqual(2);
	});

	it("lists products with search, price range, sorting and capped pages", async () => {
		const all = (await shop.request("GET", "/api/v1/products?pageSize=100")).body;
		const cheap = (await shop.request("GET", "/api/v1/products?maxPrice=1000&sort=price")).body;
		expect(cheap.rows.map((p: any) => p.price)).toEqual(
			all.rows
				.filter((p: any) => p.price <= 1000)
				.map((p: any) => p.price)
				.sort((a: number, b: number) => a - b),
		);
		const ranged = (await shop.request("GET", "/api/v1/products?minPrice=1000&maxPrice=2000&category=apparel"))
			.body;
		expect(ranged.rows.every((p: any) => p.price >= 1000 && p.price <= 2000 && p.category === "apparel")).toBe(
			true,
		);
		const page2 = (await shop.request("GET", "/api/v1/products?pageSize=3&page=2&sort=name")).body;
		expect(page2.rows.map((p: any) => p.name)).toEqual(
			all.rows
				.map((p: any) => p.name)
				.sort()
				.slice(3, 6),
		);
		expect((await shop.request("GET", "/api/v1/products?pageSize=1000")).status).toBe(422);
		const found = (await shop.request("GET", "/api/v1/products?q=HOODIE")).body;
		expect(found.rows.map((p: any) => p.sku)).toEqual(["HOOD-001"]);
	});

	it("echoes a given X-Request-Id and generates one otherwise", async () => {
		const given = await shop.request("GET", "/api/v1/products", { headers: { "x-request-id": "trace-123" } });
		expect(given.headers.get("x-request-id")).toBe("trace-123");
		const generated = await shop.request("GET", "/api/v1/products/nope");
		expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		const unsafe = await shop.request("GET", "/api/v1/products", { headers: { "x-request-id": "a".repeat(500) } });
		expect(unsafe.headers.get("x-request-id")).not.toBe("a".repeat(500));
	});

	it("answers /health and /ready", async () => {
		expect((await shop.request("GET", "/health")).status).toBe(200);
		const ready = await shop.request("GET", "/ready");
		expect(ready.status).toBe(200);
		expect(ready.body).toMatchObject({ status: "ready", missing: [] });
	});
});

describe("server errors", () => {
	it("answer 500 without a stack or any detail of the failure, and are logged", async () => {
		const products = shop.broker.getLocalService("products") as any;
		const find = products.adapter.find;
		const logged = jest
			.spyOn((shop.broker.getLocalService("api") as any).logger, "error")
			.mockImplementation(() => undefined);
		products.adapter.find = () => Promise.reject(new Error("disk on fire at /var/lib/secret"));
		try {
			const res = await shop.request("GET", "/api/v1/products?q=unlikely-to-be-cached");
			expect(res.status).toBe(500);
			expect(res.body).toEqual({
				code: 500,
				name: "InternalServerError",
				type: "INTERNAL_ERROR",
				message: "Something went wrong. Please try again.",
			});
			expect(logged).toHaveBeenCalled();
		} finally {
			products.adapter.find = find;
			logged.mockRestore();
		}
	});
});

describe("overload", () => {
	it("answers 503 with Retry-After when a service's queue is full", async () => {
		const products = shop.broker.getLocalService("products") as any;
		const find = products.adapter.find;
		products.adapter.find = () =>
			Promise.reject(new Errors.QueueIsFullError({ action: "products.list", nodeID: shop.broker.nodeID }));
		try {
			const res = await shop.request("GET", "/api/v1/products?q=queue-full");
			expect(res.status).toBe(503);
			expect(res.headers.get("retry-after")).toBe("1");
			expect(res.body).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
		} finally {
			products.adapter.find = find;
		}
	});
});

describe("timeouts", () => {
	it("answer 504 when a service does not answer within the request timeout", async () => {
		const products = shop.broker.getLocalService("products") as any;
		const find = products.adapter.find;
		const stuck: Array<(err: Error) => void> = [];
		products.adapter.find = () => new Promise((_, reject) => stuck.push(reject)); // a store that does not answer
		try {
			const res = await shop.request("GET", "/api/v1/products?q=never-answers");
			expect(res.status).toBe(504);
			expect(res.body).toMatchObject({ code: 504, type: "TIMEOUT" });
		} finally {
			products.adapter.find = find;
			for (const reject of stuck) reject(new Error("the store answers at last")); // so the calls it held end before the node stops
		}
	}, 30_000);
});

describe("readiness", () => {
	it("is 503 while the services it routes to are missing", async () => {
		const gatewayOnly = await startBroker(ALL_SERVICES.filter(s => s.name === "api"));
		try {
			const { port } = (gatewayOnly.getLocalService("api") as any).server.address();
			const res = await fetch(`http://127.0.0.1:${port}/ready`);
			expect(res.status).toBe(503);
			expect(res.headers.get("retry-after")).toBe("1");
			expect(((await res.json()) as any).missing).toEqual(
				expect.arrayContaining(["users", "products", "carts", "orders"]),
			);
			expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
			const products = await fetch(`http://127.0.0.1:${port}/api/v1/products`);
			expect(products.status).toBe(503);
			expect(products.headers.get("retry-after")).toBe("1");
			expect(await products.json()).toEqual({
				code: 503,
				name: "ServiceUnavailableError",
				type: "SERVICE_UNAVAILABLE",
				message: expect.any(String),
			});
		} finally {
			await gatewayOnly.stop();
		}
	});
});
