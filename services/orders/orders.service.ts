/**
 * orders: checkout, cancellation and order history.
 *
 * Where each part lives: checkout.ts (from a request to an order holding its
 * stock, and the Idempotency-Key), saga.ts (payment, cancellation, the recovery
 * sweep and the one writer of an order's status), lifecycle.ts (every status
 * and every allowed move, in one table), order.ts (the order's shapes).
 */
import type { ServiceSchema } from "moleculer";
import type { ShopContext } from "../../contracts/context";
import { itemsParam } from "../../contracts/items";
import { paymentMethodParam } from "../../contracts/payments";
import { QUOTE_FIELDS, QUOTE_SCHEMA, quoteOptionParams } from "../../contracts/pricing";
import { config } from "../../platform/config";
import { DbMixin } from "../../platform/db.mixin";
import { conflict, notFound, unprocessable } from "../../contracts/errors";
import { isClientRefusal } from "../../platform/errors";
import { observeSeconds, secondsSince } from "../../platform/metrics";
import { idParam, pageParams } from "../../platform/params";
import { CHECKOUT_TIMEOUT_MS, checkoutMethods, type CheckoutParams } from "./checkout";
import { IN_CHECKOUT, ORDER_STATUSES, type OrderStatus } from "./lifecycle";
import { stockLines, type OrderDoc, type OrdersThis } from "./order";
import { sagaMethods } from "./saga";

/** How often the recovery sweep looks for orders stuck in an intermediate state. */
const SWEEP_INTERVAL_MS = Math.max(1_000, Math.round(config.orders.recoverAfterMs / 3));

const OrdersService: ServiceSchema<object, object, object, OrdersThis> = {
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
				payment: {
					status: String,
					failureCode: String,
					failureMessage: String,
					card: { brand: String, last4: String },
				},
				invoiceNumber: String,
				fromCart: Boolean,
				paidAt: Date,
				cancelledAt: Date,
				refunded: Number,
				idempotencyKey: String,
				requestHash: String,
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [
				{ field: "userId" },
				{ field: "status" },
				{ field: "idempotencyKey", unique: true, sparse: true },
			],
			emitsEvents: true,
		}),
	],

	settings: {
		fields: [
			"id",
			"userId",
			...QUOTE_FIELDS,
			"status",
			"timeline",
			"payment",
			"invoiceNumber",
			"paidAt",
			"cancelledAt",
			"refunded",
			"createdAt",
			"updatedAt",
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
						{
							type: "oneOf",
							field: "items",
							message: "Exactly one of 'items' and 'fromCart' is required.",
						},
					]);
				}
				const key = ctx.meta.idempotencyKey ? `${ctx.meta.user!.id}:${ctx.meta.idempotencyKey}` : undefined;
				const start = process.hrtime.bigint();
				let outcome = "error";
				try {
					const order = await this.checkout(ctx, key);
					outcome = order.status; // paid, reserved (202) or payment_failed (402)
					return this.answerCheckout(ctx, order);
				} catch (err) {
					if (outcome === "error" && isClientRefusal(err)) outcome = "refused"; // not the 402 of payment_failed
					throw err;
				} finally {
					observeSeconds(this.broker, "checkoutDuration", secondsSince(start), { outcome });
				}
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
				let doc = this.plain(await this.findEntity<OrderDoc>(ctx.params.id));
				if (!doc || doc.userId !== ctx.meta.user!.id || IN_CHECKOUT.includes(doc.status))
					throw notFound("Order", ctx.params.id);
				if (
					doc.status === "paid" &&
					(await this.transition(doc, "paid", "cancelling", { note: "requested by the customer" }))
				) {
					doc = { ...doc, status: "cancelling" };
				} else {
					doc = (await this.reload(doc))!;
				}
				if (doc.status !== "cancelling") {
					throw conflict(
						`The order is ${doc.status.replace("_", " ")} and cannot be cancelled`,
						"ORDER_NOT_CANCELLABLE",
						{ status: doc.status },
					);
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
				const averageOrder = Object.fromEntries(
					Object.entries(revenue).map(([currency, cents]) => [currency, Math.round(cents / count[currency])]),
				);
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
				return this.listPage(ctx, { query, sort: ["-createdAt"], page, pageSize });
			},
		},

		/** One of the signed-in user's orders; anyone else's is a 404. */
		get: {
			auth: "user",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity<OrderDoc>(ctx.params.id);
				if (!doc || doc.userId !== ctx.meta.user!.id || IN_CHECKOUT.includes(doc.status))
					throw notFound("Order", ctx.params.id);
				return this.toEntity(ctx, doc);
			},
		},

		/** Every placed order's status, total and lines (for audits: the invariant check and reports). */
		audit: {
			visibility: "public",
			params: { $$strict: true },
			async handler() {
				const docs = (await this.adapter.find({ query: { status: { $nin: IN_CHECKOUT } } })) as OrderDoc[];
				return docs.map(doc => ({
					id: this.encodeID(doc._id),
					status: doc.status,
					total: doc.total,
					currency: doc.currency,
					items: stockLines(doc),
				}));
			},
		},

		/** The newest orders, of one status or any (for the REPL's `orders`): id, status, total, customer, when. */
		recent: {
			visibility: "public",
			params: {
				$$strict: true,
				status: { type: "enum", values: [...ORDER_STATUSES], optional: true },
				limit: { type: "number", integer: true, min: 1, max: 100, default: 10, convert: true },
			},
			async handler(ctx: ShopContext<{ status?: OrderStatus; limit: number }>) {
				const query = ctx.params.status ? { status: ctx.params.status } : {};
				const docs = (await this.adapter.find({
					query,
					sort: ["-createdAt"],
					limit: ctx.params.limit,
				} as object)) as OrderDoc[];
				return docs.map(doc => ({
					id: this.encodeID(doc._id),
					status: doc.status,
					total: doc.total,
					currency: doc.currency,
					userId: doc.userId,
					createdAt: doc.createdAt,
				}));
			},
		},

		/** Any order by id, with its raw status (for reports, the REPL and tests). */
		find: {
			visibility: "public",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity<OrderDoc>(ctx.params.id);
				if (!doc) throw notFound("Order", ctx.params.id);
				return this.toEntity(ctx, doc);
			},
		},
	},

	methods: { ...checkoutMethods, ...sagaMethods },

	/** Finish what a previous run of this node left half done, and keep doing so periodically. */
	started() {
		const sweep = () =>
			this.recoverOrders().catch((err: Error) => this.logger.warn(`Order recovery failed: ${err.message}`));
		void sweep();
		this.recoveryTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
		this.recoveryTimer.unref();
	},

	stopped() {
		clearInterval(this.recoveryTimer);
	},
};

export default OrdersService;
