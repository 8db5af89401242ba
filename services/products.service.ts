/**
 * products: the catalog and its inventory.
 *
 * Prices are integer minor units (cents). Stock moves only through
 * `reserveStock` / `releaseStock`, which use conditional atomic updates
 * (`stock >= quantity` in the filter), so stock can never go below zero,
 * whatever the number of concurrent checkouts or nodes. Each product records
 * what every open order holds of it (`reservations.<orderId>: quantity`),
 * which makes reserving and releasing idempotent per order. A paid order's
 * hold is committed (the entry goes, the stock stays taken); an order
 * cancelled after payment gives its units back once (`restocked.<orderId>`).
 * Taking stock below LOW_STOCK_THRESHOLD writes a `stock.low` event in the
 * same update (outbox).
 */
import type { ServiceSchema } from "moleculer";
import mongoose from "mongoose";
import { DbMixin, type DbMethods } from "../mixins/db.mixin";
import { OUTBOX_FIELD, OUTBOX_INDEX, OutboxMixin, outboxPush, type OutboxMethods } from "../mixins/outbox.mixin";
import { domainEvent } from "../lib/events";
import { config } from "../lib/config";
import { conflict, notFound } from "../lib/errors";
import { idParam, itemsParam, pageParams } from "../lib/params";
import { mergeItems } from "../lib/pricing";
import type { ItemRequest, ShopContext } from "../lib/types";
import { DEMO_CATALOG } from "../lib/demo-catalog";

const MAX_PRICE = 100_000_000; // one million in major units
const MAX_STOCK = 1_000_000;
const SORTS = ["name", "-name", "price", "-price", "createdAt", "-createdAt"];

export interface Product {
	id: string;
	sku: string;
	name: string;
	description: string;
	price: number;
	currency: string;
	category: string;
	stock: number;
	createdAt: Date;
	updatedAt: Date;
}

interface ProductsMethods extends DbMethods, OutboxMethods {
	shortItems(items: ItemRequest[]): Promise<Array<ItemRequest & { available: number }>>;
	takeStock(orderId: string, items: ItemRequest[]): Promise<ItemRequest[]>;
	takeLine(orderId: string, item: ItemRequest): Promise<boolean>;
	returnStock(orderId: string, items: ItemRequest[]): Promise<ItemRequest[]>;
	saveProduct(ctx: ShopContext, save: () => Promise<object>, type: "created" | "updated"): Promise<Product>;
}

const fieldRules = {
	sku: { type: "string", trim: true, uppercase: true, pattern: /^[A-Z0-9][A-Z0-9-]{1,31}$/ },
	name: { type: "string", trim: true, min: 1, max: 200 },
	description: { type: "string", trim: true, max: 2000 },
	price: { type: "number", integer: true, min: 0, max: MAX_PRICE },
	currency: { type: "string", pattern: /^[A-Z]{3}$/ },
	category: { type: "string", trim: true, lowercase: true, min: 1, max: 50 },
	stock: { type: "number", integer: true, min: 0, max: MAX_STOCK },
} as const;

/** The same rules, each optional: for partial updates. */
const optionalRules = Object.fromEntries(
	Object.entries(fieldRules).map(([key, rule]) => [key, { ...rule, optional: true }]),
);

/**
 * Lines merged per product and sorted by product id: concurrent orders take
 * shared products in the same order, so they cannot block each other.
 */
function byProductId(items: ItemRequest[]): ItemRequest[] {
	return mergeItems(items).sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));
}

function escapeRegExp(text: string): string {
	return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const ProductsService: ServiceSchema<any, ProductsMethods> = {
	name: "products",

	mixins: [
		DbMixin({
			collection: "products",
			schema: {
				sku: String,
				name: String,
				description: String,
				price: Number,
				currency: String,
				category: String,
				stock: Number,
				reservations: { type: mongoose.Schema.Types.Mixed },
				restocked: { type: mongoose.Schema.Types.Mixed },
				...OUTBOX_FIELD,
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "sku", unique: true }, { field: "category" }, OUTBOX_INDEX],
		}),
		OutboxMixin,
	],

	settings: {
		fields: ["id", "sku", "name", "description", "price", "currency", "category", "stock", "createdAt", "updatedAt"],
	},

	actions: {
		/** Browse the catalog: text search, category, price range, sorting and pages. */
		list: {
			auth: "public",
			cache: { keys: ["q", "category", "minPrice", "maxPrice", "sort", "page", "pageSize"], ttl: 30 },
			params: {
				$$strict: true,
				q: { type: "string", trim: true, max: 100, optional: true },
				category: { type: "string", trim: true, lowercase: true, max: 50, optional: true },
				minPrice: { type: "number", integer: true, min: 0, max: MAX_PRICE, convert: true, optional: true },
				maxPrice: { type: "number", integer: true, min: 0, max: MAX_PRICE, convert: true, optional: true },
				sort: { type: "enum", values: SORTS, optional: true, default: "name" },
				...pageParams,
			},
			handler(ctx: ShopContext<{ q?: string; category?: string; minPrice?: number; maxPrice?: number; sort: string; page: number; pageSize: number }>) {
				const { q, category, minPrice, maxPrice, sort, page, pageSize } = ctx.params;
				const query: Record<string, unknown> = {};
				if (q) {
					const pattern = new RegExp(escapeRegExp(q), "i");
					query.$or = [{ name: { $regex: pattern } }, { description: { $regex: pattern } }, { sku: { $regex: pattern } }];
				}
				if (category) query.category = category;
				if (minPrice != null || maxPrice != null) {
					query.price = { ...(minPrice != null && { $gte: minPrice }), ...(maxPrice != null && { $lte: maxPrice }) };
				}
				return this._list(ctx, { query, sort: [sort], page, pageSize, limit: pageSize, offset: (page - 1) * pageSize });
			},
		},

		/** One product (404 when missing). */
		get: {
			auth: "public",
			cache: { keys: ["id"], ttl: 30 },
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc) throw notFound("Product", ctx.params.id);
				return this.toEntity(ctx, doc);
			},
		},

		/**
		 * A customer looks at a product (GET /products/:id): the product, and a
		 * `product.viewed` event for analytics. Views are not state changes, so the
		 * event is published directly, best effort (a lost view costs nothing).
		 */
		view: {
			auth: "public",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const product = await ctx.call<Product, { id: string }>("products.get", { id: ctx.params.id });
				const viewed = domainEvent("product.viewed", { productId: product.id, userId: ctx.meta.user?.id ?? null });
				this.broker.sendToChannel(viewed.type, viewed, { msgID: viewed.id })
					.catch((err: Error) => this.logger.debug(`A product view was not recorded: ${err.message}`));
				return product;
			},
		},

		/** Several products by id, for pricing. Missing ids are simply absent from the answer. */
		getMany: {
			visibility: "public",
			params: { $$strict: true, ids: { type: "array", max: 100, items: idParam } },
			async handler(ctx: ShopContext<{ ids: string[] }>): Promise<Product[]> {
				const ids = [...new Set(ctx.params.ids)].filter(id => this.isValidId(id));
				if (ids.length === 0) return [];
				const docs = await this.adapter.findByIds(ids.map(id => this.decodeID(id)));
				return this.transformDocuments(ctx, {}, docs);
			},
		},

		/** Products whose stock is at or below `threshold` (LOW_STOCK_THRESHOLD by default), lowest first. */
		lowStock: {
			visibility: "public",
			params: { $$strict: true, threshold: { type: "number", integer: true, min: 0, max: MAX_STOCK, convert: true, optional: true } },
			async handler(ctx: ShopContext<{ threshold?: number }>) {
				const threshold = ctx.params.threshold ?? config.lowStockThreshold;
				const docs = await this.adapter.find({ query: { stock: { $lte: threshold } }, sort: ["stock"], limit: 100 } as object);
				return this.transformDocuments(ctx, {}, docs);
			},
		},

		/** Add a product (admins). */
		create: {
			auth: "admin",
			retryPolicy: { enabled: false },
			params: {
				$$strict: true,
				...fieldRules,
				description: { ...fieldRules.description, optional: true, default: "" },
				currency: { ...fieldRules.currency, optional: true, default: "USD" },
				stock: { ...fieldRules.stock, optional: true, default: 0 },
			},
			async handler(ctx: ShopContext<Omit<Product, "id" | "createdAt" | "updatedAt">>) {
				const now = new Date();
				const product = await this.saveProduct(ctx, () => this.adapter.insert({ ...ctx.params, createdAt: now, updatedAt: now }), "created");
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/v1/products/${product.id}`;
				return product;
			},
		},

		/** Change some fields of a product (admins). `stock` sets the quantity on hand. */
		update: {
			auth: "admin",
			params: { $$strict: true, id: idParam, ...optionalRules },
			async handler(ctx: ShopContext<Partial<Product> & { id: string }>) {
				const { id, ...changes } = ctx.params;
				if (!(await this.findEntity(id))) throw notFound("Product", id);
				return this.saveProduct(ctx, () => this.adapter.updateById(this.decodeID(id), { $set: { ...changes, updatedAt: new Date() } }), "updated");
			},
		},

		/** Delete a product (admins). Orders keep their own copy of the lines. */
		remove: {
			auth: "admin",
			retryPolicy: { enabled: false },
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc) throw notFound("Product", ctx.params.id);
				await this.adapter.removeById(this.decodeID(ctx.params.id));
				await this.entityChanged("removed", doc, ctx);
				ctx.meta.$statusCode = 204;
				return null;
			},
		},

		/**
		 * Take stock for an order: every line, or none. When a line is short, the
		 * lines already taken are put back and a 409 lists the short items.
		 * Idempotent per order: lines this order already holds are not taken twice.
		 */
		reserveStock: {
			visibility: "public",
			// A retry could run beside a timed-out attempt that is still taking lines for the same order.
			retryPolicy: { enabled: false },
			params: { $$strict: true, orderId: idParam, items: itemsParam },
			async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
				const { orderId } = ctx.params;
				const items = byProductId(ctx.params.items);
				try {
					const taken = await this.takeStock(orderId, items);
					if (taken.length < items.length) {
						await this.returnStock(orderId, taken);
						throw conflict("Not enough stock", "OUT_OF_STOCK", { items: await this.shortItems(items) });
					}
					return { orderId, items };
				} finally {
					await this.clearCache();
				}
			},
		},

		/**
		 * Give back what an order holds (it failed, was abandoned or cancelled).
		 * Idempotent: only lines the order still holds are returned, once.
		 */
		releaseStock: {
			visibility: "public",
			params: { $$strict: true, orderId: idParam, items: itemsParam },
			async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
				try {
					const returned = await this.returnStock(ctx.params.orderId, byProductId(ctx.params.items));
					return { orderId: ctx.params.orderId, items: returned };
				} finally {
					await this.clearCache();
				}
			},
		},

		/** The order is paid: its hold becomes a sale (the stock stays taken, the reservation entry goes). Idempotent. */
		commitStock: {
			visibility: "public",
			params: { $$strict: true, orderId: idParam, items: itemsParam },
			async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
				const reservation = `reservations.${ctx.params.orderId}`;
				for (const item of byProductId(ctx.params.items)) {
					if (!this.isValidId(item.productId)) continue;
					await this.adapter.updateMany({ _id: this.decodeID(item.productId), [reservation]: { $exists: true } }, { $unset: { [reservation]: true } });
				}
				return { orderId: ctx.params.orderId };
			},
		},

		/** A paid order was cancelled: put its units back on the shelf, once per order. */
		restockOrder: {
			visibility: "public",
			params: { $$strict: true, orderId: idParam, items: itemsParam },
			async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
				const marker = `restocked.${ctx.params.orderId}`;
				const restocked: ItemRequest[] = [];
				try {
					for (const item of byProductId(ctx.params.items)) {
						if (!this.isValidId(item.productId)) continue;
						const count = await this.adapter.updateMany(
							{ _id: this.decodeID(item.productId), [marker]: { $exists: false } },
							{ $inc: { stock: item.quantity }, $set: { [marker]: item.quantity, updatedAt: new Date() } },
						);
						if (count === 1) restocked.push(item);
					}
					return { orderId: ctx.params.orderId, items: restocked };
				} finally {
					await this.clearCache();
				}
			},
		},
	},

	methods: {
		/** Take each line (see takeLine). Stops at the first short line; returns the lines the order now holds. */
		async takeStock(orderId: string, items: ItemRequest[]) {
			const held: ItemRequest[] = [];
			for (const item of items) {
				if (!this.isValidId(item.productId) || !(await this.takeLine(orderId, item))) break;
				held.push(item);
			}
			return held;
		},

		/**
		 * Take one line with one conditional atomic update: enough stock, and no
		 * reservation of this order yet. When it brings the stock from above the
		 * low-stock threshold to at or below it, the update is conditional on the
		 * exact stock read and carries the `stock.low` event; otherwise it is
		 * conditional on staying on the same side of the threshold. A concurrent
		 * change makes it read and try again. False when the stock is short.
		 */
		async takeLine(orderId: string, { productId, quantity }: ItemRequest) {
			const _id = this.decodeID(productId);
			const reservation = `reservations.${orderId}`;
			const threshold = config.lowStockThreshold;
			for (;;) {
				const doc = (await this.adapter.findById(_id)) as (Product & { reservations?: Record<string, number> }) | null;
				const held = doc?.reservations?.[orderId];
				if (held !== undefined) return held === quantity;
				if (!doc || doc.stock < quantity) return false;
				const left = doc.stock - quantity;
				const crossing = left <= threshold && doc.stock > threshold;
				const event = crossing && domainEvent("stock.low", { productId, sku: doc.sku, name: doc.name, stock: left, threshold });
				// The condition keeps the outcome on the side of the threshold this read saw, so no crossing goes unnoticed.
				const stock = crossing ? doc.stock : doc.stock > threshold ? { $gte: threshold + quantity + 1 } : { $gte: quantity, $lte: threshold };
				const taken = await this.adapter.updateMany(
					{ _id, stock, [reservation]: { $exists: false } },
					{ $inc: { stock: -quantity }, $set: { [reservation]: quantity, updatedAt: new Date() }, ...(event && outboxPush(event)) },
				);
				if (taken === 1) {
					if (event) void this.relayOutbox();
					return true;
				}
			}
		},

		/** Return the lines this order holds, each with one conditional atomic update. */
		async returnStock(orderId: string, items: ItemRequest[]) {
			const returned: ItemRequest[] = [];
			const reservation = `reservations.${orderId}`;
			for (const item of items) {
				if (!this.isValidId(item.productId)) continue;
				const count = await this.adapter.updateMany(
					{ _id: this.decodeID(item.productId), [reservation]: item.quantity },
					{ $inc: { stock: item.quantity }, $unset: { [reservation]: true }, $set: { updatedAt: new Date() } },
				);
				if (count === 1) returned.push(item);
			}
			return returned;
		},

		/** The requested lines that the current stock cannot cover, with what is available. */
		async shortItems(items: ItemRequest[]) {
			const docs = (await this.adapter.findByIds(items.filter(i => this.isValidId(i.productId)).map(i => this.decodeID(i.productId)))) as any[];
			const stock = new Map(docs.map(doc => [String(doc._id), doc.stock as number]));
			return items
				.map(item => ({ ...item, available: stock.get(item.productId) ?? 0 }))
				.filter(item => item.available < item.quantity);
		},

		async saveProduct(ctx: ShopContext, save: () => Promise<object>, type: "created" | "updated") {
			let doc;
			try {
				doc = await save();
			} catch (err) {
				if (this.isDuplicateKeyError(err)) throw conflict("A product with this SKU already exists", "SKU_TAKEN");
				throw err;
			}
			await this.entityChanged(type, doc, ctx);
			return this.toEntity(ctx, doc);
		},

		/** Fill an empty catalog with the demo products. */
		async seedDB() {
			const now = new Date();
			try {
				await this.adapter.insertMany(DEMO_CATALOG.map(p => ({ ...p, createdAt: now, updatedAt: now })));
				this.logger.info(`Seeded the catalog with ${DEMO_CATALOG.length} demo products.`);
			} catch (err) {
				if (!this.isDuplicateKeyError(err)) throw err;
				this.logger.info("The catalog was seeded by another node.");
			}
		},
	},
};

export default ProductsService;
