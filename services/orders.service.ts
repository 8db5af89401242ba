/**
 * orders: checkout and order history.
 *
 * Checkout prices every line from the catalog, reserves the stock through
 * `products.reserveStock` (all or nothing) and stores the order. With an
 * `Idempotency-Key`, the order document itself is the claim on the key: a
 * unique index on `idempotencyKey` lets exactly one of several concurrent
 * repeats create the order, and the others answer with that same order.
 */
import { createHash } from "node:crypto";
import type { ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../mixins/db.mixin";
import { conflict, notFound, unprocessable } from "../lib/errors";
import { idParam, itemsParam, pageParams } from "../lib/params";
import { mergeItems, priceLines, type CatalogProduct, type PricedLine } from "../lib/pricing";
import type { ItemRequest, ShopContext } from "../lib/types";

/** How long a repeat waits for the first request with the same key to finish (below the broker's requestTimeout). */
const IDEMPOTENCY_WAIT_MS = 8_000;
const IDEMPOTENCY_POLL_MS = 50;

export type OrderStatus = "pending" | "reserved";

export interface Order {
	id: string;
	userId: string;
	items: PricedLine[];
	total: number;
	currency: string;
	status: OrderStatus;
	createdAt: Date;
	updatedAt: Date;
}

interface CheckoutParams {
	items?: ItemRequest[];
	fromCart?: boolean;
}

interface OrdersMethods extends DbMethods {
	checkout(ctx: ShopContext<CheckoutParams>, key: string | undefined): Promise<Order>;
	replay(ctx: ShopContext, key: string, requestHash: string): Promise<Order | null>;
	requestedItems(ctx: ShopContext<CheckoutParams>): Promise<ItemRequest[]>;
	priceOrder(ctx: ShopContext, items: ItemRequest[]): Promise<{ items: PricedLine[]; total: number; currency: string }>;
}

function hashRequest(params: CheckoutParams): string {
	const body = params.fromCart ? { fromCart: true } : { items: mergeItems(params.items ?? []) };
	return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

const OrdersService: ServiceSchema<any, OrdersMethods> = {
	name: "orders",

	mixins: [
		DbMixin({
			collection: "orders",
			schema: {
				userId: String,
				items: [{ _id: false, productId: String, sku: String, name: String, unitPrice: Number, quantity: Number, lineTotal: Number }],
				total: Number,
				currency: String,
				status: String,
				idempotencyKey: String,
				requestHash: String,
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "userId" }, { field: "idempotencyKey", unique: true, sparse: true }],
		}),
	],

	settings: {
		fields: ["id", "userId", "items", "total", "currency", "status", "createdAt", "updatedAt"],
	},

	actions: {
		/** Check out `items`, or the cart with `fromCart: true`. Answers 201 with the order. */
		create: {
			auth: "user",
			params: {
				$$strict: true,
				items: { ...itemsParam, optional: true },
				fromCart: { type: "equal", value: true, strict: true, optional: true },
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

		/** The signed-in user's orders, newest first. */
		list: {
			auth: "user",
			params: { $$strict: true, ...pageParams },
			handler(ctx: ShopContext<{ page: number; pageSize: number }>) {
				const { page, pageSize } = ctx.params;
				const query = { userId: ctx.meta.user!.id };
				return this._list(ctx, { query, sort: ["-createdAt"], page, pageSize, limit: pageSize, offset: (page - 1) * pageSize });
			},
		},

		/** One of the signed-in user's orders; anyone else's is a 404. */
		get: {
			auth: "user",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc || doc.userId !== ctx.meta.user!.id) throw notFound("Order", ctx.params.id);
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
			const items = await this.requestedItems(ctx);
			const priced = await this.priceOrder(ctx, items);

			const now = new Date();
			let order;
			try {
				order = await this.adapter.insert({
					userId, ...priced, status: "pending", createdAt: now, updatedAt: now,
					...(key && { idempotencyKey: key, requestHash }),
				});
			} catch (err) {
				// A concurrent request with the same key got there first: answer with its order.
				if (key && this.isDuplicateKeyError(err)) return (await this.replay(ctx, key, requestHash)) ?? this.checkout(ctx, key);
				throw err;
			}
			const id = this.encodeID((order as any)._id);
			const lines = priced.items.map(({ productId, quantity }) => ({ productId, quantity }));
			try {
				await ctx.call("products.reserveStock", { items: lines });
			} catch (err) {
				await this.adapter.removeById((order as any)._id); // nothing reserved, so no order either
				throw err;
			}
			const saved = await this.adapter.updateById(this.decodeID(id), { $set: { status: "reserved", updatedAt: new Date() } });
			if (ctx.params.fromCart) await ctx.call("carts.removeItems", { userId, items: lines });
			await this.entityChanged("created", saved, ctx);
			return this.toEntity(ctx, saved);
		},

		/**
		 * The order an earlier request with this key created, once it is complete;
		 * null when there is none (any more). A different request under the same key is refused.
		 */
		async replay(ctx: ShopContext, key: string, requestHash: string) {
			const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
			for (;;) {
				const doc = (await this.adapter.findOne({ idempotencyKey: key })) as any;
				if (!doc) return null;
				if (doc.requestHash !== requestHash) {
					throw unprocessable("This Idempotency-Key was already used for a different request", "IDEMPOTENCY_KEY_REUSED");
				}
				if (doc.status !== "pending") {
					ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
					return this.toEntity(ctx, doc);
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
			return items;
		},

		async priceOrder(ctx: ShopContext, items: ItemRequest[]) {
			const products = await ctx.call<CatalogProduct[], { ids: string[] }>("products.getMany", { ids: items.map(item => item.productId) });
			const priced = priceLines(items, products);
			if (priced.missing.length) throw notFound("Product", priced.missing.join(","));
			if (priced.mixedCurrencies) throw unprocessable("All products of one order must have the same currency", "MIXED_CURRENCIES");
			return { items: priced.items, total: priced.total, currency: priced.currency };
		},
	},
};

export default OrdersService;
