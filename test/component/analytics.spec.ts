import type { ServiceBroker } from "moleculer";
import { addDays, utcDay } from "../../services/analytics/facts";
import type { DomainEvent } from "../../contracts/events";
import { cancelled, failed, line, paid, registered, viewed, viewTotals } from "../helpers/events";
import AnalyticsService from "../../services/analytics/analytics.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
let analytics: any;

beforeAll(async () => {
	broker = await startBroker([AnalyticsService]);
	analytics = broker.getLocalService("analytics");
});
afterAll(() => broker.stop());

const deliver = (...events: DomainEvent[]) =>
	Promise.all(events.map(event => analytics.emitLocalChannelHandler(event.type, event)));
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
			from: "2020-01-01",
			to: "2020-01-03",
			currency: "USD",
			orders: { paid: 3, cancelled: 0, paymentFailed: 1 },
			revenue: { gross: 7502, refunded: 0, net: 7502 },
			averageOrderValue: 2501, // 7502 / 3 = 2500.67
			newUsers: 0,
			views: 0,
			conversion: null,
			days: [
				{ date: "2020-01-01", orders: 2, gross: 3002, refunded: 0, net: 3002, newUsers: 0, views: 0 },
				{ date: "2020-01-02", orders: 0, gross: 0, refunded: 0, net: 0, newUsers: 0, views: 0 },
				{ date: "2020-01-03", orders: 1, gross: 4500, refunded: 0, net: 4500, newUsers: 0, views: 0 },
			],
		});
		expect(await summary({ from: "2020-01-01", to: "2020-01-03", currency: "eur" })).toMatchObject({
			currency: "EUR",
			orders: { paid: 1, paymentFailed: 0 },
			revenue: { gross: 999 },
			averageOrderValue: 999,
		});
	});

	it("takes a cancellation's refund off on the day of the cancellation", async () => {
		const order = paid("2020-02-01T10:00:00.000Z", [line("a", 5, 1000)]);
		await deliver(order, paid("2020-02-01T11:00:00.000Z", [line("a", 1, 300)]));
		await deliver(cancelled(order, "2020-02-02T09:00:00.000Z"));
		const result = await summary({ from: "2020-02-01", to: "2020-02-02" });
		expect(result).toMatchObject({
			orders: { paid: 2, cancelled: 1 },
			revenue: { gross: 5300, refunded: 5000, net: 300 },
			averageOrderValue: 2650,
		});
		expect(result.days).toEqual([
			{ date: "2020-02-01", orders: 2, gross: 5300, refunded: 0, net: 5300, newUsers: 0, views: 0 },
			{ date: "2020-02-02", orders: 0, gross: 0, refunded: 5000, net: -5000, newUsers: 0, views: 0 },
		]);
		expect(await summary({ from: "2020-02-01", to: "2020-02-01" })).toMatchObject({
			orders: { cancelled: 0 },
			revenue: { refunded: 0, net: 5300 },
		});
	});

	it("counts new users per day, whatever the currency", async () => {
		await deliver(
			registered("2020-03-01T01:00:00.000Z"),
			registered("2020-03-01T22:00:00.000Z"),
			registered("2020-03-03T00:00:00.000Z"),
		);
		const result = await summary({ from: "2020-03-01", to: "2020-03-03", currency: "GBP" });
		expect(result).toMatchObject({
			newUsers: 3,
			orders: { paid: 0 },
			revenue: { gross: 0, refunded: 0, net: 0 },
			averageOrderValue: 0,
		});
		expect(result.days.map((day: any) => day.newUsers)).toEqual([2, 0, 1]);
	});

	it("covers the last 30 days through today by default", async () => {
		const now = new Date();
		await deliver(paid(now.toISOString(), [line("a", 1, 1234)]), registered(now.toISOString()));
		const result = await summary({});
		expect(result).toMatchObject({ from: addDays(utcDay(now), -29), to: utcDay(now) });
		expect(result.days).toHaveLength(30);
		expect(result.days[29]).toEqual({
			date: utcDay(now),
			orders: 1,
			gross: 1234,
			refunded: 0,
			net: 1234,
			newUsers: 1,
			views: 0,
		});
	});

	it("refuses malformed days, reversed or too long ranges and unknown params with a 422", async () => {
		const refused = (params: object, type: string) =>
			expect(summary(params)).rejects.toMatchObject({ code: 422, type });
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
			// Two products nodes' running totals on 2020-06-01: t-a 3 + 1, t-c 3.
			viewTotals("node-1", "2020-06-01", { "t-a": 2, "t-c": 1 }),
			viewTotals("node-1", "2020-06-01", { "t-a": 3, "t-c": 3 }),
			viewTotals("node-2", "2020-06-01", { "t-a": 1 }),
			viewed("t-a", "2020-05-31T23:00:00.000Z"), // one view from a node of an earlier version, before the range
		);
		await deliver(cancelled(cancelledLater, "2020-07-05T10:00:00.000Z")); // cancelled after the range: still left out
	});

	it("ranks by units, net of cancelled orders, with views and conversion", async () => {
		expect(await top(range)).toEqual({
			...range,
			currency: "USD",
			by: "units",
			rows: [
				{
					productId: "t-a",
					sku: "SKU-t-a",
					name: "Product t-a",
					units: 5,
					revenue: 500,
					orders: 2,
					views: 4,
					conversion: 0.5,
				},
				{
					productId: "t-b",
					sku: "SKU-t-b",
					name: "Product t-b",
					units: 1,
					revenue: 1000,
					orders: 2,
					views: 0,
					conversion: null,
				},
				{
					productId: "t-c",
					sku: "SKU-t-c",
					name: "Product t-c",
					units: 1,
					revenue: 500,
					orders: 1,
					views: 3,
					conversion: 0.3333,
				},
			],
		});
	});

	it("ranks by revenue, ties by product id, up to limit (a query string)", async () => {
		const { rows } = await top({ ...range, by: "revenue", limit: "2" });
		expect(rows.map((row: any) => [row.productId, row.revenue])).toEqual([
			["t-b", 1000],
			["t-a", 500],
		]);
	});

	it("covers all time without a range, and other currencies apart", async () => {
		const all = await top({ limit: 50 });
		expect(all).toMatchObject({ from: null, to: null, currency: "USD" });
		expect(all.rows.find((row: any) => row.productId === "t-c")).toMatchObject({ units: 10, orders: 2, views: 3 });
		expect(all.rows.find((row: any) => row.productId === "t-a")).toMatchObject({ views: 5 });
		expect((await top({ ...range, currency: "EUR" })).rows).toEqual([
			expect.objectContaining({ productId: "t-a", units: 100, views: 4 }),
		]);
	});

	it("refuses a bad order, limit or range with a 422", async () => {
		await expect(top({ by: "views" })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		await expect(top({ limit: 51 })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		await expect(top({ from: "2020-06-30", to: "2020-06-01" })).rejects.toMatchObject({
			code: 422,
			type: "INVALID_RANGE",
		});
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
			orders: { paid: 1, cancelled: 1 },
			revenue: { gross: 5000, refunded: 5000, net: 0 },
		});
	});

	it("keep the highest view total per counter, product and day, whatever the order and repeats of deliveries", async () => {
		const day = "2020-09-10";
		const early = viewTotals("node-a", day, { "v-a": 5, "v-b": 1 });
		const late = viewTotals("node-a", day, { "v-a": 9 });
		await deliver(late, early, late, early);
		await deliver(viewTotals("node-b", day, { "v-a": 2 }), viewTotals("node-b", "2020-09-11", { "v-a": 7 }));
		const totals = { type: "product.views", day: { $in: [day, "2020-09-11"] } };
		expect(await analytics.adapter.count({ query: totals })).toBe(4); // node-a v-a and v-b, node-b v-a on two days
		const days = (await summary({ from: day, to: "2020-09-11" })).days;
		expect(days.map((d: any) => d.views)).toEqual([9 + 1 + 2, 7]);
		expect(await stored(`views:node-a:v-a:${day}`)).toBe(1);
	});

	it("refuse an event they cannot read, so the channel retries and dead-letters it", async () => {
		await expect(analytics.emitLocalChannelHandler("order.paid", { id: "x", type: "order.paid" })).rejects.toThrow(
			/Unreadable 'order.paid' message/,
		);
		const event = paid("2020-09-03T10:00:00.000Z", [line("d-a", 1, 100)], { total: 10.5 });
		await expect(deliver(event)).rejects.toThrow(/'total' is not a whole number/);
		expect(await stored(event.id)).toBe(0);
		const views = viewTotals("node-c", "2020-09-12", { "v-c": -1 });
		await expect(deliver(views)).rejects.toThrow(/'views' is not a whole number/);
		expect(await stored("views:node-c:v-c:2020-09-12")).toBe(0);
	});
});
