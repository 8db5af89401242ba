/**
 * carts: one shopping cart per signed-in user.
 *
 * A cart stores only `{ productId: quantity }`; the pricing service quotes it
 * from the catalog every time it is shown, so a cart is never stale. Lines of
 * products that left the catalog are listed apart, as `unavailable`. Lines are
 * changed with single atomic `$set` / `$unset` updates, so concurrent
 * changes to different lines of one cart never overwrite each other.
 */
import type { Service, ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import type { OutboxMethods, StoreUpdate } from "../../platform/outbox.mixin";
import { domainEvent, type EventPayloads } from "../../contracts/events";
import { unprocessable } from "../../contracts/errors";
import type { ShopContext } from "../../contracts/context";
import { type ItemRequest, itemsParam, MAX_LINES, MAX_QUANTITY } from "../../contracts/items";
import { type PricingQuote, QUOTE_CALL_OPTIONS, quoteOptionParams, type QuoteParams } from "../../contracts/pricing";
import { idParam } from "../../platform/params";

interface CartDoc {
	userId: string;
	items: Record<string, number>;
	updatedAt?: Date;
}

interface CartsMethods extends DbMethods, OutboxMethods {
	ensureCart(userId: string): Promise<void>;
	cartItems(userId: string): Promise<ItemRequest[]>;
	pricedCart(
		ctx: ShopContext,
		userId: string,
		options?: { country?: string; discountCode?: string },
	): Promise<object>;
	changeCart(filter: object, update: StoreUpdate, change: EventPayloads["cart.updated"]): Promise<number>;
}

const CartsService: ServiceSchema<object, object, object, Service & CartsMethods> = {
	name: "carts",

	mixins: [
		DbMixin({
			collection: "carts",
			// `Object` is mongoose's Mixed, named without loading mongoose on the embedded store.
			schema: { userId: String, items: { type: Object, default: {} }, updatedAt: Date },
			indexes: [{ field: "userId", unique: true }],
			emitsEvents: true,
		}),
	],

	actions: {
		/** The signed-in user's cart, quoted by pricing (for `country`, with `discountCode` if given). */
		get: {
			auth: "user",
			params: { $$strict: true, ...quoteOptionParams },
			handler(ctx: ShopContext<{ country?: string; discountCode?: string }>) {
				return this.pricedCart(ctx, ctx.meta.user!.id, ctx.params);
			},
		},

		/** Set how many of a product are in the cart; 0 removes the line. */
		setItem: {
			auth: "user",
			params: {
				$$strict: true,
				productId: idParam,
				quantity: { type: "number", integer: true, min: 0, max: MAX_QUANTITY },
			},
			async handler(ctx: ShopContext<ItemRequest>) {
				const userId = ctx.meta.user!.id;
				const { productId, quantity } = ctx.params;
				if (quantity > 0) {
					await ctx.call("products.get", { id: productId }); // 404 for an unknown product
					const items = await this.cartItems(userId);
					if (items.length >= MAX_LINES && !items.some(item => item.productId === productId)) {
						throw unprocessable(`A cart holds at most ${MAX_LINES} different products`, "CART_FULL");
					}
				}
				await this.ensureCart(userId);
				const line = `items.${productId}`;
				const update =
					quantity > 0
						? { $set: { [line]: quantity, updatedAt: new Date() } }
						: { $unset: { [line]: true }, $set: { updatedAt: new Date() } };
				await this.changeCart({ userId }, update, { userId, reason: "set", lines: [{ productId, quantity }] });
				return this.pricedCart(ctx, userId);
			},
		},

		/** Empty the signed-in user's cart. */
		clear: {
			auth: "user",
			params: { $$strict: true },
			async handler(ctx: ShopContext) {
				const userId = ctx.meta.user!.id;
				await this.changeCart(
					{ userId },
					{ $set: { items: {}, updatedAt: new Date() } },
					{ userId, reason: "clear", lines: [] },
				);
				return this.pricedCart(ctx, userId);
			},
		},

		/** The raw lines of a user's cart, for checkout. */
		items: {
			visibility: "public",
			params: { $$strict: true, userId: idParam },
			handler(ctx: ShopContext<{ userId: string }>) {
				return this.cartItems(ctx.params.userId);
			},
		},

		/**
		 * Take ordered lines out of a user's cart (after a checkout from the cart).
		 * A line whose quantity changed meanwhile stays: that change was not ordered.
		 */
		removeItems: {
			visibility: "public",
			params: { $$strict: true, userId: idParam, items: itemsParam },
			async handler(ctx: ShopContext<{ userId: string; items: ItemRequest[] }>) {
				const { userId, items } = ctx.params;
				for (const { productId, quantity } of items) {
					const line = `items.${productId}`;
					const change = { userId, reason: "checkout" as const, lines: [{ productId, quantity: 0 }] };
					await this.changeCart(
						{ userId, [line]: quantity },
						{ $unset: { [line]: true }, $set: { updatedAt: new Date() } },
						change,
					);
				}
				return true;
			},
		},
	},

	methods: {
		/** Apply a change to a cart together with its `cart.updated` event (outbox); answers how many carts changed. */
		async changeCart(filter: object, update: StoreUpdate, change: EventPayloads["cart.updated"]) {
			return this.updateWithEvents(filter, update, [domainEvent("cart.updated", change)]);
		},

		/** Create the user's empty cart unless it exists (the unique index settles races). */
		async ensureCart(userId: string) {
			if (await this.adapter.findOne({ userId })) return;
			await this.insertOrGet({ userId, items: {}, updatedAt: new Date() }, { userId });
		},

		async cartItems(userId: string) {
			const cart = this.plain(await this.adapter.findOne({ userId })) as CartDoc | null;
			const items = cart?.items;
			return Object.entries((items ?? {}) as Record<string, number>).map(([productId, quantity]) => ({
				productId,
				quantity,
			}));
		},

		async pricedCart(ctx: ShopContext, userId: string, options = {}) {
			const items = await this.cartItems(userId);
			const { missing, ...quote } = await ctx.call<PricingQuote, QuoteParams>(
				"pricing.quote",
				{ items, ...options },
				QUOTE_CALL_OPTIONS,
			);
			// Lines whose product left the catalog: shown so they can be removed (quantity 0).
			const unavailable = items.filter(item => missing.includes(item.productId));
			return { ...quote, ...(unavailable.length && { unavailable }) };
		},
	},
};

export default CartsService;
