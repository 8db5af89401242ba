/**
 * The analytics read model: facts and the figures computed from them.
 *
 * Every consumed event becomes one immutable `Fact` (services/analytics.service.ts
 * stores it under a unique `eventId`), except product views: they arrive as
 * running totals per counter, product and day (`product.views`), each stored
 * as one `product.views` fact that keeps the highest total. Figures are plain
 * sums over facts, in integer cents, by UTC day. Nothing here touches a broker or a store, so all
 * of it is unit-testable on its own.
 */
import type { DomainEvent } from "../../contracts/events";
import { unprocessable } from "../../contracts/errors";

/** The event types analytics records (cart.updated is not one: no figure uses carts). */
export type FactType = "user.registered" | "product.viewed" | "order.paid" | "order.payment_failed" | "order.cancelled";

/** Any event analytics records, discriminated by `type`. */
export type FactEvent = { [T in FactType]: DomainEvent<T> }[FactType];

/** One ordered line as a fact keeps it (integer cents). */
export interface FactLine {
	productId: string;
	sku: string;
	name: string;
	quantity: number;
	lineTotal: number;
}

/** What one event contributes to the figures, or one counter's views of a product on a day. */
export interface Fact {
	/** The event's id; for view totals `views:<counter>:<productId>:<day>`. */
	eventId: string;
	type: FactType | "product.views";
	/** When it happened: `paidAt` / `cancelledAt` of orders, `occurredAt` otherwise. */
	at: Date;
	/** UTC day of `at`, "YYYY-MM-DD". */
	day: string;
	userId?: string | null;
	orderId?: string;
	productId?: string;
	/** Cents: the charge of a paid order, the refund of a cancelled one, the attempted charge of a failed payment. */
	amount?: number;
	currency?: string;
	lines?: FactLine[];
	/** Views of `productId` on `day` (view totals; a `product.viewed` fact is one view). */
	views?: number;
}

/** An inclusive range of UTC days. */
export interface DayRange {
	from: string;
	to: string;
}

export const DEFAULT_RANGE_DAYS = 30;
export const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** The UTC day of a date, "YYYY-MM-DD". */
export const utcDay = (date: Date): string => date.toISOString().slice(0, 10);

/** The day `n` days after `day` (before, for negative `n`). */
export const addDays = (day: string, n: number): string => utcDay(new Date(Date.parse(day) + n * DAY_MS));

/** Whether `day` is "YYYY-MM-DD" and a real calendar day (not 2025-02-30). */
export const isCalendarDay = (day: string): boolean =>
	DAY_PATTERN.test(day) && !Number.isNaN(Date.parse(day)) && utcDay(new Date(day)) === day;

/** Every day of the range, in order. */
export function daysOf(range: DayRange): string[] {
	const days: string[] = [];
	for (let day = range.from; day <= range.to; day = addDays(day, 1)) days.push(day);
	return days;
}

/** A store filter on `at` for the range: from the first day's midnight up to the midnight after the last. */
export const rangeBounds = (range: DayRange) => ({ $gte: new Date(range.from), $lt: new Date(addDays(range.to, 1)) });

/**
 * The range asked for: `to` defaults to `today`, `from` to DEFAULT_RANGE_DAYS
 * days through `to`. A day that does not exist, `from` after `to` or more than
 * MAX_RANGE_DAYS days are refused with a 422.
 */
export function resolveRange(
	from: string | undefined,
	to: string | undefined,
	today: string = utcDay(new Date()),
): DayRange {
	for (const [field, day] of [
		["from", from],
		["to", to],
	] as const) {
		if (day !== undefined && !isCalendarDay(day)) {
			throw unprocessable(`'${field}' must be a calendar day as YYYY-MM-DD`, "VALIDATION_ERROR", [
				{
					type: "date",
					field,
					message: `The '${field}' field must be a calendar day (YYYY-MM-DD).`,
					actual: day,
				},
			]);
		}
	}
	const last = to ?? today;
	const first = from ?? addDays(last, 1 - DEFAULT_RANGE_DAYS);
	if (first > last) throw unprocessable("'from' must not be after 'to'", "INVALID_RANGE", { from: first, to: last });
	const days = (Date.parse(last) - Date.parse(first)) / DAY_MS + 1;
	if (days > MAX_RANGE_DAYS)
		throw unprocessable(`A range spans at most ${MAX_RANGE_DAYS} days`, "RANGE_TOO_LONG", {
			from: first,
			to: last,
			days,
		});
	return { from: first, to: last };
}

function unreadable(event: DomainEvent, reason: string): Error {
	return new Error(`Unreadable '${event.type}' event ${event.id}: ${reason}`);
}

/** A count or an amount of cents: a whole number, never negative. */
function whole(event: DomainEvent, value: unknown, field: string): number {
	if (!Number.isInteger(value) || (value as number) < 0) throw unreadable(event, `'${field}' is not a whole number`);
	return value as number;
}

function linesOf(event: FactEvent, items: unknown): FactLine[] {
	if (!Array.isArray(items)) throw unreadable(event, "'items' is not a list");
	return items.map(({ productId, sku, name, quantity, lineTotal }) => ({
		productId,
		sku,
		name,
		quantity: whole(event, quantity, "quantity"),
		lineTotal: whole(event, lineTotal, "lineTotal"),
	}));
}

/** The fact of an event (throws on a payload that does not follow contracts/events.ts). */
export function factOf(event: FactEvent): Fact {
	const when =
		event.type === "order.paid"
			? event.data.paidAt
			: event.type === "order.cancelled"
				? event.data.cancelledAt
				: undefined;
	const at = new Date(when && !Number.isNaN(Date.parse(when)) ? when : event.occurredAt);
	if (Number.isNaN(at.getTime())) throw unreadable(event, "it has no valid time");
	const base = { eventId: event.id, type: event.type, at, day: utcDay(at) };
	switch (event.type) {
		case "user.registered":
			return { ...base, userId: event.data.userId };
		case "product.viewed":
			return { ...base, productId: event.data.productId, userId: event.data.userId ?? null };
		case "order.paid":
			return {
				...base,
				orderId: event.data.orderId,
				userId: event.data.userId,
				amount: whole(event, event.data.total, "total"),
				currency: event.data.currency,
				lines: linesOf(event, event.data.items),
			};
		case "order.payment_failed":
			return {
				...base,
				orderId: event.data.orderId,
				userId: event.data.userId,
				amount: whole(event, event.data.total, "total"),
				currency: event.data.currency,
			};
		case "order.cancelled":
			return {
				...base,
				orderId: event.data.orderId,
				userId: event.data.userId,
				amount: whole(event, event.data.refunded, "refunded"),
				currency: event.data.currency,
				lines: linesOf(event, event.data.items),
			};
	}
}

/**
 * The view totals of a `product.views` event, one per product and day, each
 * under the key of its counter, product and day (its `eventId`), dated at the
 * day's midnight. Stored keeping the highest total of each key, so that a
 * redelivered or reordered event changes nothing.
 */
export function viewTotalsOf(event: DomainEvent<"product.views">): Fact[] {
	const { counter, counts } = event.data;
	if (typeof counter !== "string" || !Array.isArray(counts)) throw unreadable(event, "it has no counter and counts");
	return counts.map(({ productId, day, views }) => {
		if (typeof productId !== "string" || typeof day !== "string" || !isCalendarDay(day))
			throw unreadable(event, "a count has no product or day");
		return {
			eventId: `views:${counter}:${productId}:${day}`,
			type: "product.views",
			at: new Date(day),
			day,
			productId,
			views: whole(event, views, "views"),
		};
	});
}

/** The views a fact counts: its total, or one for a `product.viewed` fact of an earlier version. */
const viewsOf = (fact: Fact): number =>
	fact.type === "product.views" ? (fact.views ?? 0) : fact.type === "product.viewed" ? 1 : 0;

/** Orders per view, to 4 decimals; null without views. */
const perView = (orders: number, views: number): number | null =>
	views ? Math.round((orders / views) * 10_000) / 10_000 : null;

/** One day of a summary; `orders` are the orders paid that day. */
export interface DaySummary {
	date: string;
	orders: number;
	gross: number;
	refunded: number;
	net: number;
	newUsers: number;
	views: number;
}

export interface Summary {
	from: string;
	to: string;
	currency: string;
	orders: { paid: number; cancelled: number; paymentFailed: number };
	revenue: { gross: number; refunded: number; net: number };
	averageOrderValue: number;
	newUsers: number;
	/** Product views, and paid orders per view (to 4 decimals; null without views). */
	views: number;
	conversion: number | null;
	days: DaySummary[];
}

/**
 * The figures of a range in one currency. Money is counted on the day it moved
 * (a charge on its `paidAt` day, a refund on its `cancelledAt` day), as the
 * payments ledger does; facts outside the range or in another currency are left out.
 */
export function summarize(facts: Fact[], range: DayRange, currency: string): Summary {
	const days = new Map(
		daysOf(range).map(date => [date, { date, orders: 0, gross: 0, refunded: 0, net: 0, newUsers: 0, views: 0 }]),
	);
	let cancelled = 0;
	let paymentFailed = 0;
	for (const fact of facts) {
		const day = days.get(fact.day);
		if (!day) continue;
		if (fact.type === "user.registered") day.newUsers++;
		day.views += viewsOf(fact);
		if (fact.currency !== currency) continue;
		if (fact.type === "order.paid") {
			day.orders++;
			day.gross += fact.amount!;
		} else if (fact.type === "order.cancelled") {
			cancelled++;
			day.refunded += fact.amount!;
		} else if (fact.type === "order.payment_failed") {
			paymentFailed++;
		}
	}
	const rows = [...days.values()].map(day => ({ ...day, net: day.gross - day.refunded }));
	const total = (key: "orders" | "gross" | "refunded" | "newUsers" | "views") =>
		rows.reduce((sum, day) => sum + day[key], 0);
	const [paid, gross, refunded, views] = [total("orders"), total("gross"), total("refunded"), total("views")];
	return {
		...range,
		currency,
		orders: { paid, cancelled, paymentFailed },
		revenue: { gross, refunded, net: gross - refunded },
		averageOrderValue: paid ? Math.round(gross / paid) : 0,
		newUsers: total("newUsers"),
		views,
		conversion: perView(paid, views),
		days: rows,
	};
}

export type RankBy = "units" | "revenue";

export interface ProductRow {
	productId: string;
	/** SKU and name as the latest paid order had them. */
	sku: string;
	name: string;
	/** Units and line totals (cents) of paid orders not cancelled since. */
	units: number;
	revenue: number;
	/** Paid orders with the product, also those cancelled since. */
	orders: number;
	views: number;
	/** orders / views, to 4 decimals; null without views. */
	conversion: number | null;
}

/**
 * Products of the paid orders among `facts`, best first by `by`, ties by
 * productId. An order with an `order.cancelled` fact among `facts` adds no units
 * or revenue; view facts are counted as views.
 */
export function rankProducts(facts: Fact[], by: RankBy, limit: number): ProductRow[] {
	const cancelled = new Set(facts.filter(fact => fact.type === "order.cancelled").map(fact => fact.orderId));
	const views = new Map<string, number>();
	const rows = new Map<
		string,
		Omit<ProductRow, "orders" | "views" | "conversion"> & { orders: Set<string>; at: Date }
	>();
	for (const fact of facts) {
		if (viewsOf(fact)) views.set(fact.productId!, (views.get(fact.productId!) ?? 0) + viewsOf(fact));
		if (fact.type !== "order.paid") continue;
		for (const line of fact.lines ?? []) {
			let row = rows.get(line.productId);
			if (!row)
				rows.set(
					line.productId,
					(row = {
						productId: line.productId,
						sku: line.sku,
						name: line.name,
						units: 0,
						revenue: 0,
						orders: new Set(),
						at: fact.at,
					}),
				);
			if (fact.at >= row.at) Object.assign(row, { sku: line.sku, name: line.name, at: fact.at });
			row.orders.add(fact.orderId!);
			if (cancelled.has(fact.orderId)) continue;
			row.units += line.quantity;
			row.revenue += line.lineTotal;
		}
	}
	return [...rows.values()]
		.map(({ orders: paidOrders, at: _at, ...row }) => {
			const orders = paidOrders.size;
			const viewed = views.get(row.productId) ?? 0;
			return {
				...row,
				orders,
				views: viewed,
				conversion: perView(orders, viewed),
			};
		})
		.sort((a, b) => b[by] - a[by] || (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0))
		.slice(0, limit);
}
