import type { ServiceBroker } from "moleculer";
import CartsService from "../../services/carts/carts.service";
import OrdersService from "../../services/orders/orders.service";
import PaymentProviderService from "../../services/payment-provider/payment-provider.service";
import PaymentsService from "../../services/payments/payments.service";
import InvoicesService from "../../services/invoices/invoices.service";
import PricingService from "../../services/pricing/pricing.service";
import ProductsService from "../../services/products/products.service";
import UsersService from "../../services/users/users.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
let products: any[];
let user: { id: string; role: string };
const as = (u: { id: string; role: string }, meta: object = {}) => ({ meta: { user: u, ...meta } });
/** The product document as stored, past any cache. */
const storedProduct = async (id: string) => (broker.getLocalService("products") as any).adapter.findById(id);
/** Stock as stored, past any cache. */
const stockOf = async (id: string) => (await storedProduct(id)).stock;
const ordersService = () => broker.getLocalService("orders") as any;
const admin = { id: "admin", role: "admin" };
/** A fresh product with `stock` units, so a test counts its own stock. */
const newProduct = (sku: string, stock: number) =>
	broker.call<any, any>("products.create", { sku, name: sku, price: 1_000, category: "test", stock }, as(admin));
/** The ids of the orders the store inserts (each checkout attempt inserts one) until `stop()`. */
function recordInserts() {
	const adapter = ordersService().adapter;
	const insert = adapter.insert;
	const ids: string[] = [];
	adapter.insert = async function (this: unknown, ...args: unknown[]) {
		const doc = await insert.apply(this, args);
		ids.push(ordersService().encodeID(doc._id));
		return doc;
	};
	return { ids, stop: () => void (adapter.insert = insert) };
}
/** The stored orders holding this customer's Idempotency-Key, whatever their status: `id status`. */
const withKey = async (key: string) =>
	((await ordersService().adapter.find({ query: { idempotencyKey: `${user.id}:${key}` } })) as any[]).map(
		doc => `${ordersService().encodeID(doc._id)} ${doc.status}`,
	);
/** Every order in the store, whatever its status (orders.list shows placed orders only): `id status`, sorted. */
const storedOrders = async () =>
	((await ordersService().adapter.find({ query: {} })) as any[])
		.map(doc => `${ordersService().encodeID(doc._id)} ${doc.status}`)
		.sort();

beforeAll(async () => {
	broker = await startBroker([
		UsersService,
		ProductsService,
		PricingService,
		CartsService,
		OrdersService,
		PaymentProviderService,
		PaymentsService,
		InvoicesService,
	]);
	products = (await broker.call<any, any>("products.list", { sort: "price" })).rows;
	user = (
		await broker.call<any, any>("users.register", {
			name: "Buyer",
			email: "buyer@test.io",
			password: "password123",
		})
	).user;
});
afterAll(() => broker.stop());

describe("orders.create", () => {
	it("stores priced lines and the total, and takes the stock", async () => {
		const [a, b] = products;
		const order = await broker.call<any, any>(
			"orders.create",
			{
				paymentMethod: "pm_card_visa",
				items: [
					{ productId: a.id, quantity: 2 },
					{ productId: b.id, quantity: 1 },
				],
			},
			as(user),
		);
		expect(order).toMatchObject({
			userId: user.id,
			status: "paid",
			subtotal: 2 * a.price + b.price,
			total: 2 * a.price + b.price + 499,
			currency: "USD",
			country: "US",
		});
		expect(order.items[0]).toEqual({
			productId: a.id,
			sku: a.sku,
			name: a.name,
			unitPrice: a.price,
			quantity: 2,
			lineTotal: 2 * a.price,
		});
		expect(await stockOf(a.id)).toBe(a.stock - 2);
	});

	it("commits a paid order's stock: the product keeps no reservation of it, and the units stay sold", async () => {
		const product = products[2];
		const before = await stockOf(product.id);
		const lines = [{ productId: product.id, quantity: 2 }];
		const order = await broker.call<any, any>(
			"orders.create",
			{ paymentMethod: "pm_card_visa", items: lines },
			as(user),
		);
		expect(order.status).toBe("paid");
		const stored = await storedProduct(product.id);
		expect(stored.stock).toBe(before - 2);
		expect(stored.reservations?.[order.id]).toBeUndefined(); // the hold became a sale
		// A sold unit is not held any more: a stray release of the order gives nothing back.
		await broker.call("products.releaseStock", { orderId: order.id, items: lines });
		expect(await stockOf(product.id)).toBe(before - 2);
	});

	it("refuses a checkout for an account that no longer exists, and reserves nothing", async () => {
		const ghost = { id: "ghost00000000000", role: "customer" };
		await expect(
			broker.call(
				"orders.create",
				{ paymentMethod: "pm_card_visa", items: [{ productId: products[0].id, quantity: 1 }] },
				as(ghost),
			),
		).rejects.toMatchObject({ code: 404 });
		expect((await broker.call<any, any>("products.get", { id: products[0].id })).stock).toBe(products[0].stock - 2);
	});

	it("refuses an empty cart", async () => {
		await expect(
			broker.call("orders.create", { paymentMethod: "pm_card_visa", fromCart: true }, as(user)),
		).rejects.toMatchObject({ code: 422, type: "EMPTY_CART" });
	});

	it("leaves no order behind when stock is short", async () => {
		const before = await broker.call<any, any>("orders.list", {}, as(user));
		const storedBefore = await storedOrders();
		const cap = products.find(p => p.sku === "CAP-001");
		await expect(
			broker.call(
				"orders.create",
				{ paymentMethod: "pm_card_visa", items: [{ productId: cap.id, quantity: cap.stock + 1 }] },
				as(user),
			),
		).rejects.toMatchObject({ code: 409 });
		expect((await broker.call<any, any>("orders.list", {}, as(user))).total).toBe(before.total);
		// orders.list hides pending and abandoned checkouts: the store itself holds no new order, of any status.
		expect(await storedOrders()).toEqual(storedBefore);
	});

	it("returns the first order for a repeated Idempotency-Key", async () => {
		const params = { paymentMethod: "pm_card_visa", items: [{ productId: products[1].id, quantity: 1 }] };
		const first = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "k1" }));
		const again = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "k1" }));
		expect(again).toEqual(first);
		const fresh = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "k2" }));
		expect(fresh.id).not.toBe(first.id);
	});

	it("creates one order when repeats with one key arrive at the same moment", async () => {
		const product = products[3];
		const params = { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 1 }] };
		const results = await Promise.all(
			Array.from({ length: 10 }, () =>
				broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "same-moment" })),
			),
		);
		expect(new Set(results.map(order => order.id)).size).toBe(1);
		expect(await stockOf(product.id)).toBe(product.stock - 1);
	});

	it("treats the same lines in another order as the same request", async () => {
		const [a, b] = products;
		const meta = { idempotencyKey: "reordered" };
		const first = await broker.call<any, any>(
			"orders.create",
			{
				paymentMethod: "pm_card_visa",
				items: [
					{ productId: a.id, quantity: 1 },
					{ productId: b.id, quantity: 1 },
				],
			},
			as(user, meta),
		);
		const again = await broker.call<any, any>(
			"orders.create",
			{
				paymentMethod: "pm_card_visa",
				items: [
					{ productId: b.id, quantity: 1 },
					{ productId: a.id, quantity: 1 },
				],
			},
			as(user, meta),
		);
		expect(again.id).toBe(first.id);
	});

	it("refuses more than the maximum of one product, summed over its lines", async () => {
		const line = { productId: products[0].id, quantity: 1000 };
		await expect(
			broker.call("orders.create", { paymentMethod: "pm_card_visa", items: [line, line] }, as(user)),
		).rejects.toMatchObject({ code: 422, type: "QUANTITY_TOO_LARGE" });
	});

	it("lets a key be used again after its first request failed", async () => {
		const product = await newProduct("RETRY-409", 1);
		const meta = { idempotencyKey: "retry-after-409" };
		const params = { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 2 }] };
		const attempts = recordInserts();
		let order: any;
		try {
			// Refused for the stock each time, not for a key still held by the first attempt (IDEMPOTENCY_KEY_IN_USE).
			for (let i = 0; i < 2; i++)
				await expect(broker.call("orders.create", params, as(user, meta))).rejects.toMatchObject({
					code: 409,
					type: "OUT_OF_STOCK",
				});
			await broker.call("products.update", { id: product.id, stock: 5 }, as(admin));
			order = await broker.call<any, any>("orders.create", params, as(user, meta));
		} finally {
			attempts.stop();
		}
		// The key is really free: the same request, once it can be served, is a new order, placed and paid.
		expect(attempts.ids).toHaveLength(3);
		expect(order).toMatchObject({ id: attempts.ids[2], status: "paid" });
		expect(await stockOf(product.id)).toBe(3);
		// The store holds that order under the key, and nothing of the refused attempts.
		for (const refused of attempts.ids.slice(0, 2))
			expect(await ordersService().adapter.findById(refused)).toBeFalsy();
		expect(await withKey(meta.idempotencyKey)).toEqual([`${order.id} paid`]);
		expect(await broker.call("orders.create", params, as(user, meta))).toEqual(order);
	});
});

describe("checkouts that cannot finish", () => {
	const orders = () => broker.getLocalService("orders") as any;
	const longAgo = () => new Date(Date.now() - 10 * 60_000);

	/** A checkout that crashed after taking its stock: a pending order holding a reservation. */
	async function crashedCheckout(product: any, quantity: number, extra: object = {}) {
		const doc = await orders().adapter.insert({
			userId: user.id,
			items: [
				{
					productId: product.id,
					sku: product.sku,
					name: product.name,
					unitPrice: product.price,
					quantity,
					lineTotal: product.price * quantity,
				},
			],
			total: product.price * quantity,
			currency: "USD",
			status: "pending",
			createdAt: longAgo(),
			updatedAt: longAgo(),
			...extra,
		});
		await broker.call("products.reserveStock", {
			orderId: String(doc._id),
			items: [{ productId: product.id, quantity }],
		});
		return doc;
	}

	it("are swept: stale checkouts give their stock back and disappear", async () => {
		const product = products[4];
		const before = await stockOf(product.id);
		const doc = await crashedCheckout(product, 2);
		expect(await stockOf(product.id)).toBe(before - 2);
		await expect(broker.call("orders.get", { id: String(doc._id) }, as(user))).rejects.toMatchObject({ code: 404 });
		expect((await broker.call<any, any>("orders.list", {}, as(user))).rows.map((o: any) => o.id)).not.toContain(
			String(doc._id),
		);

		await orders().recoverOrders();
		expect(await stockOf(product.id)).toBe(before);
		expect(await orders().adapter.findById(doc._id)).toMatchObject({ status: "abandoned" });

		// A reservation still under way when it was abandoned takes its stock late; the sweep's second release returns it.
		await broker.call("products.reserveStock", {
			orderId: String(doc._id),
			items: [{ productId: product.id, quantity: 2 }],
		});
		await orders().adapter.updateMany({ _id: doc._id }, { $set: { updatedAt: longAgo() } });
		await orders().recoverOrders();
		expect(await stockOf(product.id)).toBe(before);
		expect(await orders().adapter.findById(doc._id)).toBeFalsy();
	});

	it("free their Idempotency-Key once stale", async () => {
		const product = products[4];
		const before = await stockOf(product.id);
		const params = { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 1 }] };
		const probe = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "probe" }));
		const { requestHash } = await orders().adapter.findById(probe.id);
		await crashedCheckout(product, 1, { idempotencyKey: `${user.id}:stale-key`, requestHash });

		const order = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "stale-key" }));
		expect(order.status).toBe("paid");
		expect(await stockOf(product.id)).toBe(before - 2); // the probe and this order; the stale claim gave its unit back
	});

	it("release what they took when the reservation fails in an unknown way", async () => {
		const product = products[5];
		const before = await stockOf(product.id);
		const productsService = broker.getLocalService("products") as any;
		const takeStock = productsService.takeStock;
		productsService.takeStock = async function (this: any, ...args: any[]) {
			await takeStock.apply(this, args);
			throw new Error("connection lost after the write");
		};
		try {
			await expect(
				broker.call(
					"orders.create",
					{ paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 3 }] },
					as(user),
				),
			).rejects.toThrow("connection lost");
		} finally {
			productsService.takeStock = takeStock;
		}
		expect(await stockOf(product.id)).toBe(before);
		expect(await orders().adapter.count({ query: { status: "pending" } })).toBe(0);
	});

	it("free their Idempotency-Key when abandoned on a failure, so a retry with it is a new order", async () => {
		const product = await newProduct("RETRY-LOST", 5);
		const meta = { idempotencyKey: "retry-after-lost-answer" };
		const params = { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 2 }] };
		const productsService = broker.getLocalService("products") as any;
		const takeStock = productsService.takeStock;
		productsService.takeStock = async function (this: any, ...args: any[]) {
			productsService.takeStock = takeStock; // the first reservation only
			await takeStock.apply(this, args);
			throw new Error("connection lost after the write");
		};
		const attempts = recordInserts();
		let order: any;
		try {
			await expect(broker.call("orders.create", params, as(user, meta))).rejects.toThrow("connection lost");
			order = await broker.call<any, any>("orders.create", params, as(user, meta));
		} finally {
			productsService.takeStock = takeStock;
			attempts.stop();
		}
		expect(attempts.ids).toHaveLength(2);
		expect(order).toMatchObject({ id: attempts.ids[1], status: "paid" });
		expect(await stockOf(product.id)).toBe(3); // the abandoned attempt gave its units back
		// The first attempt waits, abandoned and without the key, for the sweep; the key names the new order only.
		const abandoned = orders().plain(await orders().adapter.findById(attempts.ids[0]));
		expect(abandoned).toMatchObject({ status: "abandoned" });
		expect(abandoned.idempotencyKey).toBeUndefined();
		expect(await withKey(meta.idempotencyKey)).toEqual([`${order.id} paid`]);
	});
});

describe("a checkout abandoned by the sweep while it reserves", () => {
	it("gives back the stock it took after the sweep released nothing", async () => {
		const product = products[6];
		const before = await stockOf(product.id);
		const productsService = broker.getLocalService("products") as any;
		const ordersService = broker.getLocalService("orders") as any;
		const takeStock = productsService.takeStock;
		let abandonedId = "";
		productsService.takeStock = async function (this: any, orderId: string, items: any[]) {
			// The sweep gets there first: it abandons the pending order (nothing to release yet) ...
			abandonedId = orderId;
			await ordersService.abandonCheckout(await ordersService.adapter.findById(orderId));
			// ... and then this reservation lands.
			return takeStock.call(this, orderId, items);
		};
		try {
			await expect(
				broker.call(
					"orders.create",
					{ paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 2 }] },
					as(user),
				),
			).rejects.toMatchObject({ code: 409, type: "CHECKOUT_ABANDONED" });
		} finally {
			productsService.takeStock = takeStock;
		}
		expect(await stockOf(product.id)).toBe(before);
		// Abandoning is a status move like any other: it leaves its timeline entry, and the key is free again.
		const abandoned = ordersService.plain(await ordersService.adapter.findById(abandonedId));
		expect(abandoned).toMatchObject({ status: "abandoned", timeline: [{ status: "abandoned" }] });
		expect(abandoned.idempotencyKey).toBeUndefined();
	});
});

describe("the one writer of an order's status", () => {
	it("refuses a move the lifecycle table does not list, and writes nothing", async () => {
		const ordersService = broker.getLocalService("orders") as any;
		const order = await broker.call<any, any>(
			"orders.create",
			{ paymentMethod: "pm_card_visa", items: [{ productId: products[3].id, quantity: 1 }] },
			as(user),
		);
		const doc = ordersService.plain(await ordersService.adapter.findById(order.id));
		await expect(ordersService.transition(doc, "paid", "reserved")).rejects.toThrow(
			"An order cannot move from paid to reserved",
		);
		await expect(ordersService.transition(doc, "paid", "cancelled")).rejects.toThrow(
			"An order cannot move from paid to cancelled",
		);
		const after = ordersService.plain(await ordersService.adapter.findById(order.id));
		expect(after.status).toBe("paid");
		expect(after.timeline.map((entry: { status: string }) => entry.status)).toEqual(["reserved", "paid"]);
	});
});

describe("orders.list / orders.get", () => {
	it("shows users their own orders only, newest first", async () => {
		const other = (
			await broker.call<any, any>("users.register", {
				name: "Other",
				email: "other@test.io",
				password: "password123",
			})
		).user;
		const theirs = await broker.call<any, any>(
			"orders.create",
			{ paymentMethod: "pm_card_visa", items: [{ productId: products[2].id, quantity: 1 }] },
			as(other),
		);
		const mine = await broker.call<any, any>("orders.list", {}, as(user));
		expect(mine.rows.every((o: any) => o.userId === user.id)).toBe(true);
		const dates = mine.rows.map((o: any) => new Date(o.createdAt).getTime());
		expect(dates).toEqual([...dates].sort((x, y) => y - x));
		await expect(broker.call("orders.get", { id: theirs.id }, as(user))).rejects.toMatchObject({ code: 404 });
		expect(await broker.call("orders.get", { id: theirs.id }, as(other))).toEqual(theirs);
	});
});
