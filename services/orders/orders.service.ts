/**
 * orders: checkout, cancellation and order history.
 *
 * Checkout prices every line from the catalog, stores the order as `pending`,
 * reserves its stock through `products.reserveStock` (all or nothing,
 * idempotent per order id), marks it `reserved` and takes the payment (the
 * saga in services/orders/saga.ts): `paid`, or `payment_failed` with the
 * stock back. A checkout that cannot reserve is abandoned: its stock is
 * released by order id and the pending order removed — right away when the
 * failure is known, or by the recovery sweep after a crash or a lost answer.
 *
 * With an `Idempotency-Key`, the order document itself is the claim on the
 * key: a unique index on `idempotencyKey` lets exactly one of several
 * concurrent repeats create the order, and the others answer with it.
 */
import { createHash } from "node:crypto";
import type { ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import { OUTBOX_FIELD, OUTBOX_INDEX, OutboxMixin, type OutboxMethods } from "../../platform/outbox.mixin";
import { OrderSagaMixin, stockLines, type OrderStatus, type SagaMethods, type SagaOrder } from "./saga";
import { config } from "../../platform/config";
import { conflict, isClientRefusal, notFound, unprocessable } from "../../platform/errors";
import type { ShopContext } from "../../contracts/context";
import { type ItemRequest, itemsParam, MAX_QUANTITY, mergeItems } from "../../contracts/items";
import { CHARGE_TIMEOUT_MS, MAX_CHARGE, paymentMethodParam } from "../../contracts/payments";
import { type PricingQuote, type Quote, QUOTE_CALL_OPTIONS, QUOTE_SCHEMA, quoteOptionParams, type QuoteParams } from "../../contracts/pricing";
import { idParam, pageParams } from "../../platform/params";

/** A checkout still pending after this long is stale: it is abandoned and its key freed. */
const PENDING_TIMEOUT_MS = config.orders.recoverAfterMs;
/** How long a repeat waits for the first request with its key to finish. */
const IDEMPOTENCY_WAIT_MS = CHARGE_TIMEOUT_MS + 2_000;
const IDEMPOTENCY_POLL_MS = 50;
/**
 * Checkout at its slowest: the account, the quote, the reservation, the invoice, the stock commit and the
 * cart, each within the 3 s request timeout, plus the charge with its lookup. A repeat waits up to
 * IDEMPOTENCY_WAIT_MS first. (A step that times out does not fail the checkout: it answers 202.)
 */
const CHECKOUT_TIMEOUT_MS = IDEMPOTENCY_WAIT_MS + CHARGE_TIMEOUT_MS + 6 * 3_000;

/** `pending` and `abandoned` are steps inside a checkout: users never see them. */
const IN_CHECKOUT: OrderStatus[] = ["pending", "abandoned"];

export interface Order extends Omit<Quote, "discountCode"> {
	id: string;
	userId: string;
	discountCode?: string;
	status: OrderStatus;
	timeline: Array<{ status: OrderStatus; at: Date; note?: string }>;
	invoiceNumber?: string;
	payment?: { status: string; failureCode?: string; failureMessage?: string; card?: { brand: string; last4: string } };
	createdAt: Date;
	updatedAt: Date;
}

interface OrderDoc extends SagaOrder {
	createdAt: Date;
	idempotencyKey?: string;
	requestHash?: string;
}

interface CheckoutParams {
	items?: ItemRequest[];
	fromCart?: boolean;
	country?: string;
	discountCode?: string;
	paymentMethod: string;
}

interface OrdersMethods extends DbMethods, OutboxMethods, SagaMethods {
	checkout(ctx: ShopContext<CheckoutParams>, key: string | undefined): Promise<Order>;
	answerCheckout(ctx: ShopContext, order: Order): Order;
	unlessInterrupted(order: OrderDoc, step: () => Promise<SagaOrder>): Promise<SagaOrder>;
	replay(ctx: ShopContext, key: string, requestHash: string): Promise<Order | null>;
	requestedItems(ctx: ShopContext<CheckoutParams>): Promise<ItemRequest[]>;
	priceOrder(ctx: ShopContext<CheckoutParams>, items: ItemRequest[]): Promise<Quote>;
	abandonCheckout(order: OrderDoc): Promise<boolean>;
	removeAbandoned(order: OrderDoc): Promise<void>;
}

/** The same lines in any order, or the same cart, to the same place with the same code and payment method, hash the same. */
function hashRequest(params: CheckoutParams): string {
	const lines = mergeItems(params.items ?? []).sort((a, b) => a.productId.localeCompare(b.productId));
	const body = {
		...(params.fromCart ? { fromCart: true } : { items: lines }),
		country: params.country, discountCode: params.discountCode, paymentMethod: params.paymentMethod,
	};
	return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

const { MoleculerClientError } = Errors;
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

const OrdersService: ServiceSchema<any, OrdersMethods> = {
	name: "orders",

	mixins: [
		DbMixin({
			collection: "orders",
			schema: {
				userId: String,
				...QUOTE_SCHEMA,
				status: String,
				timeline: [{ _id: false, status: String, at: Date, note: String }],
				paymentMethod: String,
				payment: { status: String, failureCode: String, failureMessage: String, card: { brand: String, last4: String } },
				invoiceNumber: String,
				fromCart: Boolean,
				paidAt: Date,
				cancelledAt: Date,
				refunded: Number,
				idempotencyKey: String,
				requestHash: String,
				...OUTBOX_FIELD,
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "userId" }, { field: "status" }, { field: "idempotencyKey", unique: true, sparse: true }, OUTBOX_INDEX],
		}),
		OutboxMixin,
		OrderSagaMixin,
	],

	settings: {
		fields: [
			"id", "userId", "items", "subtotal", "discount", "discountCode", "shipping", "tax", "total", "currency", "country",
			"status", "timeline", "payment", "invoiceNumber", "paidAt", "cancelledAt", "refunded", "createdAt", "updatedAt",
		],
	},

	actions: {
		/**
		 * Check out `items`, or the cart with `fromCart: true`, paying with `paymentMethod`.
		 * Answers 201 with the paid order; 402 when the payment failed (the order is
		 * kept as payment_failed, its stock released); 202 with the reserved order when
		 * the provider's answer is not known yet (the order settles by itself).
		 */
		create: {
			auth: "user",
			// Never re-run blindly: a repeat is safe only through the Idempotency-Key.
			retryPolicy: { enabled: false },
			timeout: CHECKOUT_TIMEOUT_MS,
			params: {
				$$strict: true,
				items: { ...itemsParam, optional: true },
				fromCart: { type: "equal", value: true, strict: true, optional: true },
				paymentMethod: paymentMethodParam,
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
				return this.answerCheckout(ctx, await this.checkout(ctx, key));
			},
		},

		/**
		 * Cancel one of the signed-in user's paid orders: refund in full and put the
		 * stock back. 202 when the cancellation is under way (it finishes by itself); 409 when it cannot be cancelled.
		 */
		cancel: {
			auth: "user",
			retryPolicy: { enabled: false },
			timeout: CHECKOUT_TIMEOUT_MS,
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				let doc = this.plain(await this.findEntity(ctx.params.id)) as OrderDoc | null;
				if (!doc || doc.userId !== ctx.meta.user!.id || IN_CHECKOUT.includes(doc.status)) throw notFound("Order", ctx.params.id);
				if (doc.status === "paid" && (await this.transition(doc, "paid", "cancelling", {}, [], "requested by the customer"))) {
					doc = { ...doc, status: "cancelling" };
				} else {
					doc = this.plain(await this.adapter.findById(doc._id)) as OrderDoc;
				}
				if (doc.status !== "cancelling") {
					throw conflict(`The order is ${doc.status.replace("_", " ")} and cannot be cancelled`, "ORDER_NOT_CANCELLABLE", { status: doc.status });
				}
				const cancelled = await this.unlessInterrupted(doc, () => this.completeCancellation(doc!));
				if (cancelled.status === "cancelling") ctx.meta.$statusCode = 202;
				return this.toEntity(ctx, cancelled);
			},
		},

		/** Counts per status, and revenue of the paid orders (for the REPL's shop summary). */
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
					if (order.status !== "paid") continue;
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

		/** Every placed order's status, total and lines (for audits: the invariant check and reports). */
		audit: {
			visibility: "public",
			params: { $$strict: true },
			async handler() {
				const docs = (await this.adapter.find({ query: { status: { $nin: IN_CHECKOUT } } })) as OrderDoc[];
				return docs.map(doc => ({ id: this.encodeID(doc._id), status: doc.status, total: doc.total, currency: doc.currency, items: stockLines(doc) }));
			},
		},

		/** Any order by id, with its raw status (for reports, the REPL and tests). */
		find: {
			visibility: "public",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc) throw notFound("Order", ctx.params.id);
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
				order = this.plain(await this.adapter.insert({
					userId, ...priced, status: "pending", timeline: [], paymentMethod: ctx.params.paymentMethod, createdAt: now, updatedAt: now,
					...(ctx.params.fromCart && { fromCart: true }),
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
			} catch (err) {
				if (isClientRefusal(err) && err.type === "OUT_OF_STOCK") await this.adapter.removeById(order._id); // nothing is held
				else await this.abandonCheckout(order).catch(e => this.logger.warn(`Checkout ${orderId} is left to the sweep: ${e.message}`));
				throw err;
			}
			if (!(await this.transition(order, "pending", "reserved"))) {
				// The sweep abandoned this checkout meanwhile; its release may have come before our reservation.
				await ctx.call("products.releaseStock", { orderId, items: stockLines(order) });
				throw conflict("The checkout took too long and was abandoned; please try again", "CHECKOUT_ABANDONED");
			}
			return this.toEntity(ctx, await this.unlessInterrupted(order, () => this.settlePayment({ ...order, status: "reserved" })));
		},

		/**
		 * Run the next saga step of an order; when it cannot finish now (a service
		 * down, a timeout), the order as it is: the recovery sweep finishes the step,
		 * and the client is told the order is under way (202) rather than an error.
		 */
		async unlessInterrupted(order: OrderDoc, step: () => Promise<SagaOrder>) {
			try {
				return await step();
			} catch (err: any) {
				if (isClientRefusal(err)) throw err;
				this.logger.warn(`Order ${this.encodeID(order._id)} is left to the recovery sweep: ${err?.message}`);
				return this.plain(await this.adapter.findById(order._id)) as SagaOrder;
			}
		},

		/** 201 for a paid order, 202 for one whose payment is not settled yet, 402 for a failed payment. */
		answerCheckout(ctx: ShopContext, order: Order) {
			if (order.status === "payment_failed") {
				throw new MoleculerClientError(order.payment?.failureMessage ?? "The payment failed", 402, "PAYMENT_FAILED", {
					orderId: order.id, reason: order.payment?.failureCode,
				});
			}
			const location = `/api/v1/orders/${order.id}`;
			ctx.meta.$statusCode = order.status === "reserved" ? 202 : 201;
			ctx.meta.$location = location; // moleculer-web sends it with a 201
			if (order.status === "reserved") ctx.meta.$responseHeaders = { ...ctx.meta.$responseHeaders, Location: location };
			return order;
		},

		/**
		 * The order an earlier request with this key created, once it is placed and
		 * its payment settled (or, past the wait, as it is); null when there is none (any more). A different request under the same
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
				const settling = doc.status === "reserved" && Date.now() < deadline;
				if (!IN_CHECKOUT.includes(doc.status) && !settling) {
					ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
					return this.toEntity(ctx, doc);
				}
				if (!settling && Date.now() - new Date(doc.updatedAt).getTime() > PENDING_TIMEOUT_MS) {
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
			if (quote.total > MAX_CHARGE) throw unprocessable(`An order can total at most ${MAX_CHARGE} cents`, "ORDER_TOO_LARGE", { total: quote.total });
			return quote;
		},

		/**
		 * Give up a checkout: claim it (pending → abandoned, so it can no longer
		 * become reserved, and its Idempotency-Key is free again), then release
		 * whatever stock it holds. The abandoned order stays until the recovery
		 * sweep releases once more — a reservation still under way when it was
		 * abandoned has finished by then — and removes it.
		 * Returns false when it was not this call's to abandon.
		 */
		async abandonCheckout(order: OrderDoc) {
			const claimed = await this.adapter.updateMany(
				{ _id: order._id, status: "pending" },
				{ $set: { status: "abandoned", updatedAt: new Date() }, $unset: { idempotencyKey: true } },
			);
			if (claimed !== 1) return false;
			await this.broker.call("products.releaseStock", { orderId: this.encodeID(order._id), items: stockLines(order) });
			return true;
		},

		/** The second and last release of an abandoned checkout; then it is gone. */
		async removeAbandoned(order: OrderDoc) {
			await this.broker.call("products.releaseStock", { orderId: this.encodeID(order._id), items: stockLines(order) });
			await this.adapter.removeMany({ _id: order._id, status: "abandoned" });
		},

	},

	/** Finish what a previous run of this node left half done (and keep doing so periodically, see the saga mixin). */
	started() {
		void this.recoverOrders().catch(err => this.logger.warn(`Order recovery failed: ${err.message}`));
	},
};

export default OrdersService;
