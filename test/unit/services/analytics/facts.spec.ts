/** Analytics maths (services/analytics/facts.ts), with no broker: facts from events, ranges, summaries, rankings. */
import {
	factOf,
	rankProducts,
	resolveRange,
	summarize,
	viewTotalsOf,
	type Fact,
} from "../../../../services/analytics/facts";
import { line, nextNumber, paid, viewed, viewTotals } from "../../../helpers/events";

describe("analytics facts (services/analytics/facts.ts)", () => {
	const fact = (type: Fact["type"], at: string, fields: Partial<Fact> = {}): Fact => ({
		eventId: `e${nextNumber()}`,
		type,
		at: new Date(at),
		day: at.slice(0, 10),
		currency: "USD",
		...fields,
	});

	it("turns an event into a fact dated by when the money moved", () => {
		const event = paid("2020-10-01T23:30:00.000Z", [line("p", 2, 150)]);
		event.occurredAt = "2020-10-02T00:00:01.000Z";
		expect(factOf(event)).toEqual({
			eventId: event.id,
			type: "order.paid",
			at: new Date("2020-10-01T23:30:00.000Z"),
			day: "2020-10-01",
			orderId: event.data.orderId,
			userId: "u1",
			amount: 300,
			currency: "USD",
			lines: [{ productId: "p", sku: "SKU-p", name: "Product p", quantity: 2, lineTotal: 300 }],
		});
		const view = viewed("p", "2020-10-03T05:00:00.000Z");
		expect(factOf(view)).toEqual({
			eventId: view.id,
			type: "product.viewed",
			at: new Date(view.occurredAt),
			day: "2020-10-03",
			productId: "p",
			userId: null,
		});
	});

	it("turns view totals into one fact per counter, product and day, dated at the day's midnight", () => {
		const event = viewTotals("node-1", "2020-10-04", { p: 12, q: 1 });
		expect(viewTotalsOf(event)).toEqual([
			{
				eventId: "views:node-1:p:2020-10-04",
				type: "product.views",
				at: new Date("2020-10-04T00:00:00.000Z"),
				day: "2020-10-04",
				productId: "p",
				views: 12,
			},
			expect.objectContaining({ eventId: "views:node-1:q:2020-10-04", views: 1 }),
		]);
		expect(() => viewTotalsOf(viewTotals("n", "2020-02-30", { p: 1 }))).toThrow(/a count has no product or day/);
		expect(() => viewTotalsOf(viewTotals("n", "2020-02-01", { p: 1.5 }))).toThrow(/'views' is not a whole number/);
	});

	it("resolves ranges: defaults, bounds and refusals", () => {
		expect(resolveRange(undefined, undefined, "2020-03-10")).toEqual({ from: "2020-02-10", to: "2020-03-10" });
		expect(resolveRange("2020-03-01", undefined, "2020-03-10")).toEqual({ from: "2020-03-01", to: "2020-03-10" });
		expect(resolveRange(undefined, "2021-01-30")).toEqual({ from: "2021-01-01", to: "2021-01-30" });
		expect(() => resolveRange("2021-02-29", "2021-03-01")).toThrow(
			expect.objectContaining({ code: 422, type: "VALIDATION_ERROR" }),
		);
		expect(() => resolveRange("2021-03-02", "2021-03-01")).toThrow(
			expect.objectContaining({ code: 422, type: "INVALID_RANGE" }),
		);
		expect(() => resolveRange("2021-01-01", "2022-01-02")).toThrow(
			expect.objectContaining({ code: 422, type: "RANGE_TOO_LONG" }),
		);
	});

	it("summarizes only the range and the currency", () => {
		const facts = [
			fact("order.paid", "2020-01-01T10:00:00.000Z", { amount: 100 }),
			fact("order.paid", "2020-01-02T10:00:00.000Z", { amount: 999, currency: "EUR" }),
			fact("order.cancelled", "2020-01-02T10:00:00.000Z", { amount: 100 }),
			fact("order.paid", "2020-01-03T10:00:00.000Z", { amount: 5000 }),
			fact("user.registered", "2020-01-02T10:00:00.000Z", { currency: undefined }),
			fact("product.views", "2020-01-01T00:00:00.000Z", { productId: "p", views: 3, currency: undefined }),
			fact("product.viewed", "2020-01-01T09:00:00.000Z", { productId: "p", currency: undefined }),
		];
		expect(summarize(facts, { from: "2020-01-01", to: "2020-01-02" }, "USD")).toEqual({
			from: "2020-01-01",
			to: "2020-01-02",
			currency: "USD",
			orders: { paid: 1, cancelled: 1, paymentFailed: 0 },
			revenue: { gross: 100, refunded: 100, net: 0 },
			averageOrderValue: 100,
			newUsers: 1,
			views: 4,
			conversion: 0.25,
			days: [
				{ date: "2020-01-01", orders: 1, gross: 100, refunded: 0, net: 100, newUsers: 0, views: 4 },
				{ date: "2020-01-02", orders: 0, gross: 0, refunded: 100, net: -100, newUsers: 1, views: 0 },
			],
		});
	});

	it("ranks products with the latest name, cancellations left out and ties by id", () => {
		const lines = (name: string, quantity: number) => [
			{ productId: "x", sku: "X", name, quantity, lineTotal: quantity * 10 },
			{ productId: "w", sku: "W", name: "W", quantity, lineTotal: quantity * 10 },
		];
		const facts = [
			fact("order.paid", "2020-01-02T00:00:00.000Z", { orderId: "o2", lines: lines("X new", 1) }),
			fact("order.paid", "2020-01-01T00:00:00.000Z", { orderId: "o1", lines: lines("X old", 2) }),
			fact("order.paid", "2020-01-03T00:00:00.000Z", { orderId: "o3", lines: lines("X", 7) }),
			fact("order.cancelled", "2020-01-04T00:00:00.000Z", { orderId: "o3", lines: lines("X", 7) }),
			fact("product.views", "2020-01-01T00:00:00.000Z", { productId: "x", views: 2 }),
			fact("product.viewed", "2020-01-01T00:00:00.000Z", { productId: "x" }),
		];
		expect(rankProducts(facts, "units", 10)).toEqual([
			{ productId: "w", sku: "W", name: "W", units: 3, revenue: 30, orders: 3, views: 0, conversion: null },
			{ productId: "x", sku: "X", name: "X", units: 3, revenue: 30, orders: 3, views: 3, conversion: 1 },
		]);
		expect(
			rankProducts(
				facts.filter(f => f.orderId !== "o3"),
				"revenue",
				1,
			),
		).toEqual([expect.objectContaining({ productId: "w" })]);
		expect(
			rankProducts(
				facts.filter(f => f.orderId !== "o3"),
				"units",
				2,
			)[1],
		).toMatchObject({ productId: "x", name: "X new", conversion: 0.6667 });
	});
});
