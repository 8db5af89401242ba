/**
 * The order saga through the REST API: payment outcomes, cancellation with
 * refund, invoices, the messages each outcome sends, and the invariant that
 * state, stock and ledger agree for every order.
 */
import { mongo } from "mongoose";
import { checkoutOne, startShop, withoutService, type Shop } from "../helpers/shop";
import { waitFor } from "../helpers/process";
import { checkInvariant } from "../helpers/invariant";
import { barrier, holdCalls, sendEach } from "../helpers/barrier";

let shop: Shop;
let admin: string;
/** Stock of every product made here, as created. */
const initialStock: Record<string, number> = {};

beforeAll(async () => {
	shop = await startShop();
	admin = await shop.adminToken();
});
afterAll(() => shop.stop());

/** A fresh product with `stock` units, so each test counts its own stock. */
async function newProduct(stock: number, price = 1_000) {
	const sku = `SAGA-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
	const res = await shop.request("POST", "/api/v1/products", {
		token: admin,
		body: { sku, name: `Saga ${sku}`, price, category: "test", stock },
	});
	expect(res.status).toBe(201);
	initialStock[res.body.id] = stock;
	return res.body;
}

const stockOf = async (id: string) => (await shop.request("GET", `/api/v1/products/${id}`)).body.stock;
const ledgerOf = (orderId: string) => shop.broker.call<any[], any>("payments.forOrder", { orderId });
const checkout = (token: string, productId: string, paymentMethod: string, quantity = 2, headers = {}) =>
	checkoutOne(shop, token, productId, paymentMethod, quantity, headers);

/** The messages the customer was sent, once `count` of them have arrived. */
async function messagesOf(token: string, count: number) {
	let rows: any[] = [];
	await waitFor(
		async () => {
			rows = (await shop.request("GET", "/api/v1/notifications?pageSize=100", { token })).body.rows;
			return rows.length >= count;
		},
		10_000,
		`${count} messages`,
	);
	return rows;
}

describe("checkout with a card that", () => {
	it("succeeds: paid, one charge, stock taken, an invoice and a confirmation", async () => {
		const customer = await shop.signUp("Paying");
		const product = await newProduct(10);
		const res = await checkout(customer.token, product.id, "pm_card_visa");
		expect(res.status).toBe(201);
		const order = res.body;
		expect(order).toMatchObject({
			status: "paid",
			invoiceNumber: expect.stringMatching(/^INV-\d{6}$/),
			payment: { status: "succeeded", card: { brand: "visa", last4: "4242" } },
		});
		expect(order.timeline.map((t: any) => t.status)).toEqual(["reserved", "paid"]);
		expect(order).not.toHaveProperty("paymentMethod");
		expect(await stockOf(product.id)).toBe(8);
		expect(await ledgerOf(order.id)).toEqual([
			expect.objectContaining({ kind: "charge", status: "succeeded", amount: order.total }),
		]);

		const invoice = await shop.request("GET", `/api/v1/orders/${order.id}/invoice`, { token: customer.token });
		expect(invoice.status).toBe(200);
		expect(invoice.body).toMatchObject({
			number: order.invoiceNumber,
			orderId: order.id,
			total: order.total,
			tax: order.tax,
			subtotal: order.subtotal,
			currency: "USD",
		});
		expect(invoice.body.items).toEqual(order.items);
		const stranger = await shop.signUp("Stranger");
		expect(
			(await shop.request("GET", `/api/v1/orders/${order.id}/invoice`, { token: stranger.token })).status,
		).toBe(404);

		const messages = await messagesOf(customer.token, 2); // welcome + confirmation
		expect(messages.find(m => m.template === "order_confirmation")).toMatchObject({
			status: "sent",
			channel: "email",
		});
		expect(messages.find(m => m.template === "order_confirmation").body).toContain(order.invoiceNumber);
	});

	it("is declined: 402, payment_failed, stock back, nothing charged, a failure message", async () => {
		const customer = await shop.signUp("Declined");
		const product = await newProduct(10);
		const res = await checkout(customer.token, product.id, "pm_card_chargeDeclined");
		expect(res.status).toBe(402);
		expect(res.body).toMatchObject({
			type: "PAYMENT_FAILED",
			data: { reason: "card_declined", orderId: expect.any(String) },
		});
		const { orderId } = res.body.data;

		const order = (await shop.request("GET", `/api/v1/orders/${orderId}`, { token: customer.token })).body;
		expect(order).toMatchObject({
			status: "payment_failed",
			payment: { status: "failed", failureCode: "card_declined" },
		});
		expect(order.timeline.map((t: any) => t.status)).toEqual(["reserved", "payment_failed"]);
		expect(await stockOf(product.id)).toBe(10);
		expect(await ledgerOf(orderId)).toEqual([expect.objectContaining({ kind: "charge", status: "failed" })]);
		expect((await shop.request("GET", `/api/v1/orders/${orderId}/invoice`, { token: customer.token })).status).toBe(
			404,
		);

		const messages = await messagesOf(customer.token, 2);
		expect(messages.find(m => m.template === "payment_failed")).toMatchObject({ status: "sent" });
	});

	it("fails with a processing error: 402 with that reason, stock back", async () => {
		const customer = await shop.signUp("Processing");
		const product = await newProduct(5);
		const res = await checkout(customer.token, product.id, "pm_card_chargeDeclinedProcessingError", 5);
		expect(res.status).toBe(402);
		expect(res.body.data.reason).toBe("processing_error");
		expect(await stockOf(product.id)).toBe(5);
	});

	it("times out at the provider: resolved by looking the charge up, never charged twice", async () => {
		const customer = await shop.signUp("Slow");
		const product = await newProduct(4);
		const res = await checkout(customer.token, product.id, "pm_card_timeout");
		expect(res.status).toBe(201);
		expect(res.body.status).toBe("paid");
		expect(await ledgerOf(res.body.id)).toEqual([expect.objectContaining({ kind: "charge", status: "succeeded" })]);
		const providerCharge = await shop.broker.call<any, any>("payment-provider.findCharge", {
			key: `charge:${res.body.id}`,
		});
		expect(providerCharge).toMatchObject({ status: "succeeded", amount: res.body.total });
		expect(await stockOf(product.id)).toBe(2);
	});

	it("would pay more than the largest charge: refused with 422 before anything is taken", async () => {
		const customer = await shop.signUp("Lavish");
		const product = await newProduct(500, 1_000_000);
		const res = await checkout(customer.token, product.id, "pm_card_visa", 200);
		expect(res.status).toBe(422);
		expect(res.body.type).toBe("ORDER_TOO_LARGE");
		expect(await stockOf(product.id)).toBe(500);
	});

	it("is a card number: refused with 422, nothing stored", async () => {
		const customer = await shop.signUp("Careless");
		const product = await newProduct(3);
		const res = await checkout(customer.token, product.id, "4242424242424242");
		expect(res.status).toBe(422);
		expect(res.text).not.toContain("4242424242424242");
		expect(res.body.data[0].message).toContain("payment-method token");
		expect((await shop.request("GET", "/api/v1/orders", { token: customer.token })).body.total).toBe(0);
		expect(await stockOf(product.id)).toBe(3);
	});
});

describe("cancellation", () => {
	it("refunds in full, returns the stock once, and is refused a second time", async () => {
		const customer = await shop.signUp("Regretful");
		const product = await newProduct(6);
		const order = (await checkout(customer.token, product.id, "pm_card_visa", 3)).body;
		expect(await stockOf(product.id)).toBe(3);

		const cancelled = await shop.request("POST", `/api/v1/orders/${order.id}/cancel`, { token: customer.token });
		expect(cancelled.status).toBe(200);
		expect(cancelled.body).toMatchObject({ status: "cancelled", refunded: order.total });
		expect(cancelled.body.timeline.map((t: any) => t.status)).toEqual([
			"reserved",
			"paid",
			"cancelling",
			"cancelled",
		]);
		expect(await stockOf(product.id)).toBe(6);
		const ledger = await ledgerOf(order.id);
		expect(ledger.map(e => [e.kind, e.status, e.amount])).toEqual([
			["charge", "succeeded", order.total],
			["refund", "succeeded", order.total],
		]);

		const again = await shop.request("POST", `/api/v1/orders/${order.id}/cancel`, { token: customer.token });
		expect(again.status).toBe(409);
		expect(again.body).toMatchObject({ type: "ORDER_NOT_CANCELLABLE", data: { status: "cancelled" } });
		expect(await stockOf(product.id)).toBe(6);
		expect(await ledgerOf(order.id)).toHaveLength(2);

		const messages = await messagesOf(customer.token, 3);
		expect(messages.find(m => m.template === "order_cancelled")).toMatchObject({ status: "sent" });
	});

	it("is 409 for an order whose payment failed and 404 for someone else's order", async () => {
		const customer = await shop.signUp("Owner");
		const product = await newProduct(2);
		const failed = await checkout(customer.token, product.id, "pm_card_chargeDeclined", 1);
		const refused = await shop.request("POST", `/api/v1/orders/${failed.body.data.orderId}/cancel`, {
			token: customer.token,
		});
		expect(refused.status).toBe(409);

		const paid = (await checkout(customer.token, product.id, "pm_card_visa", 1)).body;
		const intruder = await shop.signUp("Intruder");
		expect((await shop.request("POST", `/api/v1/orders/${paid.id}/cancel`, { token: intruder.token })).status).toBe(
			404,
		);
		expect((await shop.request("GET", `/api/v1/orders/${paid.id}`, { token: customer.token })).body.status).toBe(
			"paid",
		);
	});

	it("runs once when the customer presses cancel several times at once", async () => {
		const customer = await shop.signUp("Impatient");
		const product = await newProduct(4);
		const order = (await checkout(customer.token, product.id, "pm_card_visa", 2)).body;
		const results = await Promise.all(
			Array.from({ length: 5 }, () =>
				shop.request("POST", `/api/v1/orders/${order.id}/cancel`, { token: customer.token }),
			),
		);
		expect(results.filter(r => r.status === 200).length).toBeGreaterThanOrEqual(1);
		expect(results.every(r => r.status === 200 || r.status === 409)).toBe(true);
		expect(await stockOf(product.id)).toBe(4);
		expect((await ledgerOf(order.id)).filter(e => e.kind === "refund")).toHaveLength(1);
	});
});

describe("a checkout repeated with its Idempotency-Key", () => {
	it("charges once and answers the same order", async () => {
		const customer = await shop.signUp("Repeating");
		const product = await newProduct(10);
		const headers = { "idempotency-key": "pay-once" };
		// The race is forced: each repeat waits just before it stores its order until all 6 have found no
		// order under the key, so all 6 try to claim it at once and only its unique index stops five of them.
		const orders = shop.broker.getLocalService("orders") as any;
		const claims = barrier(6);
		const restore = holdCalls(
			orders.adapter,
			"insert",
			claims,
			(doc: any) => doc.idempotencyKey === `${customer.user.id}:pay-once`,
		);
		let results;
		try {
			results = await sendEach(claims, () => checkout(customer.token, product.id, "pm_card_visa", 1, headers));
		} finally {
			restore();
		}
		expect(claims.opened).toBe(true);
		expect(new Set(results.map(r => r.body.id)).size).toBe(1);
		expect(results.every(r => r.status === 201)).toBe(true);
		expect(await ledgerOf(results[0].body.id)).toHaveLength(1);
		expect(await stockOf(product.id)).toBe(9);
	});
});

describe("a saga step that cannot finish now", () => {
	const orders = () => shop.broker.getLocalService("orders") as any;

	it("answers 202 with the reserved order, which the recovery sweep settles once the service is back", async () => {
		const customer = await shop.signUp("Patient");
		const product = await newProduct(5);
		const res = await withoutService(shop.broker, "invoices", () =>
			checkout(customer.token, product.id, "pm_card_visa", 1),
		);
		expect(res.status).toBe(202);
		expect(res.headers.get("location")).toBe(`/api/v1/orders/${res.body.id}`);
		expect(res.body).toMatchObject({ status: "reserved" });
		expect(await ledgerOf(res.body.id)).toEqual([expect.objectContaining({ status: "succeeded" })]); // charged once, already

		await orders().adapter.updateMany(
			{ _id: orders().decodeID(res.body.id) },
			{ $set: { updatedAt: new Date(Date.now() - 10 * 60_000) } },
		);
		await orders().recoverOrders();
		const settled = (await shop.request("GET", `/api/v1/orders/${res.body.id}`, { token: customer.token })).body;
		expect(settled).toMatchObject({ status: "paid", invoiceNumber: expect.any(String) });
		expect(await ledgerOf(res.body.id)).toHaveLength(1);
		expect(await stockOf(product.id)).toBe(4);
	});
});

describe("a store error after the provider charged", () => {
	const orders = () => shop.broker.getLocalService("orders") as any;

	it("is a failure, not a refusal, whatever its code: 202, never payment_failed, then paid and charged once", async () => {
		const customer = await shop.signUp("Unlucky");
		const product = await newProduct(5);
		// The provider took the money; writing it in the ledger fails with a store error whose code looks like an HTTP status.
		const payments = shop.broker.getLocalService("payments") as any;
		const storeError = new mongo.MongoServerError({ message: "store failure after the charge", code: 449 });
		const updateMany = payments.adapter.updateMany.bind(payments.adapter);
		let failed = false;
		// Only this customer's ledger write fails, once (the periodic sweep may settle other orders meanwhile).
		const settle = jest
			.spyOn(payments.adapter, "updateMany")
			.mockImplementation(async (query: any, update: any) => {
				const entry = query._id && (await payments.adapter.findById(query._id));
				if (!failed && entry?.userId === customer.user.id) {
					failed = true;
					throw storeError;
				}
				return updateMany(query, update);
			});
		let res;
		try {
			res = await checkout(customer.token, product.id, "pm_card_visa", 1);
		} finally {
			settle.mockRestore();
		}
		expect(failed).toBe(true);
		expect(res.status).toBe(202);
		expect(res.body).toMatchObject({ status: "reserved" });
		expect(await stockOf(product.id)).toBe(4); // still held: the money was taken
		expect(await ledgerOf(res.body.id)).toEqual([expect.objectContaining({ kind: "charge", status: "pending" })]);

		await orders().adapter.updateMany(
			{ _id: orders().decodeID(res.body.id) },
			{ $set: { updatedAt: new Date(Date.now() - 10 * 60_000) } },
		);
		await orders().recoverOrders();
		expect(
			(await shop.request("GET", `/api/v1/orders/${res.body.id}`, { token: customer.token })).body,
		).toMatchObject({ status: "paid" });
		expect(await ledgerOf(res.body.id)).toEqual([expect.objectContaining({ kind: "charge", status: "succeeded" })]);
		expect(await shop.broker.call("payment-provider.findCharge", { key: `charge:${res.body.id}` })).toMatchObject({
			status: "succeeded",
		});
		expect(await stockOf(product.id)).toBe(4);
	});
});

describe("recovery of orders a crash left half way", () => {
	const orders = () => shop.broker.getLocalService("orders") as any;
	const longAgo = () => new Date(Date.now() - 10 * 60_000);

	/** An order that reserved its stock, as a checkout that died before or during its charge leaves it. */
	async function stuckReserved(product: any, quantity: number, paymentMethod: string) {
		const customer = await shop.signUp("Stuck");
		const quote = await shop.broker.call<any, any>("pricing.quote", {
			items: [{ productId: product.id, quantity }],
		});
		const { missing, ...priced } = quote;
		const doc = await orders().adapter.insert({
			userId: customer.user.id,
			...priced,
			status: "reserved",
			paymentMethod,
			timeline: [{ status: "reserved", at: longAgo() }],
			createdAt: longAgo(),
			updatedAt: longAgo(),
		});
		const orderId = orders().encodeID(doc._id);
		await shop.broker.call("products.reserveStock", { orderId, items: [{ productId: product.id, quantity }] });
		return { orderId, customer, total: priced.total };
	}

	it("takes the payment of an order left reserved, and settles a failing card as payment_failed", async () => {
		const product = await newProduct(10);
		const good = await stuckReserved(product, 2, "pm_card_visa");
		const bad = await stuckReserved(product, 3, "pm_card_chargeDeclined");
		expect(await stockOf(product.id)).toBe(5);

		await orders().recoverOrders();
		expect(await shop.broker.call<any, any>("orders.find", { id: good.orderId })).toMatchObject({
			status: "paid",
			invoiceNumber: expect.any(String),
		});
		expect(await shop.broker.call<any, any>("orders.find", { id: bad.orderId })).toMatchObject({
			status: "payment_failed",
		});
		expect(await stockOf(product.id)).toBe(8);
	});

	it("finds a charge the provider made before the crash instead of charging again", async () => {
		const product = await newProduct(10);
		const stuck = await stuckReserved(product, 1, "pm_card_visa");
		// The provider took the money; payments died before writing it down.
		await shop.broker.call("payment-provider.charge", {
			key: `charge:${stuck.orderId}`,
			amount: stuck.total,
			currency: "USD",
			paymentMethod: "pm_card_visa",
		});

		await orders().recoverOrders();
		expect((await shop.broker.call<any, any>("orders.find", { id: stuck.orderId })).status).toBe("paid");
		expect(await ledgerOf(stuck.orderId)).toEqual([
			expect.objectContaining({ kind: "charge", status: "succeeded", amount: stuck.total }),
		]);
	});

	it("finishes a cancellation left half way: one refund, the stock back once", async () => {
		const customer = await shop.signUp("Half-cancelled");
		const product = await newProduct(5);
		const order = (await checkout(customer.token, product.id, "pm_card_visa", 2)).body;
		await shop.broker.call("payments.refund", { orderId: order.id }); // the refund went through, then the node died
		await orders().adapter.updateMany(
			{ _id: orders().decodeID(order.id) },
			{ $set: { status: "cancelling", updatedAt: longAgo() } },
		);

		await orders().recoverOrders();
		expect(await shop.broker.call<any, any>("orders.find", { id: order.id })).toMatchObject({
			status: "cancelled",
			refunded: order.total,
		});
		expect((await ledgerOf(order.id)).filter(e => e.kind === "refund")).toHaveLength(1);
		expect(await stockOf(product.id)).toBe(5);
	});
});

it("keeps state, stock and ledger in agreement over every order placed here", async () => {
	const orders = await checkInvariant(shop.broker, initialStock);
	expect(new Set(orders.map(o => o.status))).toEqual(new Set(["paid", "payment_failed", "cancelled"]));
});
