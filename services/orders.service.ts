/**
 * orders: checkout and order history.
 *
 * Checkout prices every line from the catalog, stores the order as `pending`,
 * reserves its stock through `products.reserveStock` (all or nothing,
 * idempotent per order id) and then marks it `reserved`. A checkout that
 * cannot finish is abandoned: its stock is released by order id and the
 * pending order removed — right away when the failure is known, or by the
 * sweep of stale checkouts after a crash or a lost answer.
 *
 * With an `Idempotency-Key`, the order document itself is the claim on the
 * key: a unique index on `idempotencyKey` lets exactly one of several
 * concurrent repeats create the order, and the others answer with it.
 */
import { createHash } from "node:crypto";
import type { ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../mixins/db.mixin";
import { conflict, notFound, unprocessable } from "../lib/errors";
import { idParam, itemsParam, MAX_QUANTITY, pageParams, quoteOptionParams } from "../lib/params";
import { mergeItems, type PricedLine } from "../lib/pricing";
import { QUOTE_CALL_OPTIONS, type PricingQuote, type Quote, type QuoteParams } from "../lib/quote";
import type { ItemRequest, ShopContext } from "../lib/types";

/** A checkout still pending after this long is stale: it is abandoned and its key freed. */
const PENDING_TIMEOUT_MS = 60_000;
const SWEEP_INTERVAL_MS = 30_000;
/** How long a repeat waits for the first request with its key (below the broker's requestTimeout). */
const IDEMPOTENCY_WAIT_MS = 2_500;
const IDEMPOTENCY_POLL_MS = 50;

/** `pending` and `abandoned` are steps inside a checkout: users never see them. */
export type OrderStatus = "pending" | "abandoned" | "reserved";
const IN_CHECKOUT: OrderStatus[] = ["pending", "abandoned"];

export interface Order extends Omit<Quote, "discountCode"> {
	id: string;
	userId: string;
	discountCode?: string;
	status: OrderStatus;
	createdAt: Date;
	updatedAt: Date;
}

interface OrderDoc extends Omit<Order, "id"> {
	_id: any;
	idempotencyKey?: string;
	requestHash?: string;
}

interface CheckoutParams {
	items?: ItemRequest[];
	fromCart?: boolean;
	country?: string;
	discountCode?: string;
}

interface OrdersMethods extends DbMethods {
	sweepTimer?: NodeJS.Timeout;
	checkout(ctx: ShopContext<CheckoutParams>, key: string | undefined): Promise<Order>;
	replay(ctx: ShopContext, key: string, requestHash: string): Promise<Order | null>;
	requestedItems(ctx: ShopContext<CheckoutParams>): Promise<ItemRequest[]>;
	priceOrder(ctx: ShopContext<CheckoutParams>, items: ItemRequest[]): Promise<Quote>;
	abandonCheckout(order: OrderDoc): Promise<boolean>;
	sweepStaleCheckouts(): Promise<number>;
}

/** The same lines in any order, or the same cart, to the same place with the same code, hash the same. */
function hashRequest(params: CheckoutParams): string {
	const lines = mergeItems(params.items ?? []).sort((a, b) => a.productId.localeCompare(b.productId));
	const body = { ...(params.fromCart ? { fromCart: true } : { items: lines }), country: params.country, discountCode: params.discountCode };
	return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

const stockLines = (order: { items: PricedLine[] }) => order.items.map(({ productId, quantity }) => ({ productId, quantity }));
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

const OrdersService: ServiceSchema<any, OrdersMethods> = {
	name: "orders",

	mixins: [
		DbMixin({
			collection: "orders",
			schema: {
				userId: String,
				items: [{ _id: false, productId: String, sku: String, name: String, unitPrice: Number, quantity: Number, lineTotal: Number }],
				subtotal: Number,
				discount: Number,
				discountCode: String,
				shipping: Number,
				tax: Number,
				total: Number,
				currency: String,
				country: String,
				status: String,
				idempotencyKey: String,
				requestHash: String,
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "userId" }, { field: "status" }, { field: "idempotencyKey", unique: true, sparse: true }],
		}),
	],

	settings: {
		fields: ["id", "userId", "items", "subtotal", "discount", "discountCode", "shipping", "tax", "total", "currency", "country", "status", "createdAt", "updatedAt"],
	},

	actions: {
		/** Check out `items`, or the cart with `fromCart: true`. Answers 201 with the order. */
		create: {
			auth: "user",
			// Never re-run blindly: a repeat is safe only through the Idempotency-Key.
			retryPolicy: { enabled: false },
			params: {
				$$strict: true,
				items: { ...itemsParam, optional: true },
				fromCart: { type: "equal", value: true, strict: true, optional: true },
				...quoteOptionParams,
			},
			async handler(ctx: ShopContext<CheckoutParams>) {
				const { items, fromCart } = ctx.params;
				if (!items === !fromCart) {
					throw unprocessable("Send either items or fromCart: true", "VALIDATION_ERROR", [
						{ type: "oneOf", field: "items", message: "Exactly one of 'items' and 'fromCart' is required." },
					]);
				}
				const key = ctx.meta.idempotencyKey ? `${ctx.meta.user!.id}:${ctx.meta.idempotencyKey}` : undefined;
				const order = await this.checkout(ctx, key);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/v1/orders/${order.id}`;
				return order;
			},
		},

		/** Counts and revenue over all placed orders (for the REPL's shop summary). */
		summary: {
			visibility: "public",
			params: { $$strict: true },
			async handler() {
				const orders = (await this.adapter.find({ query: { status: { $nin: IN_CHECKOUT } } })) as OrderDoc[];
				const byStatus: Record<string, number> = {};
				const revenue: Record<string, number> = {};
				const count: Record<string, number> = {};
				for (const order of orders) {
					byStatus[order.status] = (byStatus[order.status] ?? 0) + 1;
					revenue[order.currency] = (revenue[order.currency] ?? 0) + order.total;
					count[order.currency] = (count[order.currency] ?? 0) + 1;
				}
				const averageOrder = Object.fromEntries(Object.entries(revenue).map(([currency, cents]) => [currency, Math.round(cents / count[currency])]));
				return { orders: orders.length, byStatus, revenue, averageOrder };
			},
		},

		/** The signed-in user's orders, newest first. */
		list: {
			auth: "user",
			params: { $$strict: true, ...pageParams },
			handler(ctx: ShopContext<{ page: number; pageSize: number }>) {
				const { page, pageSize } = ctx.params;
				const query = { userId: ctx.meta.user!.id, status: { $nin: IN_CHECKOUT } };
				return this._list(ctx, { query, sort: ["-createdAt"], page, pageSize, limit: pageSize, offset: (page - 1) * pageSize });
			},
		},

		/** One of the signed-in user's orders; anyone else's is a 404. */
		get: {
			auth: "user",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc || doc.userId !== ctx.meta.user!.id || IN_CHECKOUT.includes(doc.status)) throw notFound("Order", ctx.params.id);
				return this.toEntity(ctx, doc);
			},
		},
	},

	methods: {
		async checkout(ctx: ShopContext<CheckoutParams>, key: string | undefined): Promise<Order> {
			const requestHash = hashRequest(ctx.params);
			if (key) {
				const earlier = await this.replay(ctx, key, requestHash);
				if (earlier) return earlier;
			}
			const userId = ctx.meta.user!.id;
			await ctx.call("users.get", { id: userId }); // 404 when the account is gone
			const priced = await this.priceOrder(ctx, await this.requestedItems(ctx));
			const now = new Date();
			let order: OrderDoc;
			try {
				order = (await this.adapter.insert({
					userId, ...priced, status: "pending", createdAt: now, updatedAt: now,
					...(key && { idempotencyKey: key, requestHash }),
				})) as OrderDoc;
			} catch (err) {
				// A concurrent request with the same key got there first: answer with its order.
				if (key && this.isDuplicateKeyError(err)) return (await this.replay(ctx, key, requestHash)) ?? this.checkout(ctx, key);
				throw err;
			}

			const orderId = this.encodeID(order._id);
			try {
				await ctx.call("products.reserveStock", { orderId, items: stockLines(order) });
			} catch (err: any) {
				if (err?.type === "OUT_OF_STOCK") await this.adapter.removeById(order._id); // nothing is held
				else await this.abandonCheckout(order).catch(e => this.logger.warn(`Checkout ${orderId} is left to the sweep: ${e.message}`));
				throw err;
			}
			const marked = await this.adapter.updateMany({ _id: order._id, status: "pending" }, { $set: { status: "reserved", updatedAt: new Date() } });
			if (marked !== 1) {
				// The sweep abandoned this checkout meanwhile; its release may have come before our reservation.
				await ctx.call("products.releaseStock", { orderId, items: stockLines(order) });
				throw conflict("The checkout took too long and was abandoned; please try again", "CHECKOUT_ABANDONED");
			}

			if (ctx.params.fromCart) await ctx.call("carts.removeItems", { userId, items: stockLines(order) });
			const saved = await this.adapter.findById(order._id);
			await this.entityChanged("created", saved, ctx);
			return this.toEntity(ctx, saved);
		},

		/**
		 * The order an earlier request with this key created, once it is complete;
		 * null when there is none (any more). A different request under the same
		 * key is refused; a stale claim is abandoned so the key can be used again.
		 */
		async replay(ctx: ShopContext, key: string, requestHash: string) {
			const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
			for (;;) {
				const doc = (await this.adapter.findOne({ idempotencyKey: key })) as OrderDoc | null;
				if (!doc) return null;
				if (doc.requestHash !== requestHash) {
					throw unprocessable("This Idempotency-Key was already used for a different request", "IDEMPOTENCY_KEY_REUSED");
				}
				if (!IN_CHECKOUT.includes(doc.status)) {
					ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
					return this.toEntity(ctx, doc);
				}
				if (Date.now() - new Date(doc.updatedAt).getTime() > PENDING_TIMEOUT_MS) {
					await this.abandonCheckout(doc);
					continue;
				}
				if (Date.now() > deadline) throw conflict("A request with this Idempotency-Key is still in progress", "IDEMPOTENCY_KEY_IN_USE");
				await sleep(IDEMPOTENCY_POLL_MS);
			}
		},

		async requestedItems(ctx: ShopContext<CheckoutParams>) {
			const items = ctx.params.fromCart
				? await ctx.call<ItemRequest[], { userId: string }>("carts.items", { userId: ctx.meta.user!.id })
				: mergeItems(ctx.params.items!);
			if (items.length === 0) throw unprocessable("The cart is empty", "EMPTY_CART");
			const tooMany = items.find(item => item.quantity > MAX_QUANTITY);
			if (tooMany) throw unprocessable(`At most ${MAX_QUANTITY} of one product per order`, "QUANTITY_TOO_LARGE", { productId: tooMany.productId });
			return items;
		},

		/** The quote of the order's lines as it is placed. */
		async priceOrder(ctx: ShopContext<CheckoutParams>, items: ItemRequest[]) {
			const { country, discountCode } = ctx.params;
			const { missing, ...quote } = await ctx.call<PricingQuote, QuoteParams>("pricing.quote", { items, country, discountCode }, QUOTE_CALL_OPTIONS);
			if (missing.length) throw notFound("Product", missing.join(","));
			return quote;
		},

		/**
		 * Give up a checkout: claim it (pending → abandoned, so it can no longer
		 * become reserved), release whatever stock it holds, remove it.
		 * Returns false when it was not this call's to abandon.
		 */
		async abandonCheckout(order: OrderDoc) {
			const claimed = await this.adapter.updateMany(
				{ _id: order._id, status: { $in: IN_CHECKOUT } },
				{ $set: { status: "abandoned", updatedAt: new Date() } },
			);
			if (claimed !== 1) return false;
			await this.broker.call("products.releaseStock", { orderId: this.encodeID(order._id), items: stockLines(order) });
			await this.adapter.removeById(order._id);
			return true;
		},

		/** Abandon every checkout that has been pending longer than PENDING_TIMEOUT_MS. */
		async sweepStaleCheckouts() {
			const stale = (await this.adapter.find({
				query: { status: { $in: IN_CHECKOUT }, updatedAt: { $lt: new Date(Date.now() - PENDING_TIMEOUT_MS) } },
			})) as OrderDoc[];
			let abandoned = 0;
			for (const order of stale) {
				try {
					if (await this.abandonCheckout(order)) abandoned++;
				} catch (err: any) {
					this.logger.warn(`Could not abandon stale checkout ${this.encodeID(order._id)} yet: ${err.message}`);
				}
			}
			if (abandoned) this.logger.warn(`Abandoned ${abandoned} stale checkout(s) and released their stock.`);
			return abandoned;
		},
	},

	started() {
		const sweep = () => this.sweepStaleCheckouts().catch(err => this.logger.warn(`Sweep of stale checkouts failed: ${err.message}`));
		this.sweepTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
		this.sweepTimer.unref();
		void sweep();
	},

	stopped() {
		clearInterval(this.sweepTimer);
	},
};

export default OrdersService;
