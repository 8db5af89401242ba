/**
 * analytics: sales and traffic figures for admins, from domain events.
 *
 * Every consumed event is stored as one fact (services/analytics/facts.ts) in the
 * `analytics` collection, under a unique index on its event id. That single
 * insert is the whole effect of an event and also its deduplication: a
 * redelivered event — later, concurrently, or after a crash — hits the index
 * and changes nothing. Product views come as running totals (`product.views`,
 * one event per products node and interval): each total is one upsert that
 * keeps the highest value per counter, product and day, as idempotent as an insert. Figures are summed from the facts of the requested range
 * when asked, in JS (NeDB has no aggregation pipeline); that reads every fact
 * of the range, which is fine at this shop's scale.
 *
 * Money reconciles with the payments ledger: gross = the `order.paid` totals
 * (charges), refunded = the `order.cancelled` refunds, each on its own day.
 * `cart.updated` is not consumed: no figure uses carts.
 */
import type { Service, ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import {
	factOf,
	viewTotalsOf,
	rangeBounds,
	rankProducts,
	resolveRange,
	summarize,
	type DayRange,
	type Fact,
	type FactEvent,
	type FactType,
	type RankBy,
} from "./facts";
import { CONSUMER } from "../../platform/channels";
import { EVENT_VERSION, isDomainEvent, type DomainEvent, type EventType } from "../../contracts/events";
import type { ShopContext } from "../../contracts/context";
import { currencyParam } from "../../platform/params";

/** The stored facts that count views: totals, and single views from nodes of earlier versions. */
const VIEW_FACTS: Fact["type"][] = ["product.views", "product.viewed"];
const SUMMARY_FACTS: Fact["type"][] = [
	"order.paid",
	"order.cancelled",
	"order.payment_failed",
	"user.registered",
	...VIEW_FACTS,
];

/** Query-string params: days as "YYYY-MM-DD" (checked further by resolveRange), an ISO currency code. */
const dayParam = { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/, optional: true } as const;
/** The currency figures are summed in: one at a time, as amounts of different currencies do not add up. */
const reportCurrencyParam = { ...currencyParam, trim: true, uppercase: true, optional: true, default: "USD" } as const;

interface RangeParams {
	from?: string;
	to?: string;
	currency: string;
}

interface AnalyticsMethods extends DbMethods {
	record(type: FactType, payload: unknown): Promise<void>;
	recordViews(payload: unknown): Promise<void>;
	facts(query: object): Promise<Fact[]>;
}

/** A message as the domain event of `type` it must be; one this code cannot read fails, so it is retried and then dead-lettered, not lost. */
function readable<T extends EventType>(payload: unknown, type: T): DomainEvent<T> {
	if (!isDomainEvent(payload, type))
		throw new Error(`Unreadable '${type}' message: not a version ${EVENT_VERSION} domain event of that type`);
	return payload;
}

/** A consumer that records each event of `type` once. */
const consumer = (type: FactType) => ({
	...CONSUMER,
	handler(this: AnalyticsMethods, payload: unknown) {
		return this.record(type, payload);
	},
});

const AnalyticsService: ServiceSchema<object, object, object, Service & AnalyticsMethods> = {
	name: "analytics",

	mixins: [
		DbMixin({
			collection: "analytics",
			schema: {
				eventId: String,
				type: { type: String },
				at: Date,
				day: String,
				userId: String,
				orderId: String,
				productId: String,
				amount: Number,
				currency: String,
				views: Number,
				lines: {
					type: [
						{
							_id: false,
							productId: String,
							sku: String,
							name: String,
							quantity: Number,
							lineTotal: Number,
						},
					],
					default: undefined,
				},
			},
			indexes: [{ field: "eventId", unique: true }, { field: "at" }, { field: "type" }],
		}),
	],

	actions: {
		/**
		 * Orders, revenue (cents), new users and product views from `from` to `to`
		 * (inclusive UTC days; default the last 30 days through today, at most 366),
		 * in `currency`: `{ from, to, currency, orders: { paid, cancelled, paymentFailed },
		 * revenue: { gross, refunded, net }, averageOrderValue, newUsers, views,
		 * conversion, days: [{ date, orders, gross, refunded, net, newUsers, views }] }`,
		 * every day listed; `conversion` is paid orders per view (null without views).
		 */
		summary: {
			auth: "admin",
			params: { $$strict: true, from: dayParam, to: dayParam, currency: reportCurrencyParam },
			async handler(ctx: ShopContext<RangeParams>) {
				const range = resolveRange(ctx.params.from, ctx.params.to);
				const facts = await this.facts({ type: { $in: SUMMARY_FACTS }, at: rangeBounds(range) });
				return summarize(facts, range, ctx.params.currency);
			},
		},

		/**
		 * The `limit` best-selling products by `by` ("units" or "revenue"), of orders
		 * paid in `from`..`to` (all time when neither is given; otherwise as in
		 * `summary`) in `currency`: `{ from, to, currency, by, rows: [{ productId,
		 * sku, name, units, revenue, orders, views, conversion }] }`. Units and revenue
		 * (line totals, before order discounts, shipping and tax) leave out orders
		 * cancelled since; `orders` counts every paid order with the product,
		 * `conversion` is orders / views in the range (null without views).
		 */
		topProducts: {
			auth: "admin",
			params: {
				$$strict: true,
				by: { type: "enum", values: ["units", "revenue"], optional: true, default: "units" },
				limit: { type: "number", integer: true, min: 1, max: 50, optional: true, default: 10, convert: true },
				from: dayParam,
				to: dayParam,
				currency: reportCurrencyParam,
			},
			async handler(ctx: ShopContext<RangeParams & { by: RankBy; limit: number }>) {
				const { from, to, currency, by, limit } = ctx.params;
				const range: DayRange | null = from || to ? resolveRange(from, to) : null;
				const within = range ? { at: rangeBounds(range) } : {};
				const facts = await Promise.all([
					this.facts({ type: "order.paid", currency, ...within }),
					this.facts({ type: "order.cancelled", currency }), // cancelled at any time, also after the range
					this.facts({ type: { $in: VIEW_FACTS }, ...within }),
				]);
				return {
					from: range?.from ?? null,
					to: range?.to ?? null,
					currency,
					by,
					rows: rankProducts(facts.flat(), by, limit),
				};
			},
		},
	},

	channels: {
		"user.registered": consumer("user.registered"),
		"product.viewed": consumer("product.viewed"),
		"product.views": {
			...CONSUMER,
			handler(this: AnalyticsMethods, payload: unknown) {
				return this.recordViews(payload);
			},
		},
		"order.paid": consumer("order.paid"),
		"order.payment_failed": consumer("order.payment_failed"),
		"order.cancelled": consumer("order.cancelled"),
	},

	methods: {
		/**
		 * Store the fact of an event unless it is stored already. An event this
		 * code cannot read fails, so it is retried and then dead-lettered, not lost.
		 */
		async record(type: FactType, payload: unknown) {
			const event = readable(payload, type) as FactEvent;
			const { created } = await this.insertOrGet(factOf(event), { eventId: event.id });
			if (!created) this.logger.debug(`Event ${event.id} (${type}) was recorded before; skipped.`);
		},

		/** Store the view totals of a `product.views` event, each keeping the highest total it has had. */
		async recordViews(payload: unknown) {
			for (const { eventId, views, ...total } of viewTotalsOf(readable(payload, "product.views"))) {
				await this.upsert({ eventId }, { $set: total, $max: { views } });
			}
		},

		/** Facts matching a store query, as plain objects. */
		async facts(query: object) {
			const docs = await this.adapter.find({ query });
			return docs.map(doc => this.plain(doc) as Fact);
		},
	},
};

export default AnalyticsService;
