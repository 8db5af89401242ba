/**
 * The MongoDB path, looked at from the store: what each saga outcome leaves in
 * the collections, the outbox relay and both consumers, the races that only the
 * unique indexes settle, the indexes themselves, and malformed ids. Runs in the
 * "mongodb" project (jest.config.js): against the MongoDB of MONGO_URI, or the
 * MongoDB stand-in without one. The whole suite also runs there.
 */
import mongoose from "mongoose";
import { DEMO_CATALOG } from "../../services/products/demo-catalog";
import { domainEvent } from "../../contracts/events";
import ProductsService from "../../services/products/products.service";
import { waitFor } from "../helpers/process";
import { describeOnMongo } from "../helpers/store";
import { checkoutOne, startBroker, startShop, withoutService, type Shop } from "../helpers/shop";

const { ObjectId } = mongoose.Types;

describeOnMongo("MongoDB store", () => {
	let shop: Shop;
	let admin: string;
	beforeAll(async () => {
		shop = await startShop();
		admin = await shop.adminToken();
	});
	afterAll(() => shop?.stop());

	const db = () => mongoose.connection.db!;
	const stored = (collection: string, filter: object) => db().collection(collection).findOne(filter);
	const count = (collection: string, filter: object) => db().collection(collection).countDocuments(filter);
	const service = (name: string) => shop.broker.getLocalService(name) as any;
	const checkout = (token: string, productId: string, paymentMethod: string, quantity = 1, headers = {}) =>
		checkoutOne(shop, token, productId, paymentMethod, quantity, headers);
	async function newProduct(stock: number) {
		const sku = `MONGO-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
		const res = await shop.request("POST", "/api/v1/products", {
			token: admin,
			body: { sku, name: sku, price: 1_000, category: "test", stock },
		});
		expect(res.status).toBe(201);
		return res.body;
	}
	/** Wait until every document of `collection` has published its outbox (the relay removes what it published). */
	const outboxEmpty = (collection: string) =>
		waitFor(
			async () => (await count(collection, { "outbox.0": { $exists: true } })) === 0,
			10_000,
			`the ${collection} outbox to be relayed`,
		);

	it("keeps each service's entities in its own collection, with ObjectIds in the store and string ids at the edge", async () => {
		const { token, user } = await shop.signUp();
		const product = (await shop.request("GET", "/api/v1/products?q=mug")).body.rows[0];
		const order = await checkout(token, product.id, "pm_card_visa");
		expect(order.status).toBe(201);
		expect(typeof order.body.id).toBe("string");

		const storedUser = await stored("users", { _id: new ObjectId(user.id) });
		expect(storedUser?.passwordHash).toMatch(/^\$argon2id\$/);
		const storedOrder = await stored("orders", { _id: new ObjectId(order.body.id) });
		expect(storedOrder).toMatchObject({
			userId: user.id,
			total: order.body.total,
			status: "paid",
			invoiceNumber: order.body.invoiceNumber,
		});
		expect(storedOrder!._id).toBeInstanceOf(ObjectId);
		expect(storedOrder!.timeline.map((t: any) => [t.status, t.at instanceof Date])).toEqual([
			["reserved", true],
			["paid", true],
		]);
		const storedProduct = await stored("products", { sku: product.sku });
		expect(storedProduct?.stock).toBe(product.stock - 1);
		expect(storedProduct?.reservations?.[order.body.id]).toBeUndefined(); // committed
		expect(await stored("payments", { orderId: order.body.id })).toMatchObject({
			kind: "charge",
			status: "succeeded",
			amount: order.body.total,
		});
		expect(await stored("invoices", { _id: "sequence:invoice" } as object)).toMatchObject({
			seq: expect.any(Number),
		});
		expect(await stored("invoices", { orderId: order.body.id })).toMatchObject({
			number: order.body.invoiceNumber,
		});
	});

	it("stores each saga outcome, and both consumers record what the outbox relayed: paid, declined (402), cancelled", async () => {
		const customer = await shop.signUp("Outcomes");
		const product = await newProduct(10);
		const paid = await checkout(customer.token, product.id, "pm_card_visa", 2);
		const declined = await checkout(customer.token, product.id, "pm_card_chargeDeclined", 3);
		expect([paid.status, declined.status]).toEqual([201, 402]);
		const declinedId = declined.body.data.orderId;
		const cancelled = await shop.request("POST", `/api/v1/orders/${paid.body.id}/cancel`, {
			token: customer.token,
		});
		expect(cancelled.status).toBe(200);

		const declinedOrder = await stored("orders", { _id: new ObjectId(declinedId) });
		expect(declinedOrder).toMatchObject({
			status: "payment_failed",
			payment: { status: "failed", failureCode: "card_declined" },
		});
		expect(await stored("orders", { _id: new ObjectId(paid.body.id) })).toMatchObject({
			status: "cancelled",
			refunded: paid.body.total,
		});
		const storedProduct = await stored("products", { _id: new ObjectId(product.id) });
		expect(storedProduct).toMatchObject({
			stock: 10,
			restocked: { [paid.body.id]: { quantity: 2, at: expect.any(Date) } },
		});
		expect(storedProduct!.reservations).toEqual({}); // released, and committed then restocked
		expect(
			await db()
				.collection("payments")
				.find({ orderId: { $in: [paid.body.id, declinedId] } })
				.sort({ createdAt: 1 })
				.toArray(),
		).toEqual([
			expect.objectContaining({ orderId: paid.body.id, kind: "charge", status: "succeeded" }),
			expect.objectContaining({
				orderId: declinedId,
				kind: "charge",
				status: "failed",
				failureCode: "card_declined",
			}),
			expect.objectContaining({
				orderId: paid.body.id,
				kind: "refund",
				status: "succeeded",
				amount: paid.body.total,
			}),
		]);

		await outboxEmpty("orders");
		await waitFor(
			async () => (await count("notifications", { userId: customer.user.id })) === 4,
			10_000,
			"four messages",
		);
		const messages = await db().collection("notifications").find({ userId: customer.user.id }).toArray();
		expect(messages.map(m => [m.template, m.status]).sort()).toEqual([
			["order_cancelled", "sent"],
			["order_confirmation", "sent"],
			["payment_failed", "sent"],
			["welcome", "sent"],
		]);
		await waitFor(
			async () => (await count("analytics", { orderId: { $in: [paid.body.id, declinedId] } })) === 3,
			10_000,
			"three facts",
		);
		const facts = await db()
			.collection("analytics")
			.find({ orderId: { $in: [paid.body.id, declinedId] } })
			.toArray();
		expect(facts.map(f => [f.type, f.amount]).sort()).toEqual([
			["order.cancelled", paid.body.total],
			["order.paid", paid.body.total],
			["order.payment_failed", declinedOrder!.total],
		]);
		expect(facts.every(f => f.at instanceof Date && typeof f.eventId === "string")).toBe(true);
	});

	it("answers 202 for a step that cannot finish, keeps the order reserved in the store, and the sweep settles it", async () => {
		const customer = await shop.signUp("Patient");
		const product = await newProduct(3);
		const res = await withoutService(shop.broker, "invoices", () =>
			checkout(customer.token, product.id, "pm_card_visa"),
		);
		expect(res.status).toBe(202);
		const _id = new ObjectId(res.body.id);
		expect(await stored("orders", { _id })).toMatchObject({ status: "reserved" });
		expect(await stored("products", { _id: new ObjectId(product.id) })).toMatchObject({
			stock: 2,
			reservations: { [res.body.id]: 1 },
		});
		expect(await count("invoices", { orderId: res.body.id })).toBe(0);

		await db()
			.collection("orders")
			.updateOne({ _id }, { $set: { updatedAt: new Date(Date.now() - 10 * 60_000) } });
		await service("orders").recoverOrders();
		const settled = await stored("orders", { _id });
		expect(settled).toMatchObject({ status: "paid", invoiceNumber: expect.stringMatching(/^INV-/) });
		expect(await stored("invoices", { orderId: res.body.id })).toMatchObject({ number: settled!.invoiceNumber });
		expect(await count("payments", { orderId: res.body.id })).toBe(1);
	});

	it("relays an event left in a document's outbox (a publish cut short) and removes it once published", async () => {
		const { user } = await shop.signUp("Outboxed");
		await outboxEmpty("users");
		const event = domainEvent("user.registered", { userId: user.id });
		// As a node that died between its write and the publish leaves it.
		await db()
			.collection("users")
			.updateOne({ _id: new ObjectId(user.id) }, { $push: { outbox: event } as any });
		await service("users").relayOutbox();
		await outboxEmpty("users");
		await waitFor(
			async () => (await count("analytics", { eventId: event.id })) === 1,
			10_000,
			"analytics to record the event",
		);
		await waitFor(
			async () => (await count("notifications", { eventId: event.id, status: "sent" })) === 1,
			10_000,
			"the welcome to be sent",
		);
	});

	describe("races only a unique index settles", () => {
		it("Idempotency-Key: one order of eight simultaneous repeats", async () => {
			const { token, user } = await shop.signUp("Repeats");
			const product = await newProduct(50);
			const headers = { "idempotency-key": "mongo-race" };
			const answers = await Promise.all(
				Array.from({ length: 8 }, () => checkout(token, product.id, "pm_card_visa", 1, headers)),
			);
			expect(answers.map(a => a.status)).toEqual(Array(8).fill(201));
			expect(new Set(answers.map(a => a.body.id)).size).toBe(1);
			expect(await count("orders", { userId: user.id })).toBe(1);
			expect(await count("orders", { idempotencyKey: `${user.id}:mongo-race` })).toBe(1);
			expect((await stored("products", { _id: new ObjectId(product.id) }))!.stock).toBe(49);
		});

		it("payment keys: one ledger entry and one provider charge of eight simultaneous charges", async () => {
			const orderId = new ObjectId().toHexString();
			const charge = () =>
				shop.broker.call<any, any>("payments.charge", {
					orderId,
					userId: "u1",
					amount: 1_234,
					currency: "USD",
					paymentMethod: "pm_card_visa",
				});
			const results = await Promise.all(Array.from({ length: 8 }, charge));
			expect(results.every(r => r.status === "succeeded")).toBe(true);
			expect(await count("payments", { key: `charge:${orderId}` })).toBe(1);
			expect(await count("provider_charges", { key: `charge:${orderId}` })).toBe(1);
		});

		it("notification keys and analytics event ids: one message and one fact of an event handled eight times at once", async () => {
			const { user } = await shop.signUp("Twice");
			await outboxEmpty("users");
			const event = domainEvent("user.registered", { userId: user.id });
			const notifications = service("notifications");
			const deliver = () => notifications.schema.channels["user.registered"].handler.call(notifications, event);
			const deliveries = await Promise.allSettled(Array.from({ length: 8 }, deliver));
			expect(deliveries.some(d => d.status === "fulfilled")).toBe(true); // the others found it being sent: redelivered later with NATS
			expect(await count("notifications", { eventId: event.id })).toBe(1);
			expect(await stored("notifications", { eventId: event.id })).toMatchObject({ status: "sent", attempts: 1 });

			await Promise.all(Array.from({ length: 8 }, () => service("analytics").record("user.registered", event)));
			expect(await count("analytics", { eventId: event.id })).toBe(1);
		});

		it("the invoice counter: unique, increasing numbers under concurrency, one invoice per order", async () => {
			const issue = (orderId: string) =>
				shop.broker.call<any, any>("invoices.issue", {
					orderId,
					userId: "u1",
					items: [
						{ productId: "p1", sku: "SKU-1", name: "Thing", unitPrice: 500, quantity: 2, lineTotal: 1_000 },
					],
					subtotal: 1_000,
					discount: 0,
					shipping: 499,
					tax: 0,
					total: 1_499,
					currency: "USD",
					country: "US",
				});
			const orders = Array.from({ length: 20 }, () => new ObjectId().toHexString());
			const issued = await Promise.all([...orders, ...orders.slice(0, 5)].map(issue));
			const numbers = new Map(issued.map(i => [i.orderId, i.number]));
			expect(new Set(numbers.values()).size).toBe(20);
			expect(await count("invoices", { orderId: { $in: orders } })).toBe(20);
			const counter = await stored("invoices", { _id: "sequence:invoice" } as object);
			const highest = Math.max(
				...(
					await db()
						.collection("invoices")
						.find({ orderId: { $in: orders } })
						.toArray()
				).map(i => i.seq),
			);
			expect(counter!.seq).toBeGreaterThanOrEqual(highest);
		});
	});

	// On the stand-in this checks what mongoose asked the store to create; on a real MongoDB, what the server built.
	it("has the unique and sparse indexes each schema declares", async () => {
		const models = mongoose.modelNames().map(name => mongoose.model(name));
		expect(models.length).toBe(9);
		for (const model of models) {
			const indexes = await db().collection(model.collection.collectionName).indexes();
			for (const [keys, options] of model.schema.indexes()) {
				const index = indexes.find(i => JSON.stringify(i.key) === JSON.stringify(keys));
				expect([model.collection.collectionName, keys, !!index?.unique, !!index?.sparse]).toEqual([
					model.collection.collectionName,
					keys,
					!!options.unique,
					!!options.sparse,
				]);
			}
		}
		const flags = async (collection: string, field: string) => {
			const index = (await db().collection(collection).indexes()).find(i => Object.keys(i.key)[0] === field);
			return { unique: !!index?.unique, sparse: !!index?.sparse };
		};
		expect(await flags("orders", "idempotencyKey")).toEqual({ unique: true, sparse: true });
		expect(await flags("invoices", "orderId")).toEqual({ unique: true, sparse: true });
		expect(await flags("invoices", "number")).toEqual({ unique: true, sparse: true });
		expect(await flags("orders", "outbox.id")).toEqual({ unique: false, sparse: true });
		for (const [collection, field] of [
			["users", "email"],
			["products", "sku"],
			["carts", "userId"],
			["payments", "key"],
			["provider_charges", "key"],
			["notifications", "key"],
			["analytics", "eventId"],
		]) {
			expect([collection, await flags(collection, field)]).toEqual([collection, { unique: true, sparse: false }]);
		}
	});

	it("answers 404 or 422, never 500, for ids that are not ObjectIds, on every route that takes one", async () => {
		const { token } = await shop.signUp();
		const ids = [
			"not-an-object-id",
			"0123456789ABCDEF01234567",
			"0123456789abcdef0123456",
			"0123456789abcdef012345678",
			"0123456789abcdef01234567",
		];
		for (const id of ids) {
			const answers = [
				await shop.request("GET", `/api/v1/products/${id}`),
				await shop.request("PATCH", `/api/v1/products/${id}`, { token: admin, body: { stock: 1 } }),
				await shop.request("DELETE", `/api/v1/products/${id}`, { token: admin }),
				await shop.request("PUT", `/api/v1/cart/items/${id}`, { token, body: { quantity: 1 } }),
				await shop.request("PUT", `/api/v1/cart/items/${id}`, { token, body: { quantity: 0 } }),
				await shop.request("GET", `/api/v1/orders/${id}`, { token }),
				await shop.request("POST", `/api/v1/orders/${id}/cancel`, { token }),
				await shop.request("GET", `/api/v1/orders/${id}/invoice`, { token }),
				await shop.request("POST", "/api/v1/orders", {
					token,
					body: { items: [{ productId: id, quantity: 1 }], paymentMethod: "pm_card_visa" },
				}),
				await shop.request("POST", "/api/v1/quote", { body: { items: [{ productId: id, quantity: 1 }] } }),
			];
			for (const answer of answers) expect([id, answer.status < 500]).toEqual([id, true]);
			expect([id, answers.filter(a => a.status !== 200).every(a => [404, 422].includes(a.status))]).toEqual([
				id,
				true,
			]);
		}
	});
});

describeOnMongo("the demo catalog on an empty MongoDB", () => {
	it("is seeded once when two products nodes start at the same moment", async () => {
		const nodes = await Promise.all([startBroker([ProductsService]), startBroker([ProductsService])]);
		try {
			const products = await mongoose.connection.db!.collection("products").find().toArray();
			expect(products.map(p => p.sku).sort()).toEqual(DEMO_CATALOG.map(p => p.sku).sort());
		} finally {
			await Promise.all(nodes.map(node => node.stop()));
		}
	});
});
