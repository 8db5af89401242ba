/**
 * products: the catalog and its inventory.
 *
 * Prices are integer minor units (cents). Stock moves only through
 * `reserveStock` / `releaseStock`, which use conditional atomic updates
 * (`stock >= quantity` in the filter), so stock can never go below zero,
 * whatever the number of concurrent checkouts or nodes.
 */
import type { ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../mixins/db.mixin";
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

interface ProductsMethods extends DbMethods {
	shortItems(items: ItemRequest[]): Promise<Array<ItemRequest & { available: number }>>;
	moveStock(items: ItemRequest[], direction: 1 | -1): Promise<ItemRequest[]>;
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
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "sku", unique: true }, { field: "category" }],
		}),
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

		/** Add a product (admins). */
		create: {
			auth: "admin",
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
		 * Take stock for every line, or for none: when one line is short, the lines
		 * already taken are put back and a 409 lists the short items.
		 */
		reserveStock: {
			visibility: "public",
			params: { $$strict: true, items: itemsParam },
			async handler(ctx: ShopContext<{ items: ItemRequest[] }>) {
				const items = mergeItems(ctx.params.items);
				const taken = await this.moveStock(items, -1);
				if (taken.length < items.length) {
					await this.moveStock(taken, 1);
					await this.clearCache();
					throw conflict("Not enough stock", "OUT_OF_STOCK", { items: await this.shortItems(items) });
				}
				await this.clearCache();
				return { items };
			},
		},

		/** Put reserved stock back (an order failed or was cancelled). */
		releaseStock: {
			visibility: "public",
			params: { $$strict: true, items: itemsParam },
			async handler(ctx: ShopContext<{ items: ItemRequest[] }>) {
				const items = mergeItems(ctx.params.items);
				await this.moveStock(items, 1);
				await this.clearCache();
				return { items };
			},
		},
	},

	methods: {
		/**
		 * Move stock line by line with one conditional update each; returns the
		 * lines that moved. Taking (-1) stops at the first line that is short.
		 */
		async moveStock(items: ItemRequest[], direction: 1 | -1) {
			const moved: ItemRequest[] = [];
			for (const item of items) {
				const filter: Record<string, unknown> = { _id: this.decodeID(item.productId) };
				if (direction < 0) filter.stock = { $gte: item.quantity };
				const count = this.isValidId(item.productId)
					? await this.adapter.updateMany(filter, { $inc: { stock: direction * item.quantity }, $set: { updatedAt: new Date() } })
					: 0;
				if (count !== 1) {
					if (direction < 0) break;
					this.logger.warn(`Could not return ${item.quantity} of product ${item.productId}: it no longer exists.`);
					continue;
				}
				moved.push(item);
			}
			return moved;
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
			await this.adapter.insertMany(DEMO_CATALOG.map(p => ({ ...p, createdAt: now, updatedAt: now })));
			this.logger.info(`Seeded the catalog with ${DEMO_CATALOG.length} demo products.`);
		},
	},
};

export default ProductsService;
