import type { ServiceBroker } from "moleculer";
import { addDays, factOf, rankProducts, resolveRange, summarize, utcDay, type Fact } from "../../services/analytics/facts";
import { domainEvent, type DomainEvent, type EventLine } from "../../contracts/events";
import AnalyticsService from "../../services/analytics/analytics.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
let analytics: any;

beforeAll(async () => {
	broker = await startBroker([AnalyticsService]);
	analytics = broker.getLocalService("analytics");
});
afterAll(() => broker.stop());

// Events, as producers send them. Fixed days are in 2020, far from the default "last 30 days".
let sequence = 0;
const line = (productId: string, quantity: number, unitPrice: number): EventLine =>
	({ productId, sku: `SKU-${productId}`, name: `Product ${productId}`, quantity, unitPrice, lineTotal: quantity * unitPrice });

function paid(at: string, items: EventLine[], opts: { total?: number; currency?: string } = {}) {
	const n = ++sequence;
	const subtotal = items.reduce((sum, item) => sum + item.lineTotal, 0);
	return domainEvent("order.paid", {
		orderId: `order${n}`, userId: "u1", items, subtotal, discount: 0, shipping: 0, tax: 0, total: opts.total ?? subtotal,
		currency: opts.currency ?? "USD", invoiceNumber: `INV-${n}`, paidAt: at,
	}, new Date(at));
}
const cancelled = ({ data }: DomainEvent<"order.paid">, at: string) =>
	domainEvent("order.cancelled", { orderId: data.orderId, userId: data.userId, items: data.items, refunded: data.total, currency: data.currency, cancelledAt: at }, new Date(at));
const failed = (at: string, total: number) =>
	domainEvent("order.payment_failed", { orderId: `order${++sequence}`, userId: "u1", total, currency: "USD", reason: "card_declined" }, new Date(at));
const registered = (at: string) => domainEvent("user.registered", { userId: `user${++sequence}` }, new Date(at));
const viewed = (productId: string, at: string) => domainEvent("product.viewed", { productId, userId: null }, new Date(at));

const deliver = (...events: DomainEvent[]) => Promise.all(events.map(event => analytics.emitLocalChannelHandler(event.type, event)));
// Copies: the validator writes defaults into the params it checks.
const summary = (params: object) => broker.call<any, any>("analytics.summary", { ...params });
const top = (params: object) => broker.call<any, any>("analytics.topProducts", { ...params });

describe("analytics.summary", () => {
	it("adds up paid orders per UTC day, in one currency, with the average order value", async () => {
		await deliver(
			paid("2020-01-01T00:00:00.000Z", [line("a", 1, 1000)]),
			paid("2020-01-01T23:59:59.999Z", [line("a", 2, 1001)]),
			paid("2020-01-03T12:00:00.000Z", [line("b", 1, 4000)], { total: 4500 }), // total, not line totals, is revenue
			paid("2020-01-02T12:00:00.000Z", [line("a", 1, 999)], { currency: "EUR" }),
			failed("2020-01-02T08:00:00.000Z", 700),
			paid("2019-12-31T23:59:59.999Z", [line("a", 1, 50)]), // the days around the range
			paid("2020-01-04T00:00:00.000Z", [line("a", 1, 50)]),
		);
		const result = await summary({ from: "2020-01-01", to: "2020-01-03" });
		expect(result).toEqual({
			from: "2020-01-01", to: "2020-01-03", currency: "USD",
			orders: { paid: 3, cancelled: 0, paymentFailed: 1 },
			revenue: { gross: 7502, refunded: 0, net: 7502 },
			averageOrderValue: 2501, // 7502 / 3 = 2500.67
			newUsers: 0,
			days: [
				{ date: "2020-01-01", orders: 2, gross: 3002, refunded: 0, net: 3002, newUsers: 0 },
				{ date: "2020-01-02", orders: 0, gross: 0, refunded: 0, net: 0, newUsers: 0 },
				{ date: "2020-01-03", orders: 1, gross: 4500, refunded: 0, net: 4500, newUsers: 0 },
			],
		});
		expect(await summary({ from: "2020-01-01", to: "2020-01-03", currency: "eur" })).toMatchObject({
			currency: "EUR", orders: { paid: 1, paymentFailed: 0 }, revenue: { gross: 999 }, averageOrderValue: 999,
		});
	});

	it("takes a cancellation's refund off on the day of the cancellation", async () => {
		const order = paid("2020-02-01T10:00:00.000Z", [line("a", 5, 1000)]);
		await deliver(order, paid("2020-02-01T11:00:00.000Z", [line("a", 1, 300)]));
		await deliver(cancelled(order, "2020-02-02T09:00:00.000Z"));
		const result = await summary({ from: "2020-02-01", to: "2020-02-02" });
		expect(result).toMatchObject({ orders: { paid: 2, cancelled: 1 }, revenue: { gross: 5300, refunded: 5000, net: 300 }, averageOrderValue: 2650 });
		expect(result.days).toEqual([
			{ date: "2020-02-01", orders: 2, gross: 5300, refunded: 0, net: 5300, newUsers: 0 },
			{ date: "2020-02-02", orders: 0, gross: 0, refunded: 5000, net: -5000, newUsers: 0 },
		]);
		expect(await summary({ from: "2020-02-01", to: "2020-02-01" })).toMatchObject({ orders: { cancelled: 0 }, revenue: { refunded: 0, net: 5300 } });
	});

	it("counts new users per day, whatever the currency", async () => {
		await deliver(registered("2020-03-01T01:00:00.000Z"), registered("2020-03-01T22:00:00.000Z"), registered("2020-03-03T00:00:00.000Z"));
		const result = await summary({ from: "2020-03-01", to: "2020-03-03", currency: "GBP" });
		expect(result).toMatchObject({ newUsers: 3, orders: { paid: 0 }, revenue: { gross: 0, refunded: 0, net: 0 }, averageOrderValue: 0 });
		expect(result.days.map((day: any) => day.newUsers)).toEqual([2, 0, 1]);
	});

	it("covers the last 30 days through today by default", async () => {
		const now = new Date();
		await deliver(paid(now.toISOString(), [line("a", 1, 1234)]), registered(now.toISOString()));
		const result = await summary({});
		expect(result).toMatchObject({ from: addDays(utcDay(now), -29), to: utcDay(now) });
		expect(result.days).toHaveLength(30);
		expect(result.days[29]).toEqual({ date: utcDay(now), orders: 1, gross: 1234, refunded: 0, net: 1234, newUsers: 1 });
	});

	it("refuses malformed days, reversed or too long ranges and unknown params with a 422", async () => {
		const refused = (params: object, type: string) => expect(summary(params)).rejects.toMatchObject({ code: 422, type });
		await refused({ from: "01/02/2020" }, "VALIDATION_ERROR");
		await refused({ to: "2020-02-30" }, "VALIDATION_ERROR");
		await refused({ from: "2020-02-02", to: "2020-02-01" }, "INVALID_RANGE");
		await refused({ from: "2019-01-01", to: "2020-01-02" }, "RANGE_TOO_LONG");
		await refused({ currency: "dollars" }, "VALIDATION_ERROR");
		await refused({ days: 7 }, "VALIDATION_ERROR");
		expect((await summary({ from: "2020-01-01", to: "2020-12-31" })).days).toHaveLength(366);
	});
});

describe("analytics.topProducts", () => {
	const range = { from: "2020-06-01", to: "2020-06-30" };

	beforeAll(async () => {
		const cancelledLater = paid("2020-06-03T10:00:00.000Z", [line("t-b", 1, 1000)]);
		await deliver(
			paid("2020-06-01T10:00:00.000Z", [line("t-a", 3, 100), line("t-b", 1, 1000)]),
			paid("2020-06-02T10:00:00.000Z", [line("t-a", 2, 100), line("t-c", 1, 500)]),
			cancelledLater,
			paid("2020-06-02T10:00:00.000Z", [line("t-a", 100, 100)], { currency: "EUR" }),
			paid("2020-07-01T10:00:00.000Z", [line("t-c", 9, 500)]), // after the range
			...["t-a", "t-a", "t-a", "t-a", "t-c", "t-c", "t-c"].map(id => viewed(id, "2020-06-01T08:00:00.000Z")),
			viewed("t-a", "2020-05-31T23:00:00.000Z"),
		);
		await deliver(cancelled(cancelledLater, "2020-07-05T10:00:00.000Z")); // cancelled after the range: still left out
	});

	it("ranks by units, net of cancelled orders, with views and conversion", async () => {
		expect(await top(range)).toEqual({
			...range, currency: "USD", by: "units",
			rows: [
				{ productId: "t-a", sku: "SKU-t-a", name: "Product t-a", units: 5, revenue: 500, orders: 2, views: 4, conversion: 0.5 },
				{ productId: "t-b", sku: "SKU-t-b", name: "Product t-b", units: 1, revenue: 1000, orders: 2, views: 0, conversion: null },
				{ productId: "t-c", sku: "SKU-t-c", name: "Product t-c", units: 1, revenue: 500, orders: 1, views: 3, conversion: 0.3333 },
			],
		});
	});

	it("ranks by revenue, ties by product id, up to limit (a query string)", async () => {
		const { rows } = await top({ ...range, by: "revenue", limit: "2" });
		expect(rows.map((row: any) => [row.productId, row.revenue])).toEqual([["t-b", 1000], ["t-a", 500]]);
	});

	it("covers all time without a range, and other currencies apart", async () => {
		const all = await top({ limit: 50 });
		expect(all).toMatchObject({ from: null, to: null, currency: "USD" });
		expect(all.rows.find((row: any) => row.productId === "t-c")).toMatchObject({ units: 10, orders: 2, views: 3 });
		expect((await top({ ...range, currency: "EUR" })).rows).toEqual([expect.objectContaining({ productId: "t-a", units: 100, views: 4 })]);
	});

	it("refuses a bad order, limit or range with a 422", async () => {
		await expect(top({ by: "views" })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		await expect(top({ limit: 51 })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		await expect(top({ from: "2020-06-30", to: "2020-06-01" })).rejects.toMatchObject({ code: 422, type: "INVALID_RANGE" });
	});
});

describe("analytics consumers", () => {
	const stored = (eventId: string) => analytics.adapter.count({ query: { eventId } });

	it("apply a redelivered event once, also when deliveries run at the same time", async () => {
		const order = paid("2020-09-01T10:00:00.000Z", [line("d-a", 2, 2500)]);
		const cancel = cancelled(order, "2020-09-02T10:00:00.000Z");
		await deliver(order);
		await deliver(order);
		await deliver(order, order, order, cancel, cancel, cancel);
		await deliver(cancel);
		expect(await stored(order.id)).toBe(1);
		expect(await stored(cancel.id)).toBe(1);
		expect(await summary({ from: "2020-09-01", to: "2020-09-02" })).toMatchObject({
			orders: { paid: 1, cancelled: 1 }, revenue: { gross: 5000, refunded: 5000, net: 0 },
		});
	});

	it("refuse an event they cannot read, so the channel retries and dead-letters it", async () => {
		await expect(analytics.emitLocalChannelHandler("order.paid", { id: "x", type: "order.paid" })).rejects.toThrow(/Unreadable 'order.paid' message/);
		const event = paid("2020-09-03T10:00:00.000Z", [line("d-a", 1, 100)], { total: 10.5 });
		await expect(deliver(event)).rejects.toThrow(/'total' is not a whole number/);
		expect(await stored(event.id)).toBe(0);
	});
});

describe("analytics facts (services/analytics/facts.ts)", () => {
	const fact = (type: Fact["type"], at: string, fields: Partial<Fact> = {}): Fact =>
		({ eventId: `e${++sequence}`, type, at: new Date(at), day: at.slice(0, 10), currency: "USD", ...fields });

	it("turns an event into a fact dated by when the money moved", () => {
		const event = paid("2020-10-01T23:30:00.000Z", [line("p", 2, 150)]);
		event.occurredAt = "2020-10-02T00:00:01.000Z";
		expect(factOf(event)).toEqual({
			eventId: event.id, type: "order.paid", at: new Date("2020-10-01T23:30:00.000Z"), day: "2020-10-01",
			orderId: event.data.orderId, userId: "u1", amount: 300, currency: "USD",
			lines: [{ productId: "p", sku: "SKU-p", name: "Product p", quantity: 2, lineTotal: 300 }],
		});
		const view = viewed("p", "2020-10-03T05:00:00.000Z");
		expect(factOf(view)).toEqual({ eventId: view.id, type: "product.viewed", at: new Date(view.occurredAt), day: "2020-10-03", productId: "p", userId: null });
	});

	it("resolves ranges: defaults, bounds and refusals", () => {
		expect(resolveRange(undefined, undefined, "2020-03-10")).toEqual({ from: "2020-02-10", to: "2020-03-10" });
		expect(resolveRange("2020-03-01", undefined, "2020-03-10")).toEqual({ from: "2020-03-01", to: "2020-03-10" });
		expect(resolveRange(undefined, "2021-01-30")).toEqual({ from: "2021-01-01", to: "2021-01-30" });
		expect(() => resolveRange("2021-02-29", "2021-03-01")).toThrow(expect.objectContaining({ code: 422, type: "VALIDATION_ERROR" }));
		expect(() => resolveRange("2021-03-02", "2021-03-01")).toThrow(expect.objectContaining({ code: 422, type: "INVALID_RANGE" }));
		expect(() => resolveRange("2021-01-01", "2022-01-02")).toThrow(expect.objectContaining({ code: 422, type: "RANGE_TOO_LONG" }));
	});

	it("summarizes only the range and the currency", () => {
		const facts = [
			fact("order.paid", "2020-01-01T10:00:00.000Z", { amount: 100 }),
			fact("order.paid", "2020-01-02T10:00:00.000Z", { amount: 999, currency: "EUR" }),
			fact("order.cancelled", "2020-01-02T10:00:00.000Z", { amount: 100 }),
			fact("order.paid", "2020-01-03T10:00:00.000Z", { amount: 5000 }),
			fact("user.registered", "2020-01-02T10:00:00.000Z", { currency: undefined }),
		];
		expect(summarize(facts, { from: "2020-01-01", to: "2020-01-02" }, "USD")).toEqual({
			from: "2020-01-01", to: "2020-01-02", currency: "USD",
			orders: { paid: 1, cancelled: 1, paymentFailed: 0 }, revenue: { gross: 100, refunded: 100, net: 0 },
			averageOrderValue: 100, newUsers: 1,
			days: [
				{ date: "2020-01-01", orders: 1, gross: 100, refunded: 0, net: 100, newUsers: 0 },
				{ date: "2020-01-02", orders: 0, gross: 0, refunded: 100, net: -100, newUsers: 1 },
			],
		});
	});

	it("ranks products with the latest name, cancellations left out and ties by id", () => {
		const lines = (name: string, quantity: number) => [{ productId: "x", sku: "X", name, quantity, lineTotal: quantity * 10 }, { productId: "w", sku: "W", name: "W", quantity, lineTotal: quantity * 10 }];
		const facts = [
			fact("order.paid", "2020-01-02T00:00:00.000Z", { orderId: "o2", lines: lines("X new", 1) }),
			fact("order.paid", "2020-01-01T00:00:00.000Z", { orderId: "o1", lines: lines("X old", 2) }),
			fact("order.paid", "2020-01-03T00:00:00.000Z", { orderId: "o3", lines: lines("X", 7) }),
			fact("order.cancelled", "2020-01-04T00:00:00.000Z", { orderId: "o3", lines: lines("X", 7) }),
			fact("product.viewed", "2020-01-01T00:00:00.000Z", { productId: "x" }),
			fact("product.viewed", "2020-01-01T00:00:00.000Z", { productId: "x" }),
			fact("product.viewed", "2020-01-01T00:00:00.000Z", { productId: "x" }),
		];
		expect(rankProducts(facts, "units", 10)).toEqual([
			{ productId: "w", sku: "W", name: "W", units: 3, revenue: 30, orders: 3, views: 0, conversion: null },
			{ productId: "x", sku: "X", name: "X", units: 3, revenue: 30, orders: 3, views: 3, conversion: 1 },
		]);
		expect(rankProducts(facts.filter(f => f.orderId !== "o3"), "revenue", 1)).toEqual([expect.objectContaining({ productId: "w" })]);
		expect(rankProducts(facts.filter(f => f.orderId !== "o3"), "units", 2)[1]).toMatchObject({ productId: "x", name: "X new", conversion: 0.6667 });
	});
});
